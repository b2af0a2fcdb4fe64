"""The Admin tab: start a round now, roll back to an earlier round, hide an example.

It exists only when ADMIN_PASSWORD is set (no tab, no endpoints otherwise), and every action checks the password
it is sent, in constant time, before it does anything. Wrong passwords put a brake on guessing (brake.py).
"""
from __future__ import annotations

import hashlib
import hmac
import logging

import gradio as gr

from outwit.config import Secret
from outwit.dadc.reviews import ReviewError
from outwit.services import Services
from outwit.ui.brake import Brake, in_words
from outwit.ui.components import user_error

log = logging.getLogger(__name__)


def password_matches(expected: Secret, given: str | None) -> bool:
    """Constant time whatever the two lengths: their digests are compared, not the strings."""
    digest = lambda text: hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()  # noqa: E731
    return hmac.compare_digest(digest(expected.reveal()), digest(str(given or "")))


def make_handlers(services: Services, password: Secret, brake: Brake | None = None):
    worker, reviews = services.worker, services.reviews
    brake = brake or Brake()

    def check(given: str | None, request: gr.Request | None) -> None:
        client = request.client.host if request is not None and request.client else "an API call"
        wait, everyone = brake.wait(client)
        if wait:
            whose = "lately: admin actions are paused" if everyone else "from here: try again"
            raise user_error(f"Too many wrong admin passwords {whose} in {in_words(wait)}. Nothing was done.")
        if not password_matches(password, given):
            if note := brake.failed(client):
                log.warning("admin actions: %s", note)
            raise user_error("Wrong admin password: nothing was done")
        brake.succeeded(client)

    def start_round(given: str | None, request: gr.Request | None = None) -> str:
        """Start a retrain round now, however few examples came in since the last one."""
        check(given, request)
        if worker.status().training:
            return "A round is already running."
        try:
            worker.request_round()
        except ValueError as err:
            raise user_error(str(err)) from None
        return "A round starts now; the panel shows it when it lands."

    def roll_back(given: str | None, to_round: float | None, request: gr.Request | None = None) -> str:
        """Serve again the model of an earlier round (0: the base model)."""
        check(given, request)
        if to_round is None or float(to_round) != int(to_round):
            raise user_error("Say which round to roll back to (a whole number)")
        try:
            record = worker.roll_back(int(to_round), services.config.model_path)
        except ValueError as err:
            raise user_error(str(err)) from None
        return f"Rolled back: round {record.round} serves the model of round {int(to_round)}."

    def hide(given: str | None, example_id: str | None, reason: str | None = "",
             request: gr.Request | None = None) -> str:
        """Hide an example from everyone, and from training and testing; it stays in the log, marked."""
        check(given, request)
        try:
            reviews.hide((example_id or "").strip(), reason=reason or "")
        except ReviewError as err:
            raise user_error(str(err)) from None
        return f"Hidden: `{example_id}` is out of the gallery, the queue, training and testing."

    return start_round, roll_back, hide


def admin_tab(services: Services, password: Secret) -> None:
    """Call inside `gr.Blocks` when ADMIN_PASSWORD is set."""
    start_round, roll_back, hide = make_handlers(services, password)
    with gr.Tab("Admin", id="admin", elem_id="admin-tab"):
        gr.Markdown("For the people who run this app. Each action needs the admin password.")
        given = gr.Textbox(label="Admin password", type="password", elem_id="admin-password")
        with gr.Row():
            start = gr.Button("Start a round now", elem_id="admin-round")
        with gr.Row():
            to_round = gr.Number(label="Roll back to round", precision=0, minimum=0, elem_id="admin-to-round")
            back = gr.Button("Roll back", elem_id="admin-rollback")
        with gr.Row():
            example = gr.Textbox(label="Example id to hide", elem_id="admin-example")
            reason = gr.Textbox(label="Why (kept in the log)", elem_id="admin-reason")
            hide_button = gr.Button("Hide it", variant="stop", elem_id="admin-hide")
        message = gr.Markdown(elem_id="admin-message")
    start.click(start_round, given, message, api_name="admin_start_round")
    back.click(roll_back, [given, to_round], message, api_name="admin_roll_back")
    hide_button.click(hide, [given, example, reason], message, api_name="admin_hide")
