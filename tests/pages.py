"""What the browser tests share: opening the page as a person would, waiting for a guess, keeping a screenshot."""
import os

from PIL import Image

from tests.paths import ARTIFACTS, ROOT

DOCS = ROOT / "docs" / "screens"

LAPTOP = {"width": 1280, "height": 1100}


def opened(page, url: str):
    """`page` at the app, loaded and ready to draw on, as a person would see it; its canvas clears are counted."""
    page.goto(url)
    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
    page.evaluate("""() => { window.clears = 0; document.addEventListener('click', (event) => {
        if (event.target.closest?.('button[aria-label="Clear canvas"]')) window.clears += 1; }, true); }""")
    wait_for_brush(page)
    return page


def ready_again(page, canvas: str = "sketchpad") -> None:
    """After a save: until the page has cleared the canvas (once more than last asked) and the brush is back."""
    page.wait_for_function("window.clears > (window.clearsSeen || 0)", timeout=60_000)
    page.evaluate("window.clearsSeen = window.clears")
    wait_for_brush(page, canvas)


def wait_for_brush(page, canvas: str = "sketchpad") -> None:
    """Until the canvas's brush is picked (the editor highlights its button) and the editor asks for no tool."""
    page.wait_for_function("""(id) => {
        const brush = document.querySelector(`#${id} button[aria-label="Brush"]`);
        return brush && brush.classList.contains('highlight')
            && !document.querySelector(`#${id}`).textContent.includes('select the draw tool');
    }""", arg=canvas, timeout=60_000)


def new_page(browser, url: str, **options):
    return opened(browser.new_page(**{"viewport": LAPTOP, **options}), url)


def keep(page, name: str) -> None:
    """A full-page screenshot under tests/artifacts/, for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def wait_for_guess(page, digit: int) -> None:
    """Until the guess's top digit is `digit` (the first guess may be of the first strokes alone)."""
    page.locator("#guess h2, #guess .output-class").get_by_text(str(digit), exact=True).wait_for(timeout=30_000)


def shoot(page, view: str, state: str) -> None:
    """A full-page screenshot of one state: under tests/artifacts/, or under docs/screens/ when
    OUTWIT_SCREENSHOTS=docs (`make screenshots`: the README shows those), reduced to 256 colours (40% of the bytes
    in git)."""
    if os.environ.get("OUTWIT_SCREENSHOTS") != "docs":
        keep(page, f"{view}-{state}.png")
        return
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{view}-{state}.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
