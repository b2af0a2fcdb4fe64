"""Plain routes beside Gradio's, for what every page asks most often:
- `POST /outwit/guess?models=serving,vit`: the strokes the page recorded (the JSON `outwit.ml.strokes` reads) → the
  first chosen model's guess as the page's gr.Label takes it, and a line saying what each chosen model read;
- `GET /outwit/panel`: the serving round and the versions of the panel's parts, which a page's 5-s tick compares
  with what it shows before it asks Gradio for the parts that changed;
- `POST /outwit/tried`: a guessed drawing was cleared without being saved (one more attempt that did not fool).

A stroke's guess is the request a crowd sends most. Through Gradio's event route it cost 9.6 ms of server CPU
(routing, the event's checks, pre- and postprocessing, and the page then asked every input for its data again,
uploading the canvas); here it is the strokes drawn and the model run (bench/crowd.py). The page calls it from the
quick guess's client-side event, which sets the Label as Gradio sets any output.
"""
from __future__ import annotations

import json
from typing import Callable

import gradio as gr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from outwit.dadc.store import NO_TARGET
from outwit.ml import strokes
from outwit.ml.preprocess import EmptyDrawingError
from outwit.ml.strokes import StrokesError

GUESS_PATH, PANEL_PATH, TRIED_PATH = "/outwit/guess", "/outwit/panel", "/outwit/tried"


def guess_route(read: Callable, label: Callable, canvas: int, brush_radius: float) -> Route:
    """`read(ink, models)`: the chosen models' reading (the drawing tab's) → (probabilities, what each read);
    `label`: probabilities → the Label's value as the page takes it."""

    def guess(payload: str, models: str | None) -> JSONResponse:  # in Starlette's thread pool: the model leaves the GIL
        try:
            probs, readings = read(strokes.ink(payload, canvas, brush_radius), models)
        except StrokesError as err:
            return JSONResponse({"error": f"The quick guess could not read the strokes: {err}"}, status_code=400)
        except EmptyDrawingError:
            return JSONResponse({"label": None, "readings": ""})
        except gr.Error as err:  # the choice of models: said where the readings go
            return JSONResponse({"label": None, "readings": err.message})
        return JSONResponse({"label": label(probs), "readings": readings})

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()  # the page's body limit (http_limits.BodyLimit) holds here too
        models = request.query_params.get("models")  # absent: the serving model's guess alone
        return await run_in_threadpool(guess, body.decode("utf-8", errors="replace"), models)

    return Route(GUESS_PATH, endpoint, methods=["POST"])


def panel_route(versions: Callable[[], dict]) -> Route:
    """`versions`: the panel's round and part versions (outwit.ui.panel), read at most once a second for all."""

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(versions(), headers={"cache-control": "no-store"})

    return Route(PANEL_PATH, endpoint, methods=["GET"])


def tried_route(tried: Callable[..., None]) -> Route:
    """`tried(guess, aimed)`: count one more attempt (outwit.dadc.collect.Collector.tried). The body, when there is
    one: {"guess": the digit the model read, "aim": the challenge's digit or -1}; what is not a digit is left out."""

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            sent = json.loads(body) if body else {}
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return JSONResponse({"error": "The body is not JSON: {\"guess\": digit, \"aim\": digit or -1}"},
                                status_code=400)
        sent = sent if isinstance(sent, dict) else {}
        guess, aim = _digit(sent.get("guess")), _digit(sent.get("aim"))
        tried(guess, NO_TARGET if aim is None else aim)
        return JSONResponse({"counted": True})

    return Route(TRIED_PATH, endpoint, methods=["POST"])


def _digit(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9 else None
