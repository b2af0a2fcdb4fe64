"""The quick guess in a real browser: the guess from the strokes the page recorded, a Save that reads the editor's
drawing, and the pen-up held from the editor until the guess is painted (outwit/ui/assets/page.js)."""

from outwit.sim.browser import draw
from outwit.ui import scripts
from tests.pages import LAPTOP, opened, wait_for_guess


def test_the_guess_comes_from_the_strokes_and_the_editor_sends_nothing(page_url, browser):
    """The quick guess (outwit/ml/strokes.py, on the plain route): the guess appears from the strokes the page
    recorded, and the editor sends nothing of its drawing meanwhile (with its paths blocked, to be sure); Clear
    forgets the strokes."""
    url, _ = page_url
    page = browser.new_page(viewport=LAPTOP)
    blocked, ticks = [], []
    for path in ("**/gradio_api/component_server/**", "**/gradio_api/upload**"):
        page.route(path, lambda route: (blocked.append(route.request.url), route.abort()))
    page.on("request", lambda request: ticks.append(1) if "/outwit/panel" in request.url else None)
    opened(page, url)
    draw(page, 7)
    guess = page.locator("#guess [data-testid='label-output-value']")
    guess.wait_for(timeout=30_000)
    assert guess.inner_text().strip() == "7"
    seen = len(ticks)
    while len(ticks) < seen + 2:  # two of the panel's ticks (each was a Gradio event, on which the editor uploaded)
        page.wait_for_event("request", timeout=30_000)
    assert not blocked, f"the editor sent its drawing while nothing read it: {blocked}"
    assert page.evaluate("() => window.__outwitStrokes.strokes.length") >= 1
    page.locator("#clear").click()
    page.wait_for_function("() => window.__outwitStrokes.strokes.length === 0", timeout=10_000)
    page.close()


def test_a_save_clicked_the_moment_the_pen_lifts_sends_the_whole_drawing(page_url, browser):
    """The editor's drawing is read when Save is clicked: a click right after the last stroke's pen-up (the guess
    not shown yet) saves the drawing with that stroke, judged as the model reads it."""
    url, services = page_url
    page = opened(browser.new_page(viewport=LAPTOP), url)
    page.locator('#digit [data-testid="8-radio-label"]').click()
    before = services.store.counts().total
    draw(page, 3)
    page.locator("#save").click()
    message = page.locator("#flag-message")
    message.get_by_text("Saved:").wait_for(timeout=30_000)
    assert "the model said 3" in message.inner_text()
    assert services.store.counts().total == before + 1
    page.close()


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
    """The pen-up hold: the editor's slow pen-up work waits until the quick guess is on the page."""
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


# A page with only the page's scripts (the pen-up hold among them), a guess box, a stand-in for the stroke
# recorder, an editor's pen-up listener and an editor's frame loop: the hold's frame handling, each step under
# the test's control.
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
    page.set_content(HOLD_PAGE % scripts.head())
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


def test_after_an_undo_the_guess_comes_from_the_editors_drawing(page_url, browser):
    """Once another tool than the brush was used (here the editor's Undo), the recorded strokes no longer match the
    canvas: each pen-up then asks for the editor's own guess (/predict, which reads the canvas)."""
    url, _ = page_url
    page = opened(browser.new_page(viewport=LAPTOP), url)
    predicts = []
    page.on("request", lambda request: predicts.append(1) if request.url.endswith("/run/predict") else None)
    draw(page, 1)
    wait_for_guess(page, 1)
    page.locator('#sketchpad button[aria-label="Undo"]').click()
    assert page.evaluate("() => window.__outwitStrokes.off")
    draw(page, 7)
    wait_for_guess(page, 7)
    assert predicts, "the guess did not come from the editor's drawing"
    page.close()
