"""The wait a person sees: from lifting the pen to the new guess on the page, in Chromium, on loopback.

    python -m bench.pen_up [--digits 10]

Starts `python app.py` (outwit/sim/app_process.py), opens the page in Debian's Chromium (Playwright, as the browser
tests do) and draws each digit stroke by stroke with the mouse, on a fresh page each. The page itself times each
stroke: from its `pointerup` to the end of the frame that paints the first change of the guess (its top digit and
bars) after it (`in_page_p50_ms`: to the change in the page, before that frame); a stroke that leaves the guess as it
was is not counted. Each digit is drawn three times, side by side in one run: as the page is (the first guess is its
quick one, from the strokes it recorded, on the plain route /outwit/guess: strokes.py, outwit/ui/routes.py; the
editor's pen-up work and its frames wait until the quick guess is painted: the pen-up hold in
outwit/ui/assets/page.js), the same without that wait, and with the quick guess switched off (the editor's path, as
after an undo or the eraser: it encodes and uploads its canvas, then `/predict`).
`first_guess_stood` counts the strokes whose first top digit was still the top digit when the next stroke began.
Prints one JSON line: p50/p99 in ms of each. Target: p50 at most 50 ms.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from outwit.sim.app_process import AppProcess
from outwit.sim.browser import CHROMIUM, FLAGS, draw

# Installed in the page: the time of each pointerup, and the time the guess first differs after it. The guess is its
# top digit and its bars' values (not the panel's whole text: Gradio's progress timer, "0.2s", shows there too).
# For each timed stroke also the top digit first shown and the one standing when the next stroke starts: the quick
# guess (strokes.py) against the editor's own, which lands later.
TIMER = """() => {
  const guess = document.querySelector('#guess');
  const read = () => Array.from(guess.querySelectorAll('[data-testid="label-output-value"], meter'))
    .map((e) => e.getAttribute('value') ?? e.textContent).join('|');
  const top = () => guess.querySelector('[data-testid="label-output-value"]')?.textContent ?? '';
  const timing = window.__penUp = {up: null, seen: null, waits: [], painted: [], first: [], last: []};
  const frame = window.__benchRaf;  // the browser's own: the page puts off frame callbacks while it holds a pen-up
  const close = () => { if (timing.first.length > timing.last.length) timing.last.push(top()); };
  document.addEventListener('pointerdown', close, true);
  window.__penUpHook = () => { timing.up = performance.now(); timing.seen = read(); };
  new MutationObserver(() => {
    if (timing.up !== null && read() !== timing.seen) {
      const up = timing.up;
      timing.waits.push(performance.now() - up);
      frame(() => setTimeout(() => timing.painted.push(performance.now() - up), 0));  // after the frame that paints it
      timing.first.push(top());
      timing.up = null;
    }
  }).observe(guess, {subtree: true, childList: true, characterData: true, attributes: true});
  window.__penUpClose = close;
}"""


# Installed before the page's own scripts, so it is the first to see the pen lift: the page holds that event from the
# editor a moment (the pen-up hold in outwit/ui/assets/page.js), and a listener of the page's own would see it late,
# handed on.
PEN_UP_FIRST = """
window.__benchRaf = window.requestAnimationFrame.bind(window);
window.addEventListener('pointerup', (e) => { if (e.isTrusted) window.__penUpHook?.(); }, true);
"""


def draw_timed(page, digit: int, settle_ms: int) -> dict:
    """Draw a digit, pausing after each stroke as a person does (the guess lands meanwhile): the waits timed, and
    for each the top digit first shown and the one standing at the end of the pause."""
    draw(page, digit, pause_ms=settle_ms)
    return page.evaluate("() => { window.__penUpClose(); return window.__penUp; }")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=10, help="digits to draw, one fresh page each")
    parser.add_argument("--settle", type=int, default=1500, help="ms between strokes: longer than a guess takes")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    paths = {path: {"waits": [], "painted": [], "agree": 0, "shown": 0}
             for path in ("quick", "quick_no_hold", "editor_only")}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        app = AppProcess(Path(tmp) / "data", Path(tmp) / "app.log").start()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.add_init_script(PEN_UP_FIRST)
            for digit in range(-1, args.digits):  # -1: a first digit, untimed, while the app measures its model
                for path, figures in paths.items():
                    page.goto(app.url)
                    page.wait_for_selector("#sketchpad canvas", timeout=60_000)
                    page.wait_for_timeout(500)
                    if path == "editor_only":  # as after the eraser or undo: the page records no strokes
                        page.evaluate("() => { window.__outwitStrokes.off = true; }")
                    if path == "quick_no_hold":  # the editor handles the pen-up at once (no pen-up hold)
                        page.evaluate("() => { window.__outwitNoHold = true; }")
                    page.evaluate(TIMER)
                    timed = draw_timed(page, digit % 10, args.settle)
                    if digit < 0:
                        page.wait_for_timeout(5000)
                        continue
                    figures["waits"] += timed["waits"]
                    figures["painted"] += timed["painted"]
                    figures["shown"] += len(timed["last"])
                    figures["agree"] += sum(first == last for first, last in zip(timed["first"], timed["last"]))
        finally:
            browser.close()
            app.stop()
    result = {"bench": "pen-up"}
    for path, figures in paths.items():
        waits, dom = figures["painted"], figures["waits"]
        result[path] = {"strokes_timed": len(waits), "p50_ms": round(float(np.percentile(waits, 50)), 1),
                        "p99_ms": round(float(np.percentile(waits, 99)), 1), "max_ms": round(max(waits), 1),
                        "in_page_p50_ms": round(float(np.percentile(dom, 50)), 1),
                        "first_guess_stood": f"{figures['agree']}/{figures['shown']}"}
    result["ratio_p50"] = round(result["editor_only"]["p50_ms"] / result["quick"]["p50_ms"], 1)
    result["hold_gain_p50_ms"] = round(result["quick_no_hold"]["p50_ms"] - result["quick"]["p50_ms"], 1)
    result["target_p50_ms"] = 50.0
    result["meets_target"] = result["quick"]["p50_ms"] <= 50.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
