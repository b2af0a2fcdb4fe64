"""The quick guess on a plain route beside Gradio's: `POST /outwit/guess` with the strokes the page recorded (the
JSON `outwit.ml.strokes` reads) → the guess as the page's gr.Label takes it.

A stroke's guess is the request a crowd sends most. Through Gradio's event route it cost 9.6 ms of server CPU
(routing, the event's checks, pre- and postprocessing, and the page then asked every input for its data again,
uploading the canvas); here it is the strokes drawn and the model run (bench/crowd.py). The page calls it from the
quick guess's client-side event, which sets the Label as Gradio sets any output.
"""
from __future__ import annotations

from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from outwit.ml import strokes
from outwit.ml.preprocess import EmptyDrawingError
from outwit.ml.strokes import StrokesError

GUESS_PATH = "/outwit/guess"


def guess_route(predict: Callable, label: Callable, canvas: int, brush_radius: float) -> Route:
    """`predict`: ink → probabilities; `label`: probabilities → the Label's value as the page takes it."""

    def guess(payload: str) -> JSONResponse:  # run in Starlette's thread pool: the model leaves the GIL
        try:
            probs = predict(strokes.ink(payload, canvas, brush_radius))
        except StrokesError as err:
            return JSONResponse({"error": f"The quick guess could not read the strokes: {err}"}, status_code=400)
        except EmptyDrawingError:
            return JSONResponse({"label": None})
        return JSONResponse({"label": label(probs)})

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()  # the page's body limit (http_limits.BodyLimit) holds here too
        return await run_in_threadpool(guess, body.decode("utf-8", errors="replace"))

    return Route(GUESS_PATH, endpoint, methods=["POST"])
