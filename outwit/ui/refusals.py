"""Refusals that Gradio makes before the app runs, said in a sentence a visitor understands.

Gradio checks a request's inputs before any handler sees them: the files it names must be ones uploaded to this app,
each input must be in the form its component takes (a drawing is a background, layers and a composite), a number
must be a number. Out of the box a failure there answered an error with no message (or HTTP 500), and an unknown
endpoint HTTP 500 too. `PageBlocks` (the page's Blocks) turns the first kind into the visitor's error, naming the
input; `unknown_endpoint` answers the second with 404 and where the endpoints are listed.
"""
from __future__ import annotations

import gradio as gr
import pydantic
from fastapi import Request
from fastapi.responses import JSONResponse
from gradio.exceptions import ComponentProcessingError, InvalidPathError

from outwit.text import quoted
from outwit.ui.components import user_error

DRAWING_FORM = ("a drawing is the editor's value: a background, a list of layers and a composite, each an image "
                "uploaded to this app")


class PageBlocks(gr.Blocks):
    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call=explicit_call)
        except gr.Error:
            raise
        except (ValueError, TypeError, pydantic.ValidationError) as err:  # Gradio's own checks of the inputs
            raise user_error(refusal(block_fn.inputs, inputs, err)) from None


def refusal(blocks: list, values: list, err: Exception) -> str:
    """Which input was not understood, and why, in words."""
    if isinstance(err, InvalidPathError) or "upload folder" in str(err) or "not allowed" in str(err):
        return ("The request names a file that was not uploaded to this app: upload each image first "
                "(gradio_client does), then send the path it was given")
    cause = err.__cause__ if isinstance(err, ComponentProcessingError) else err
    for block, value in zip(blocks, values):
        if (reason := _not_understood(block, value)) is not None:
            return f"{_name(block)}: {reason}"
    return f"The request's inputs were not understood ({type(cause).__name__}): nothing was done"


def _not_understood(block, value) -> str | None:
    """Why `value` is no input for `block`, or None if it looks fine."""
    if isinstance(block, (gr.Number, gr.Slider)):
        try:
            float(value) if value is not None else None
        except (TypeError, ValueError):
            return f"a number is needed, not {quoted(value)}"
        return None
    data_model = getattr(block, "data_model", None)
    if data_model is None or value is None:
        return None
    try:
        data_model.model_validate(value)
    except pydantic.ValidationError:
        if isinstance(block, gr.ImageEditor):
            return DRAWING_FORM
        return f"not in the form this input takes: {quoted(value)}"
    return None


def _name(block) -> str:
    return f"“{block.label}”" if getattr(block, "label", None) else type(block).__name__


async def unknown_endpoint(request: Request, err: Exception) -> JSONResponse:
    """An API name this app does not have (the admin ones exist only with ADMIN_PASSWORD set)."""
    name = quoted(request.path_params.get("api_name", request.url.path))
    return JSONResponse({"detail": f"This app has no endpoint {name}: its endpoints are listed at /gradio_api/info"},
                        status_code=404)
