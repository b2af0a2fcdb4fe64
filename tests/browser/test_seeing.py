"""What the model sees, in a browser: beside the guess when asked, with each example to validate, and with each
attack: the 28×28 input coloured by Integrated Gradients, and a caption that names the digit it explains."""
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
    page.locator("#validate-saliency-caption").get_by_text("now reads it as 3").wait_for(timeout=30_000)

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
