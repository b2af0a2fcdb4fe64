"""What the page's tabs share (besides the canvas, sketchpad.py): the digit picker, the name box, who the visitor is,
and the visitor's errors."""
from __future__ import annotations

import html

import gradio as gr

from outwit.text import quoted

DIGITS = [str(d) for d in range(10)]  # the digits as the page and its API send them


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
    return DigitRadio([(d, int(d)) for d in DIGITS], label=label, elem_id=elem_id, **kwargs)


def visitor(request: gr.Request | None, display_name: str | None) -> tuple[str | None, str | None]:
    """Who is asking: their session, and their name (a signed-in visitor's own name wins over a display name)."""
    name = (display_name or "").strip() or None
    if request is None:
        return None, name
    return request.session_hash, request.username or name


def display_name_box() -> gr.Textbox:
    return gr.Textbox(label="Display name (optional: shown on the leaderboard)", max_length=40, elem_id="name",
                      placeholder="anonymous")
