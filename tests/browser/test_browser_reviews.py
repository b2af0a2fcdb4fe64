"""Two people in two browsers: one saves drawings under a display name and retracts one, the other validates what
is left; then the Rounds tab shows the round, the leaderboard ranks the first person, and a round's zip downloads."""
import zipfile

import pytest

from outwit.config import Config
from outwit.sim.browser import draw
from tests.pages import opened, ready_again
from tests.paths import ARTIFACTS
from tests.running_app import running_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-reviews")
    with running_app(Config(data_dir=root / "data", votes_required=1, mnist_data="sample")) as served_app:
        yield served_app


def open_page(browser, url):
    return opened(browser.new_context(viewport={"width": 1280, "height": 1100}).new_page(), url)


def save_drawing(page, digit: int, label: int) -> None:
    draw(page, digit)
    page.locator("#guess").get_by_text(str(digit)).first.wait_for(timeout=30_000)
    page.locator(f'#digit [data-testid="{label}-radio-label"]').click()
    page.locator("#save").click()
    page.locator("#flag-message").get_by_text(f"you drew {label}").wait_for(timeout=30_000)
    ready_again(page)


def test_save_retract_validate_and_see_the_rounds_page_and_leaderboard(served, browser):
    url, services = served
    ada = open_page(browser, url)
    ada.locator("#name input, #name textarea").first.fill("Ada")
    save_drawing(ada, 3, 8)
    save_drawing(ada, 7, 1)
    rows = services.store.rows()
    assert [(r["label"], r["user"]) for r in rows] == [(8, "Ada"), (1, "Ada")]
    # the newest save is picked in "Your saved drawings": retract it
    ada.locator("#retract").click()
    ada.locator("#retract-message").get_by_text("Retracted").wait_for(timeout=30_000)
    assert services.reviews.status(rows[1]) == "retracted" and services.store.path_of(rows[1]).exists()
    ada.get_by_role("tab", name="Validate").click()
    ada.locator("#validate-question").get_by_text("Nothing to validate").wait_for(timeout=30_000)  # not her own

    bob = open_page(browser, url)
    bob.get_by_role("tab", name="Validate").click()
    question = bob.locator("#validate-question")
    question.get_by_text("Is this a").wait_for(timeout=30_000)
    assert "Is this a 8?" in question.inner_text()  # the retracted 1 is not asked about
    bob.locator("#validate-image img").first.wait_for(timeout=30_000)
    bob.locator("#vote-correct").click()
    bob.locator("#validate-message").get_by_text("now validated").wait_for(timeout=30_000)
    question.get_by_text("Nothing to validate").wait_for(timeout=30_000)
    assert services.reviews.status(rows[0]) == "validated"
    ARTIFACTS.mkdir(exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "validate.png"), full_page=True)

    bob.get_by_role("tab", name="Rounds").click()
    table = bob.locator("#rounds-table")
    table.locator("text=base model >> visible=true").first.wait_for(timeout=30_000)
    board = bob.locator("#leaderboard")
    board.locator("text=Ada >> visible=true").first.wait_for(timeout=30_000)
    bob.locator("#round-download").click()
    link = bob.locator("#round-zip a").first
    link.wait_for(timeout=30_000)
    with bob.expect_download() as download:
        link.click()
    names = zipfile.ZipFile(download.value.path()).namelist()
    assert "round-0000/train/metadata.jsonl" in names
    bob.screenshot(path=str(ARTIFACTS / "rounds.png"), full_page=True)
