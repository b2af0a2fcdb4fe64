"""The canvas: Gradio's Sketchpad, refusing what is not a drawing before any pixel of it is decoded, and keeping the
drawings the page sends ahead of its events until they are read.

A drawing is refused, with the limit in the message, when it has more than MAX_LAYERS layers or a part (background,
layer or composite) over MAX_PART_SIDE on a side, judged from the images' headers: 2.56 Mpx in all at most. (Out
of the box eight requests of 50 layers of 2048×2048 at once took 7 GB, and a layer index of ten million sent ahead
padded a list to ten million entries; bench/memory.py measures both.) The page's canvas is CANVAS px, one layer.
"""
from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict

import gradio as gr
import PIL.Image
from fastapi import HTTPException
from gradio.components.base import server
from gradio.data_classes import FileData

from outwit.text import quoted
from outwit.ui.components import unreadable

CANVAS = 280  # px; with BRUSH_RADIUS a digit drawn over most of the canvas gets MNIST-like strokes
BRUSH_RADIUS = 9
MAX_LAYERS = 2  # the page sends one
MAX_PART_SIDE = 800  # px: eight drawings this large at once take under 200 MB (bench/memory.py)
PARTS = ("background", "layer", "composite")


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
        parts, layers = [], []
        if payload is not None:
            layers = payload.layers or []
            parts = [payload.background, payload.composite, *layers]
            if payload.id is not None and (sent := self.blob_storage.get(payload.id)):
                layers = sent.layers
                parts = [sent.background, sent.composite, *layers]
        if len(layers) > MAX_LAYERS:
            raise unreadable(f"it has {len(layers)} layers; at most {MAX_LAYERS} are accepted")
        for part in parts:
            if part is not None:
                _checked_size(part)
        try:
            return super().preprocess(payload)
        except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as err:
            raise unreadable(err) from None

    @server
    def accept_blobs(self, data):
        """A part of a drawing the page sends ahead of its event. Refused (HTTP 400, saying why) when it is no
        part of a drawing, a layer past MAX_LAYERS, or an image over MAX_PART_SIDE: out of the box a layer index
        of ten million padded a list to ten million entries."""
        kind, index = data.data.get("type"), data.data.get("index")
        if kind not in PARTS:
            raise HTTPException(400, f"A drawing's part is one of {', '.join(PARTS)}, not {quoted(kind)}")
        if kind == "layer" and not (str(index).isdigit() and int(index) < MAX_LAYERS):
            raise HTTPException(400, f"A drawing has at most {MAX_LAYERS} layers, numbered from 0: "
                                     f"layer {quoted(index)} is refused")
        if len(data.files) != 1:
            raise HTTPException(400, f"A drawing's part is one image, not {len(data.files)} files")
        try:
            _checked_size(data.files[0][1])
        except gr.Error as err:
            raise HTTPException(400, err.message) from None
        return super().accept_blobs(data)


def _checked_size(part) -> tuple[int, int]:
    """A part's width and height, read from its header; refused when it is not an image or too large."""
    if isinstance(part, (bytes, bytearray)):
        file = io.BytesIO(part)
    else:
        file = part.path if isinstance(part, FileData) else part
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # refused just below, by size
            with PIL.Image.open(file) as image:  # reads the header only
                width, height = image.size
    except PIL.Image.DecompressionBombError as err:
        raise unreadable(err) from None
    except (OSError, SyntaxError, ValueError, TypeError):
        raise unreadable("the file is not an image") from None
    if width > MAX_PART_SIDE or height > MAX_PART_SIDE:
        raise unreadable(f"the image is {width}×{height} px; at most {MAX_PART_SIDE}×{MAX_PART_SIDE} is accepted")
    return width, height


def sketchpad(elem_id: str, label: str) -> gr.Sketchpad:
    pad = CheckedSketchpad(elem_id=elem_id, label=label, canvas_size=(CANVAS, CANVAS), type="numpy",
                           brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                           layers=False, transforms=())
    pad.blob_storage = BlobStore()
    return pad
