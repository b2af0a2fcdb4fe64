"""What the page's tabs share (besides the canvas, sketchpad.py): the digit picker, the name box, who the visitor is,
and the visitor's errors."""
from __future__ import annotations

import html

import gradio as gr

from outwit.dadc.identity import Visitor
from outwit.ml.preprocess import EmptyDrawingError, preprocess
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


def drawn_input(drawing: dict | None):
    """The drawing as the model gets it, (1, 28, 28); the visitor's error when there is no digit or no image."""
    try:
        model_input = preprocess(drawing) if drawing is not None else None
    except EmptyDrawingError:
        model_input = None
    except ValueError as err:
        raise unreadable(err) from None
    if model_input is None:
        raise user_error("Draw a digit first")
    return model_input


class InOurWords:
    """For a choice component (mixed in before it): what it does not offer is refused with the page's own words
    (`refusal`), not Gradio's list of the choices' values."""

    block = ""  # the Gradio block it is drawn as

    def refusal(self, payload) -> str:
        raise NotImplementedError

    def get_block_name(self) -> str:
        return self.block

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise user_error(self.refusal(payload)) from None


class DigitRadio(InOurWords, gr.Radio):
    """The ten digits; anything else (-1, 10, "seven") is refused."""

    block = "radio"

    def refusal(self, payload) -> str:
        return f"Pick a digit from 0 to 9, not {quoted(payload)}"


def digit_choice(elem_id: str, label: str = "The digit you drew", **kwargs) -> DigitRadio:
    return DigitRadio([(d, int(d)) for d in DIGITS], label=label, elem_id=elem_id, **kwargs)


def person(request: gr.Request | None, display_name: str | None, profile: gr.OAuthProfile | None = None,
           *, required: bool = False, to: str = "save drawings") -> Visitor:
    """Who is asking: signed in with Hugging Face (`profile`, which Gradio hands a handler that asks for it), or
    the page's session and the display name typed. `required` (REQUIRE_SIGN_IN): anyone else is refused, nothing
    changed."""
    hub_name = profile.username if profile is not None else None
    who = Visitor.of(request.session_hash if request is not None else None, display_name, hub_name)
    if required and not who.signed_in:
        raise user_error(f"Sign in with Hugging Face to {to}: this app keeps only signed-in people's work")
    return who


def display_name_box() -> gr.Textbox:
    """The name a visitor who is not signed in may give; signed in, it shows their Hub name and cannot be changed
    (`signed_in_name`)."""
    return gr.Textbox(label="Display name (optional: shown on the leaderboard)", max_length=40, elem_id="name",
                      placeholder="anonymous")


def signed_in_name(profile: gr.OAuthProfile | None):
    """The name box for the person on the page: theirs from the Hub, fixed, when signed in; as it was otherwise."""
    if profile is None:
        return gr.update()
    return gr.update(value=profile.username, interactive=False,
                     label=f"Signed in with Hugging Face as {profile.username} (shown on the leaderboard)")


def shown_until_signed_in(profile: gr.OAuthProfile | None):
    """A note for people not signed in (REQUIRE_SIGN_IN's), hidden once they are."""
    return gr.update(visible=profile is None)
