"""Gradio's flagging interface over Outwit's one saving path, for a page of your own built on Outwit's services:

    services = start_services(Config.from_env())
    gr.Interface(guess, gr.Sketchpad(type="numpy"), gr.Label(), flagging_mode="manual",
                 flagging_options=[str(d) for d in range(10)], flagging_callback=OutwitFlagger(services.collector))

Outwit's own page saves through the same path (`outwit.dadc.collect`) without this class.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from outwit.dadc.collect import Collector
from outwit.ui.components import DIGITS


class OutwitFlagger(gr.FlaggingCallback):
    """Saves a flagged drawing as a fooling example: the first component set up holds the drawing, the flag option
    is the digit it really is. The serving model judges the drawing again here: one it already reads as that digit,
    an empty canvas or no digit is refused (an error, nothing saved). `username` (a signed-in visitor) is kept as
    the example's user."""

    def __init__(self, collector: Collector):
        self.collector = collector
        self.components: list[gr.components.Component] = []

    def setup(self, components: Sequence[gr.components.Component], flagging_dir: str | Path) -> None:
        self.components = list(components)  # the examples go to the collector's store, not to flagging_dir

    def flag(self, flag_data: list[Any], flag_option: str | None = None, username: str | None = None) -> int:
        """Save one example; returns how many examples the store holds."""
        if not flag_data:
            raise ValueError("nothing was flagged: the first value must be the drawing")
        if flag_option is None or str(flag_option).strip() not in DIGITS:
            raise ValueError(f"flag_option={flag_option!r} must be the digit the drawing really is (0-9)")
        drawing = _as_handled(self.components[0], flag_data[0]) if self.components else flag_data[0]
        example = self.collector.fooling(drawing, int(str(flag_option).strip()), user=username)
        self.collector.save(example)
        return self.collector.store.counts().total


def _as_handled(component: gr.components.Component, payload: Any) -> Any:
    """A component's value as an event handler gets it. Gradio hands a flag the raw payload (the flag event is not
    preprocessed): for a Sketchpad, a dict of uploaded files. A value that is no such payload is taken as it is."""
    data_model = getattr(component, "data_model", None)
    if data_model is None or not isinstance(payload, dict):
        return payload
    try:
        sent = data_model(**payload)
    except (TypeError, ValueError):  # not this component's payload: a value as handlers get it (e.g. numpy images)
        return payload
    return component.preprocess(sent)
