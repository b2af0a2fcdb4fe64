"""A real browser: Debian's Chromium, driven by Playwright, draws with the mouse, sees the guess, flags it."""
import io
import json

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.browser import draw, draw_by_touch
from config import Config
from tests.pages import LAPTOP, keep, new_page, opened, wait_for_guess
from tests.running_app import running_app
from ui import LABELS, PEN_UP_HEAD


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    with running_app(Config(data_dir=root / "data", mnist_data="sample")) as served_app:
        yield served_app


def test_draw_see_the_guess_flag_it_and_see_the_confirmation(page_url, browser):
    url, services = page_url
    saved = services.store.counts().total + 1  # the other test may have saved one first
    page = new_page(browser, url)
    assert page.get_by_text("select the draw tool to start").count() == 0
    other = "8"
    page.locator(f"#digit [data-testid=\"{other}-radio-label\"]").click()  # first, so Save follows the guess at once
    draw(page, 3)
    guess = page.locator("#guess")
    # The first guess may be of the first stroke alone (the quick guess lands while the next stroke is drawn); the
    # last one is of the whole digit.
    try:
        guess.locator("h2, .output-class").get_by_text("3", exact=True).wait_for(timeout=30_000)
    except PlaywrightTimeout:
        pytest.fail(f"the model read {guess.locator('h2, .output-class').first.inner_text().strip()!r}")
    # Saved the moment the quick guess shows: the editor's own value may still be on its way (its 3 is one stroke:
    # before the editor has it, a save would be of an empty canvas). The page holds the click until it is there.
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
    keep(page, "screenshot.png")
    page.close()


def test_the_machine_adversary_tab_attacks_a_drawing_and_saves_it(page_url, browser):
    url, services = page_url
    page = new_page(browser, url)
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
    keep(page, "machine-adversary.png")
    page.close()


def test_the_guess_comes_from_the_strokes_before_the_editor_uploads_anything(page_url, browser):
    """The quick guess (strokes.py): with the editor's uploads blocked, the guess still appears, from the strokes the
    page recorded; Clear forgets them."""
    url, _ = page_url
    page = browser.new_page(viewport=LAPTOP)
    blocked = []
    for path in ("**/gradio_api/component_server/**", "**/gradio_api/upload**"):
        page.route(path, lambda route: (blocked.append(route.request.url), route.abort()))
    opened(page, url)
    draw(page, 7)
    guess = page.locator("#guess [data-testid='label-output-value']")
    guess.wait_for(timeout=30_000)
    assert guess.inner_text().strip() == "7"
    for _ in range(100):  # the editor's own path starts later, and is refused
        if blocked:
            break
        page.wait_for_timeout(100)
    assert blocked, "the editor sent nothing: the test did not block its path"
    assert page.evaluate("() => window.__outwitStrokes.strokes.length") >= 1
    page.locator("#clear").click()
    page.wait_for_function("() => window.__outwitStrokes.strokes.length === 0", timeout=10_000)
    page.close()


def test_a_save_clicked_before_the_editor_has_sent_the_drawing_waits_for_it(page_url, browser):
    """The quick guess shows before the editor's own value is on the server; a Save clicked then would send the
    canvas as it was (here: empty). The page holds the click until the editor's drawing is there."""
    url, services = page_url
    page = browser.new_page(viewport=LAPTOP)
    held, flags = [], []
    page.route("**/gradio_api/component_server/**", lambda route: held.append(route))  # the editor's parts wait
    page.on("request", lambda request: flags.append(request) if "/queue/join" in request.url
            and len(json.loads(request.post_data or "{}").get("data", [])) == 5 else None)  # flag's 5 inputs
    opened(page, url)
    page.locator('#digit [data-testid="8-radio-label"]').click()
    draw(page, 3)
    wait_for_guess(page, 3)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the editor sent nothing: the test did not hold its path"
    before = services.store.counts().total
    page.locator("#save").click()
    page.wait_for_timeout(1500)  # the page would hold it 3 s at most
    assert not flags, "Save went ahead before the editor's drawing was on the server"
    while held:
        held.pop().continue_()
    message = page.locator("#flag-message")
    message.get_by_text("Saved:").wait_for(timeout=30_000)
    assert len(flags) == 1 and "the model said 3" in message.inner_text()
    assert services.store.counts().total == before + 1
    page.close()


@pytest.fixture
def own_app(tmp_path):
    """An app of its own: a round changes the model the other tests' drawings are guessed by."""
    with running_app(Config(data_dir=tmp_path / "data", mnist_data="sample"), measured=True) as served_app:
        yield served_app


def test_a_round_that_lands_while_the_page_is_open_is_announced(own_app, browser):
    url, services = own_app
    page = new_page(browser, url)
    page.wait_for_timeout(500)  # the page has seen the round now serving
    before = services.worker.status().round
    services.worker.request_round()
    assert services.worker.wait_idle(120), "the round did not finish"
    after = services.worker.status()
    assert after.round == before + 1, f"the round was not promoted: {after.history[-1]}"
    page.get_by_text(f"Round {after.round} is live").first.wait_for(timeout=30_000)  # the toast, then the panel
    page.locator("#summary").get_by_text(f"Round {after.round} is live").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert page.get_by_text("Round 1 appears after").count() == 0  # the first load's caption is gone
    keep(page, "round-landed.png")
    page.close()


def test_a_finger_draws_on_a_phone(page_url, browser):
    """390×844, touch only: the strokes go on the canvas (the page does not scroll instead) and are guessed."""
    url, _ = page_url
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    opened(page, url)
    page.locator("#sketchpad canvas").first.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    draw_by_touch(page, 7)
    wait_for_guess(page, 7)
    assert page.evaluate("window.scrollY") == scrolled
    keep(page, "phone-touch.png")
    context.close()


def test_the_canvas_and_plots_have_names_and_a_save_works_from_the_keyboard(page_url, browser):
    url, services = page_url
    page = new_page(browser, url)
    for selector, label in LABELS.items():
        if not selector.startswith("#attack"):  # that tab is not open
            assert page.locator(selector).first.get_attribute("aria-label") == label, selector
            assert page.get_by_role("img", name=label).count() >= 1
    draw(page, 3)
    wait_for_guess(page, 3)
    before = services.store.counts().total
    page.locator("#digit input").nth(8).focus()  # the digit choice: arrow keys and Space, as radio buttons go
    page.keyboard.press("Space")
    assert page.locator("#digit input").nth(8).is_checked()
    for _ in range(15):  # Tab on to the save button
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "save":
            break
    assert page.evaluate("document.activeElement.id") == "save", "the save button is not reachable with Tab"
    page.keyboard.press("Enter")
    page.locator("#flag-message").get_by_text("Saved: you drew 8, the model said 3").wait_for(timeout=30_000)
    assert services.store.counts().total == before + 1
    page.close()


def test_in_dark_mode_the_ink_stays_visible(page_url, browser):
    url, _ = page_url
    page = new_page(browser, url, color_scheme="dark")
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert page.evaluate("document.body.classList.contains('dark') || "
                         "getComputedStyle(document.body).backgroundColor !== 'rgb(255, 255, 255)'")  # the page is dark
    draw(page, 3)
    wait_for_guess(page, 3)
    shot = np.asarray(Image.open(io.BytesIO(page.locator("#sketchpad canvas").first.screenshot())).convert("L"))
    box = page.locator("#sketchpad canvas").first.bounding_box()
    middle = shot[int(box["height"] * 0.1):int(box["height"] * 0.9), int(box["width"] * 0.3):int(box["width"] * 0.7)]
    paper, ink = np.percentile(middle, 50), np.percentile(middle, 2)
    assert paper > 200 and ink < 60, f"ink {ink} on paper {paper}: not dark on light"
    keep(page, "dark.png")
    page.close()


# Before the page's own scripts: what reaches the page (the pen-up, trusted) and what reaches the editor's side of it
# (a listener on document sees the event only once the page hands it on), and when the guess first shows a digit.
ORDER = """
window.__order = [];
window.addEventListener('pointerup', (e) => window.__order.push(['pen-up', e.isTrusted]), true);
document.addEventListener('pointerup', (e) => window.__order.push(['editor', e.isTrusted]), true);
const watch = setInterval(() => {
  const guess = document.querySelector('#guess');
  if (!guess) return;
  clearInterval(watch);
  new MutationObserver(() => {
    const digit = guess.querySelector('[data-testid="label-output-value"]');
    if (digit && !window.__order.some(([what]) => what === 'guess')) window.__order.push(['guess', digit.textContent]);
  }).observe(guess, {subtree: true, childList: true, characterData: true});
}, 20);
"""


def test_the_editor_gets_the_pen_up_after_the_quick_guess_is_shown(page_url, browser):
    """ui.PEN_UP_HEAD: the editor's slow pen-up work waits until the quick guess is on the page."""
    url, _ = page_url
    page = browser.new_page(viewport=LAPTOP)
    page.add_init_script(ORDER)
    opened(page, url)
    draw(page, 1)  # one stroke
    wait_for_guess(page, 1)
    order = page.evaluate("window.__order")
    assert order[0] == ["pen-up", True]
    assert order[1][0] == "guess", f"the editor had the pen-up before the guess showed: {order}"
    assert ["editor", False] in order[2:], order  # handed on, the same event again
    assert order.count(["editor", True]) == 0, order  # not twice
    page.close()


# A page with only ui.PEN_UP_HEAD, a guess box, a stand-in for the stroke recorder, an editor's pen-up listener and
# an editor's frame loop: the hold's frame handling, each step under the test's control.
HOLD_PAGE = """<html><head>%s</head><body style="margin:0">
<div id="guess" style="width:400px;height:400px"><span data-testid="label-output-value">?</span></div>
<script>
window.log = [];
window.__outwitStrokes = {current: {points: []}, penUp() { this.current = null; log.push('recorded'); }};
document.addEventListener('pointerup', (e) => log.push(e.isTrusted ? 'editor: pen-up, at once' : 'editor: pen-up'));
window.frames_drawn = 0;
const loop = () => { frames_drawn++; requestAnimationFrame(loop); };  // as the editor's renderer does
requestAnimationFrame(loop);
</script></body></html>"""


def lift_the_pen(browser):
    """The hold page, its frame loop running, just after a trusted pen-up: held from the editor until the guess
    changes (or 250 ms pass)."""
    page = browser.new_page(viewport=LAPTOP)
    page.set_content(HOLD_PAGE % PEN_UP_HEAD)
    page.wait_for_function("frames_drawn > 3")
    page.mouse.move(100, 100)
    page.mouse.down()
    page.mouse.up()
    return page


def test_while_the_pen_up_is_held_the_editors_frames_wait_and_run_after(browser):
    page = lift_the_pen(browser)
    held = page.evaluate("""async () => {
      const before = frames_drawn;
      window.ran = [];
      requestAnimationFrame(() => { throw new Error('a broken frame callback'); });  // does not stop the rest
      requestAnimationFrame(() => ran.push('kept'));
      const cancelled = requestAnimationFrame(() => ran.push('cancelled'));
      await new Promise((done) => setTimeout(done, 60));  // several frames' time
      const seen = [frames_drawn - before, log.slice(), ran.slice()];
      cancelAnimationFrame(cancelled);  // cancelled while put off
      document.querySelector('[data-testid=label-output-value]').textContent = '7';  // the guess lands
      window.before = frames_drawn;
      return seen;
    }""")
    assert held == [0, ["recorded"], []]  # the frames were put off: none drawn, none run
    page.wait_for_function("log.length === 2")
    page.wait_for_function("frames_drawn > before + 3")  # and go on after the hand-on
    assert page.evaluate("[log, ran]") == [["recorded", "editor: pen-up"], ["kept"]]
    page.close()


def test_a_held_pen_up_is_handed_on_even_if_no_guess_comes(browser):
    page = lift_the_pen(browser)
    before = page.evaluate("frames_drawn")
    page.wait_for_function("log.length === 2", timeout=5000)  # the guess never changes: a timer hands it on
    page.wait_for_function("frames_drawn > %d" % (before + 3))
    assert page.evaluate("log") == ["recorded", "editor: pen-up"]
    page.close()
