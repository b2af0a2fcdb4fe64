"""What the model sees, in a browser: beside the guess when asked, with each example to validate, and with each
attack: the 28×28 input coloured by Integrated Gradients, and a caption that names the digit it explains."""
import json
import re

import pytest

from outwit.config import Config
from outwit.sim.browser import draw
from outwit.sim.drawings import draw_sketch
from tests.pages import LAPTOP, opened, shoot, wait_for_brush, wait_for_guess
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeing")
    with running_app(Config(data_dir=root / "data", mnist_data="sample", retrain_every=100)) as served_app:
        yield served_app


def test_the_model_shows_what_it_sees_in_the_three_tabs(served, browser):
    url, services = served
    page = opened(browser.new_context(viewport=LAPTOP).new_page(), url)
    draw(page, 7)
    wait_for_guess(page, 7)
    page.locator("#explain").click()
    page.locator("#saliency img").first.wait_for(timeout=60_000)
    page.locator("#saliency-caption").get_by_text("it reads it as 7").wait_for(timeout=30_000)
    assert "red: pixels that pushed it towards that digit" in page.locator("#saliency-caption").inner_text()
    shoot(page, "models", "1-what-it-sees")

    services.store.add(draw_sketch(3), label=8, guess=3, confidence=0.9, model_round=0, session="someone")
    page.get_by_role("tab", name="Validate").click()
    page.locator("#validate-saliency img").first.wait_for(timeout=60_000)
    # the oldest example waiting: this 3, or, when the fool-them-all test ran first, its 7 (saved as a 1)
    page.locator("#validate-saliency-caption").get_by_text(re.compile(r"now reads it as [37]\b")).wait_for(
        timeout=30_000)

    page.get_by_role("tab", name="Machine adversary").click()
    page.wait_for_selector("#attack-sketchpad canvas", timeout=30_000)
    wait_for_brush(page, "attack-sketchpad")
    draw(page, 7, sketchpad="attack-sketchpad")
    page.locator('#attack-digit [data-testid="7-radio-label"]').click()
    page.locator("#attack-run").click()
    page.locator("#attack-message").get_by_text("now says").wait_for(timeout=60_000)
    new_guess = page.locator("#attack-guess h2, #attack-guess .output-class").first.inner_text().strip()
    page.locator("#attack-saliency img").first.wait_for(timeout=60_000)
    caption = page.locator("#attack-saliency-caption")
    caption.get_by_text(f"reads the attacked input as {new_guess}").wait_for(timeout=30_000)


def test_the_rounds_tab_shows_what_fooled_each_round_tried_on_the_other_models(served, browser):
    url, services = served
    for _ in range(2):  # drawings of 3 saved as 8s: they fooled round 0, and they fool every reference too
        services.store.add(draw_sketch(3), label=8, guess=3, confidence=0.9, model_round=0, session="other")
    page = opened(browser.new_context(viewport=LAPTOP).new_page(), url)
    page.get_by_role("tab", name="Rounds").click()
    page.wait_for_function("() => document.querySelector('#transfer')?.innerText.includes('robust CNN')",
                           timeout=60_000)
    table = page.locator("#transfer").inner_text()
    for model in ("blog's small network", "base CNN", "robust CNN", "ViT"):
        assert model in table
    assert "100.0%" in table
    shoot(page, "models", "2-transfer")


def test_a_visitor_picks_the_models_to_fool_and_a_save_keeps_what_each_said(served, browser):
    url, services = served
    page = opened(browser.new_context(viewport=LAPTOP).new_page(), url)
    page.locator("#opponents").get_by_text("ViT", exact=True).click()
    draw(page, 7)
    wait_for_guess(page, 7)  # the first chosen model's guess: this round's
    page.wait_for_function("() => /round 0's model: 7 \\(\\d+%\\) · ViT: 7 \\(/.test("
                           "document.querySelector('#readings').innerText)", timeout=30_000)
    page.locator("#fool-all").click()
    page.wait_for_function("() => document.querySelectorAll('#opponents input:checked').length === 5",
                           timeout=10_000)
    page.locator("#readings").get_by_text("blog's small network: 7").wait_for(timeout=30_000)  # guessed again
    shoot(page, "models", "3-fool-them-all")
    page.locator('#digit [data-testid="1-radio-label"]').click()  # every model read a 7; the person says 1
    page.locator("#save").click()
    words = ("Saved: you drew 1, round 0's model said 7, the blog's small network said 7, the base CNN said 7, "
             "the robust CNN said 7 and the ViT said 7.")
    page.locator("#flag-message").get_by_text(words).wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#readings').innerText.trim()", timeout=30_000)  # cleared
    row = services.store.latest(1)[0]
    assert [(r["model"], r["guess"]) for r in json.loads(row["judged_by"])] == [
        ("serving", 7), ("seed", 7), ("base", 7), ("robust", 7), ("vit", 7)]
    for name in ("this round's model", "blog's small network", "base CNN", "robust CNN", "ViT"):
        page.locator("#opponents").get_by_text(name, exact=True).click()  # none chosen
    page.locator("#readings").get_by_text("Choose at least one model to fool").wait_for(timeout=30_000)
