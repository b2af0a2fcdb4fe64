"""What the page's tabs share: the canvas (checked, its drawings kept until read), the digit picker, the name box,
who the visitor is, and the visitor's errors."""
from __future__ import annotations

import html
import io
import threading
import warnings
from collections import OrderedDict

import gradio as gr
import PIL.Image
from gradio.data_classes import FileData

from outwit.ml.preprocess import check_side
from outwit.text import quoted

CANVAS = 280  # px; with BRUSH_RADIUS a digit drawn over most of the canvas gets MNIST-like strokes
BRUSH_RADIUS = 9


def label_value(probs) -> dict[str, float]:
    """Probabilities for the digits 0-9 as a gr.Label shows them."""
    return {str(d): float(p) for d, p in enumerate(probs)}


def user_error(message: str) -> gr.Error:
    """The visitor's mistake: shown to them, nothing changed, no traceback in the server log.

    Gradio renders an error's message as HTML: a message quoting what someone typed (`<img src=x>` as an id) would
    show their markup, so it is escaped and shows as text. Shown only by a queued event: Gradio 6.31's page drops the
    toast of an event with `queue=False` (its client reports that error without `visible`). So every event that can
    refuse what a person did is queued."""
    return gr.Error(html.escape(message, quote=False), print_exception=False)


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
            raise user_error(f"Pick a digit from 0 to 9, not {quoted(payload)}") from None


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
