"""What the browser tests share: opening the page as a person would, waiting for a guess, keeping a screenshot."""
from tests.paths import ARTIFACTS

LAPTOP = {"width": 1280, "height": 1100}


def opened(page, url: str):
    """`page` at the app, loaded and settled as a person would see it."""
    page.goto(url)
    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
    page.wait_for_timeout(1000)
    return page


def new_page(browser, url: str, **options):
    return opened(browser.new_page(**{"viewport": LAPTOP, **options}), url)


def keep(page, name: str) -> None:
    """A full-page screenshot under tests/artifacts/, for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def wait_for_guess(page, digit: int) -> None:
    """Until the guess's top digit is `digit` (the first guess may be of the first strokes alone)."""
    page.locator("#guess h2, #guess .output-class").get_by_text(str(digit), exact=True).wait_for(timeout=30_000)
