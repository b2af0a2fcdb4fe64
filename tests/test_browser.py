"""A real browser: Debian's Chromium, driven by Playwright, draws with the mouse, sees the guess, flags it."""
import re

import pytest

from config import Config
from bench.browser import ARTIFACTS, draw
from tests.running_app import running_app


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    with running_app(Config(data_dir=root / "data", mnist_data="sample")) as served_app:
        yield served_app


def test_draw_see_the_guess_flag_it_and_see_the_confirmation(page_url, browser):
    url, services = page_url
    saved = services.store.counts().total + 1  # the other test may have saved one first
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(url)
    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
    page.wait_for_timeout(1000)  # let the page settle as a person would see it
    assert page.get_by_text("select the draw tool to start").count() == 0
    draw(page, 3)
    guess = page.locator("#guess")
    guess.get_by_text(re.compile(r"^\d$")).first.wait_for(timeout=30_000)
    top = guess.locator("h2, .output-class").first.inner_text().strip()
    assert top == "3", f"the model read {top!r}"
    other = "8"
    page.locator(f"#digit [data-testid=\"{other}-radio-label\"]").click()
    page.locator("#save").click()
    message = page.locator("#flag-message")
    message.get_by_text("Saved:").wait_for(timeout=30_000)
    assert f"you drew {other}, the model said 3" in message.inner_text()
    assert f"{saved} in all; {10 - saved} more until the next retrain" in message.inner_text()
    page.locator("#summary").get_by_text("Round 0").wait_for(timeout=30_000)
    assert services.store.counts().total == saved
    page.locator("#gallery img").first.wait_for(timeout=30_000)
    # the canvas is cleared for the next try and the brush is still ready
    page.wait_for_timeout(1000)
    assert page.get_by_text("select the draw tool to start").count() == 0
    draw(page, 7)
    guess.get_by_text("7").first.wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshot.png"), full_page=True)
    page.close()


def test_the_machine_adversary_tab_attacks_a_drawing_and_saves_it(page_url, browser):
    url, services = page_url
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(url)
    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
    page.get_by_role("tab", name="Machine adversary").click()
    page.wait_for_selector("#attack-sketchpad canvas", timeout=30_000)
    page.wait_for_timeout(1000)
    assert page.get_by_text("select the draw tool to start").count() == 0  # the brush is ready here too
    draw(page, 7, sketchpad="attack-sketchpad")
    page.locator('#attack-digit [data-testid="7-radio-label"]').click()
    page.locator("#attack-run").click()  # at the default epsilon, 0.1: a standard CNN does not survive it
    message = page.locator("#attack-message")
    message.get_by_text("now says").wait_for(timeout=60_000)
    new_guess = page.locator("#attack-guess h2, #attack-guess .output-class").first.inner_text().strip()
    assert new_guess != "7" and f"now says {new_guess}" in message.inner_text()
    for image in ("attack-clean", "attack-adversarial", "attack-perturbation"):
        page.locator(f"#{image} img").first.wait_for(timeout=30_000)
    before = services.store.counts().added
    page.locator("#attack-save").click()
    message.get_by_text("Saved the attacked 7").wait_for(timeout=30_000)
    assert services.store.counts().added == before + 1
    assert services.store.latest(1)[0]["source"] == "pgd-40x1@0.1"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "machine-adversary.png"), full_page=True)
    page.close()
