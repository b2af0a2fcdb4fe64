"""The page's scripts and styles, kept as real files in `assets/` and handed to Gradio at launch.

`page.js` goes into the page's <head> as it is, inside a <script>: the pen-up hold in it must listen before the
editor's own listeners do (a `<script src>` would arrive later), and Gradio's `head_paths` take HTML, not scripts.
`page.css` goes in through `css_paths`. Each event's `js` below is a one-line call into `window.outwit`.
"""
from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
PAGE_JS = ASSETS / "page.js"
PAGE_CSS = ASSETS / "page.css"

SELECT_BRUSH = "() => window.outwit.selectBrush()"  # each canvas's brush picked, once it is on the page
RECORD_STROKES = "() => window.outwit.recordStrokes()"  # the strokes the quick guess sends
QUICK_GUESS = "(shown, models) => window.outwit.quickGuess(shown, models)"  # the guess for the strokes by the chosen
# models: the Label's new value, and the line saying what each read
CLEARED = "(sandbox, aim) => window.outwit.cleared(sandbox, aim)"  # an attempt counted if a guess was shown; cleared
PANEL_TICK = "() => window.outwit.panelTick()"  # the panel's parts asked for only when they changed
CLEAR_SAVED = "() => window.outwit.clearSaved()"  # after a save: cleared, and not one more attempt

# Names for what a screen reader would otherwise announce as nothing: the canvases and the plots (their figures are in
# the panel's text above them).
LABELS = {
    "#sketchpad canvas": "Drawing canvas: draw a digit here with a mouse, a finger or a pen",
    "#attack-sketchpad canvas": "Drawing canvas for the machine adversary: draw a digit here",
    "#accuracy-plot": "Plot of the model's accuracy per round, on MNIST, on held-out adversarial drawings and under "
                      "a gradient attack; the figures are in the text above",
    "#digits-plot": "Bar chart of the saved drawings per digit they really are",
}


def head() -> str:
    """What `launch(head=...)` puts in the page's <head>: page.js."""
    return f"<script>\n{PAGE_JS.read_text(encoding='utf-8')}</script>\n"


def clear_canvas(elem_id: str) -> str:
    """Clear one canvas with the editor's own button, which keeps the brush ready (a value of None would not)."""
    return f"() => window.outwit.clearCanvas({json.dumps(elem_id)})"


def with_strokes(at: int) -> str:
    """A save's inputs as they are, but the one at `at`: the strokes the page recorded."""
    return f"(...args) => window.outwit.withStrokes(args, {at})"


def label_elements() -> str:
    """Name the canvases and plots of LABELS, again whenever Gradio re-renders them."""
    return f"() => window.outwit.labelElements({json.dumps(LABELS)})"
