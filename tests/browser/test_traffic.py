"""What the page sends, counted by the recorder bench/crowd.py replays (outwit/sim/assets/recorder.js): a visitor who
only draws and waits makes no upload, and a save sends the drawing once."""
from outwit.sim.browser import draw
from outwit.sim.traffic import RECORDER
from tests.pages import LAPTOP, opened, ready_again, wait_for_guess

SENT = """() => window.__traffic.filter((r) => r.start > (window.__since || 0)).map((r) => {
    const path = new URL(r.url, location.href).pathname;
    const files = (r.body?.form || []).filter((part) => part.filename).map((part) => part.filename);
    return {path, files};
})"""


def sent(page) -> list[dict]:
    return page.evaluate(SENT)


def since_now(page) -> None:
    page.evaluate("window.__since = performance.now()")


def test_drawing_and_waiting_sends_no_upload_and_a_save_sends_the_drawing_once(page_url, browser):
    """Draw and wait: the strokes' guess only; save: one set of the canvas's parts; draw again while events run:
    nothing of the canvas."""
    url, services = page_url
    page = browser.new_page(viewport=LAPTOP)
    page.add_init_script(RECORDER.read_text(encoding="utf-8"))
    opened(page, url)
    page.locator('#digit [data-testid="8-radio-label"]').click()
    since_now(page)
    draw(page, 3, pause_ms=200)
    wait_for_guess(page, 3)
    page.wait_for_function("""() => window.__traffic.filter((r) => r.start > window.__since
        && r.url.includes('/outwit/panel')).length >= 2""", timeout=30_000)  # two of the panel's ticks
    drawing = sent(page)
    assert any(r["path"].split("?")[0].endswith("/outwit/guess") for r in drawing), drawing
    editor = [r for r in drawing if r["path"].endswith(("/gradio_api/upload", "/gradio_api/component_server/"))]
    assert not editor, f"the page sent the editor's drawing while nothing read it: {editor}"
    assert not any(r["path"].endswith("/run/predict") for r in drawing), "a second guess for the same strokes"

    since_now(page)
    saved_from = page.evaluate("window.__since")
    page.locator("#save").click()
    page.locator("#flag-message").get_by_text("Saved:").wait_for(timeout=30_000)
    ready_again(page)
    since_now(page)
    page.wait_for_function("""() => window.__traffic.filter((r) => r.start > window.__since
        && r.url.includes('/outwit/panel')).length >= 1""", timeout=30_000)  # a tick after the save and its chain
    page.evaluate("(mark) => { window.__since = mark; }", saved_from)
    files = [name for r in sent(page) if r["path"].endswith("/gradio_api/upload") for name in r["files"]]
    assert sorted(files) == ["background.png", "composite.png", "layer_0.png"], files

    # The canvas has now been read by an event: Gradio asks it for its data on every loading-status change of any
    # event (it uploaded its layers each time). Draw again and make some: still nothing sent.
    since_now(page)
    draw(page, 7, pause_ms=200)
    wait_for_guess(page, 7)
    for events in (1, 2):  # one at a time: a click while the last one's event runs is dropped (trigger_mode "once")
        page.evaluate("document.querySelector('#panel-refresh').click()")
        page.wait_for_function("""(events) => window.__traffic.filter((r) => r.start > window.__since
            && r.url.includes('/queue/join')).length >= events && window.__traffic.every((r) => r.end !== null
            || r.messages !== null)""", arg=events, timeout=30_000)
    editor = [r for r in sent(page) if r["path"].endswith(("/gradio_api/upload", "/gradio_api/component_server/"))]
    assert not editor, f"the page sent the editor's drawing while nothing read it: {editor}"
    page.close()


def test_a_cleared_guess_counts_one_attempt_and_a_saved_one_does_not(page_url, browser):
    url, services = page_url
    attempts = lambda: services.worker.status().error_rate.attempts  # noqa: E731
    page = opened(browser.new_page(viewport=LAPTOP), url)
    before = attempts()
    draw(page, 4)
    wait_for_guess(page, 4)
    page.locator("#clear").click()
    page.wait_for_function("() => !document.querySelector(\"#guess [data-testid='label-output-value']\")")
    for _ in range(100):  # the count is sent as the canvas clears
        if attempts() == before + 1:
            break
        page.wait_for_timeout(100)
    assert attempts() == before + 1
    page.locator('#digit [data-testid="8-radio-label"]').click()
    draw(page, 3)
    wait_for_guess(page, 3)
    page.locator("#save").click()
    page.locator("#flag-message").get_by_text("Saved:").wait_for(timeout=30_000)
    ready_again(page)
    assert attempts() == before + 2  # the save counted itself once; the clear after it nothing more
    page.close()
