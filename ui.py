"""What the page's tabs share: the canvas, the visitor's errors, and the scripts that keep the brush ready."""
from __future__ import annotations

import io
import json
import reprlib
import threading
import warnings
from collections import OrderedDict

import gradio as gr
import PIL.Image
from gradio.data_classes import FileData

from preprocess import check_side

CANVAS = 280  # px; with BRUSH_RADIUS a digit drawn over most of the canvas gets MNIST-like strokes
BRUSH_RADIUS = 9

# A Sketchpad opens with no tool selected ("select the draw tool to start"); pick the brush for the visitor, in
# each canvas once it is on the page (the machine adversary's appears when its tab is first opened).
SELECT_BRUSH_JS = """
() => {
  const pick = (id) => {
    const button = document.querySelector(`#${id} button[aria-label="Brush"]`);
    if (!button || button.dataset.outwitPicked) return !!button;
    button.click();
    button.dataset.outwitPicked = "1";
    return true;
  };
  const timer = setInterval(() => {
    if (["sketchpad", "attack-sketchpad"].map(pick).every(Boolean)) clearInterval(timer);
  }, 100);
  setTimeout(() => clearInterval(timer), 20000);
}
"""


# The quick guess (strokes.py): record each brush stroke on the main canvas and, when the pen lifts, click the hidden
# button whose event sends them. Any other tool (undo, eraser, upload) switches it off until the canvas is cleared:
# the editor's own, slower guess then stands alone.
#
# The editor's own value lags the pen by a few hundred ms (it reads and encodes its canvas, then sends it). A Save
# clicked in that time (easy once the quick guess shows) would send the drawing as it was before the last stroke, or
# none. So the page follows the editor: each stroke that ends starts its update, or, while one runs, queues one more
# (as the editor does); EDITOR_CHANGED_JS, on the editor's change, marks one done. A Save clicked while one is due is
# held until it is done (at most HOLD_MS), then clicked again.
RECORD_STROKES_JS = """
() => {
  if (window.__outwitStrokes) return;
  const HOLD_MS = 3000;
  const state = window.__outwitStrokes = {strokes: [], current: null, off: false, width: 0, height: 0,
                                          drawing: false, updating: false, again: false, held: []};
  const canvasOf = (event) => event.target.closest && event.target.closest('#sketchpad canvas');
  const point = (event, canvas) => {
    const box = canvas.getBoundingClientRect();
    state.width = box.width; state.height = box.height;
    return [event.clientX - box.left, event.clientY - box.top];
  };
  const release = () => {
    const held = state.held; state.held = [];
    held.forEach((release) => release());
  };
  state.editorChanged = () => {
    if (state.again) { state.again = false; return; }  // the queued update, with the last strokes, comes next
    state.updating = false;
    release();
  };
  document.addEventListener('pointerdown', (event) => {
    const canvas = canvasOf(event);
    if (!canvas) return;
    state.drawing = true;
    if (!state.off) state.current = {canvas, points: [point(event, canvas)]};
  }, true);
  document.addEventListener('pointermove', (event) => {
    if (state.current) state.current.points.push(point(event, state.current.canvas));
  }, true);
  state.penUp = () => {  // also called by PEN_UP_HEAD, which holds the event from the editor a moment
    if (state.drawing) {
      state.drawing = false;
      if (state.updating) state.again = true; else state.updating = true;
    }
    if (!state.current) return;
    state.strokes.push(state.current.points);
    state.current = null;
    document.querySelector('#quick-guess')?.click();
  };
  document.addEventListener('pointerup', state.penUp, true);
  document.addEventListener('click', (event) => {
    const save = event.target.closest && event.target.closest('#save');
    if (save && state.updating && !state.releasing) {
      event.preventDefault();
      event.stopImmediatePropagation();
      let done = false;
      const click = () => {
        if (done) return;
        done = true;
        state.releasing = true;
        save.click();
        state.releasing = false;
      };
      state.held.push(click);
      setTimeout(click, HOLD_MS);
      return;
    }
    const button = event.target.closest && event.target.closest('#sketchpad button, #clear');
    if (!button) return;
    if (button.id === 'clear' || button.getAttribute('aria-label') === 'Clear canvas') {
      state.strokes = []; state.off = false;
    } else if (button.getAttribute('aria-label') !== 'Brush') {
      state.off = true;
    }
  }, true);
}
"""
EDITOR_CHANGED_JS = "() => { window.__outwitStrokes?.editorChanged(); }"
# The quick guess's event: its input is what the page recorded (an empty string when switched off).
STROKES_PAYLOAD_JS = """
(ignored) => {
  const state = window.__outwitStrokes;
  if (!state || state.off || !state.strokes.length) return '';
  return JSON.stringify({width: state.width, height: state.height, strokes: state.strokes});
}
"""
# A refused action's reason shows in a toast; Gradio also marks the event's outputs "Error" with a clear button,
# which in a message box under a button reads as a second, unexplained failure. Not in these boxes.
MESSAGE_BOXES = ("flag-message", "retract-message", "attack-message", "validate-message", "admin-message")
PAGE_CSS = ", ".join(f'#{box} [data-testid="status-tracker"]:has(.error)' for box in MESSAGE_BOXES) + \
    " { display: none; }"
# The server answers the quick guess in ~6 ms, but without a GPU the page showed it 150-230 ms after the pen lifted:
# the editor's own work on the pen-up (it bakes the stroke into its layer: 100-170 ms of main thread) ran first, and
# the editor redraws every frame while it thinks the pen is down (40-60 ms each), so the answer and Gradio's update
# waited behind two or three of those frames. So the pen-up of a recorded stroke is held from the editor (which listens
# on `window`, capturing; this listener is installed in the page's <head>, before the editor's) while the page records
# the stroke and asks for the quick guess, and handed on, the same event again, once the guess has changed and been
# painted, at most HAND_ON_MS later, or at once when the pen comes down again. Meanwhile the editor sees no moves (to
# it the pen is still down) and draws no frames. bench/pen_up.py measures it with and without.
PEN_UP_HEAD = """
<script>
(() => {
  const HAND_ON_MS = 250;
  const raf = window.requestAnimationFrame.bind(window), caf = window.cancelAnimationFrame.bind(window);
  // While held, the page's frame callbacks (the editor redraws every frame while, to it, the pen is down: 40-60 ms of
  // main thread each without a GPU) are put off, so that the guess's answer and Gradio's update are not queued
  // behind them; they run in the first frame after the hand-on. Cancelling one still works meanwhile.
  let held = null, due = new Map();  // held.putOff: frame callbacks put off; due: those to run next frame; by id
  window.requestAnimationFrame = (callback) => {
    const id = raf((time) => { if (held) held.putOff.set(id, callback); else callback(time); });
    return id;
  };
  window.cancelAnimationFrame = (id) => { if (!held?.putOff.delete(id) && !due.delete(id)) caf(id); };
  const resume = (putOff) => {
    if (!putOff.size) return;
    for (const [id, callback] of putOff) due.set(id, callback);
    raf((time) => {
      const run = due;
      due = new Map();
      for (const callback of run.values()) {
        try { callback(time); } catch (error) { reportError(error); }  // as the browser would: the rest still run
      }
    });
  };
  const handOn = () => {
    if (!held) return;
    const {event, target, observer, timer, putOff} = held;
    held = null;
    resume(putOff);
    observer.disconnect();
    clearTimeout(timer);
    window.__outwitHandingOn = true;
    try { target.dispatchEvent(new PointerEvent('pointerup', event)); } finally { window.__outwitHandingOn = false; }
  };
  window.addEventListener('pointerup', (event) => {
    const state = window.__outwitStrokes;
    const guess = document.querySelector('#guess');
    if (window.__outwitHandingOn || window.__outwitNoHold || !event.isTrusted || !state || !state.current || !guess) {
      return;  // (__outwitNoHold: bench/pen_up.py's comparison)
    }
    handOn();
    event.stopImmediatePropagation();
    const shown = () => [...guess.querySelectorAll('[data-testid="label-output-value"], meter')]
      .map((e) => e.getAttribute('value') ?? e.textContent).join('|');  // its top digit and bars
    const before = shown();
    const observer = new MutationObserver(() => {
      if (shown() === before) return;  // Gradio marking the request pending, not the answer
      observer.disconnect();
      raf(() => setTimeout(handOn, 0));  // after the frame that paints the guess
    });
    held = {event, target: event.target, observer, timer: setTimeout(handOn, HAND_ON_MS), putOff: new Map()};
    observer.observe(guess, {subtree: true, childList: true, characterData: true, attributes: true});
    state.penUp();
  }, true);
  window.addEventListener('pointerdown', handOn, true);
  window.addEventListener('pointercancel', handOn, true);
  window.addEventListener('pointermove', (event) => {  // the pen is up: the editor must not draw on meanwhile
    if (held && !window.__outwitHandingOn) event.stopImmediatePropagation();
  }, true);
})();
</script>
"""


# Names for what a screen reader would otherwise announce as nothing: the canvases and the plots (their figures are in
# the panel's text above them). Set again whenever Gradio re-renders them.
LABELS = {
    "#sketchpad canvas": "Drawing canvas: draw a digit here with a mouse, a finger or a pen",
    "#attack-sketchpad canvas": "Drawing canvas for the machine adversary: draw a digit here",
    "#accuracy-plot": "Plot of the model's accuracy per round, on MNIST, on held-out adversarial drawings and under "
                      "a gradient attack; the figures are in the text above",
    "#digits-plot": "Bar chart of the saved drawings per digit they really are",
}
LABELS_JS = """
() => {
  const labels = %s;
  const apply = () => {
    for (const [selector, label] of Object.entries(labels)) {
      for (const element of document.querySelectorAll(selector)) {
        if (element.getAttribute('aria-label') !== label) {
          element.setAttribute('aria-label', label);
          element.setAttribute('role', 'img');
        }
      }
    }
  };
  apply();
  new MutationObserver(apply).observe(document.body, {childList: true, subtree: true});
}
""" % json.dumps(LABELS)


def clear_canvas_js(elem_id: str) -> str:
    return f"""
() => {{
  document.querySelector('#{elem_id} button[aria-label="Clear canvas"]')?.click();
  setTimeout(() => document.querySelector('#{elem_id} button[aria-label="Brush"]')?.click(), 150);
}}
"""


def label_value(probs) -> dict[str, float]:
    """Probabilities for the digits 0-9 as a gr.Label shows them."""
    return {str(d): float(p) for d, p in enumerate(probs)}


def user_error(message: str) -> gr.Error:
    """The visitor's mistake: shown to them, nothing changed, no traceback in the server log.

    Shown only by a queued event: Gradio 6.31's page drops the toast of an event with `queue=False` (its client
    reports that error without `visible`). So every event that can refuse what a person did is queued."""
    return gr.Error(message, print_exception=False)


def unreadable(reason: object) -> gr.Error:
    """A drawing that is not an image the app can read, and why."""
    return user_error(f"That drawing can't be read: {reason}")


class BlobStore(OrderedDict):
    """The editor's drawings sent ahead of an event (`accept_blobs`, one request per part: background, layer,
    composite, in parallel), by the random id the page then sends with the event.

    Out of the box Gradio keeps them in a plain dict, which loses drawings: two parts arriving at once each start
    an empty entry and the last one written wins (the drawing arrives without its layer, or empty: "Draw a digit
    first" for a drawing on screen); the first event that reads an id drops it, so a second event with the same id
    finds nothing; and ids no event read (a stroke whose guess was skipped as stale) are kept forever. Here the
    parts of one id fill in one entry, and the newest `limit` drawings are kept whether read or not."""

    def __init__(self, limit: int = 256):
        super().__init__()
        self.limit = limit
        self.lock = threading.RLock()

    def get(self, key, default=None):
        """`accept_blobs` reads the entry (or a new empty one), fills in its part and writes it back: under the
        lock, the new entry is stored at once, so the other parts of the drawing fill in the same one."""
        with self.lock:
            if key not in self and default is not None:
                self[key] = default
            return super().get(key, default)

    def __setitem__(self, key, value):
        with self.lock:
            super().__setitem__(key, value)
            self.move_to_end(key)
            while len(self) > self.limit:
                self.popitem(last=False)

    def pop(self, key, default=None):  # Gradio's preprocess drops what it read: keep it for the next event
        return super().get(key, default)


class CheckedSketchpad(gr.Sketchpad):
    """A Sketchpad that refuses what is not a drawing with a message the sender can read: a file that is not an
    image, a truncated one, one too big (judged from its header, before any pixel is decoded) or a
    decompression bomb. Out of the box those fail inside Gradio with an opaque "the app raised an exception".

    It keeps the drawings the page sends ahead of its events in a BlobStore (set by sketchpad())."""

    # No __init__ here: Gradio builds the page's props from the constructor's signature. sketchpad() sets the store.

    def get_block_name(self) -> str:
        return "imageeditor"  # the page's component is the stock one

    def preprocess(self, payload):
        parts = []
        if payload is not None:
            parts = [payload.background, payload.composite, *(payload.layers or [])]
            if payload.id is not None and (sent := self.blob_storage.get(payload.id)):
                parts = [sent.background, sent.composite, *sent.layers]
        for part in parts:
            if isinstance(part, FileData):
                _check_image(part.path)
            elif isinstance(part, (bytes, bytearray)):
                _check_image(io.BytesIO(part))
        try:
            return super().preprocess(payload)
        except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as err:
            raise unreadable(err) from None


def _check_image(file) -> None:
    """`file`: a path or a binary file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # refused just below, by size
            with PIL.Image.open(file) as image:  # reads the header only
                width, height = image.size
    except PIL.Image.DecompressionBombError as err:
        raise unreadable(err) from None
    except (OSError, SyntaxError, ValueError):
        raise unreadable("the file is not an image") from None
    try:
        check_side(width, height)
    except ValueError as err:
        raise unreadable(err) from None


class DigitRadio(gr.Radio):
    """The ten digits; anything else (-1, 10, "seven") is refused with the page's own words."""

    def get_block_name(self) -> str:
        return "radio"

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise user_error(f"Pick a digit from 0 to 9, not {reprlib.repr(payload)}") from None


def digit_choice(elem_id: str, label: str = "The digit you drew", **kwargs) -> DigitRadio:
    return DigitRadio([(str(d), d) for d in range(10)], label=label, elem_id=elem_id, **kwargs)


def sketchpad(elem_id: str, label: str) -> gr.Sketchpad:
    pad = CheckedSketchpad(elem_id=elem_id, label=label, canvas_size=(CANVAS, CANVAS), type="numpy",
                           brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                           layers=False, transforms=())
    pad.blob_storage = BlobStore()
    return pad


def visitor(request: gr.Request | None, display_name: str | None) -> tuple[str | None, str | None]:
    """Who is asking: their session, and their name (a signed-in visitor's own name wins over a display name)."""
    name = (display_name or "").strip() or None
    if request is None:
        return None, name
    return request.session_hash, request.username or name


def display_name_box() -> gr.Textbox:
    return gr.Textbox(label="Display name (optional: shown on the leaderboard)", max_length=40, elem_id="name",
                      placeholder="anonymous")
