"""The Admin tab: start a round now, roll back to an earlier round, hide an example, set the round's goal, and see
how far each validator agrees with the outcome.

It exists only when ADMIN_PASSWORD is set (no tab, no endpoints otherwise), and every action checks the password
it is sent, in constant time, before it does anything. Wrong passwords put a brake on guessing (brake.py).
"""
from __future__ import annotations

import hashlib
import hmac
import logging

import gradio as gr

from outwit.config import Secret
from outwit.dadc import agreement
from outwit.dadc.reviews import ReviewError
from outwit.ml.metrics import percent
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

    def set_goal(given: str | None, goal: str | None, request: gr.Request | None = None) -> str:
        """Set the round's goal, shown on every page ("this round: fool it with 4s"); empty clears it."""
        check(given, request)
        try:
            event = reviews.set_goal(goal or "")
        except ReviewError as err:
            raise user_error(str(err)) from None
        shown = reviews.goal()
        if event["goal"]:
            return f"The goal is set: every page shows **{shown}**."
        return f"The goal is cleared{f'; the configured one shows: **{shown}**' if shown else ''}."

    def list_validators(given: str | None, request: gr.Request | None = None):
        """Every validator, how often their vote was the outcome, and whether their votes wait for a second."""
        check(given, request)
        found = agreement.validators(reviews)
        below = services.config.validator_trust or agreement.LOW_AGREEMENT
        low = agreement.low_agreement(found, below)
        rows = [[v.name, v.votes, v.decided, percent(v.agreement), "yes" if v.doubted else "no",
                 "low" if v in low else ""] for v in found]
        words = (f"{len(low)} validator{'s' if len(low) != 1 else ''} agreed with the outcome less than "
                 f"{below:.0%} of the time ({', '.join(v.name for v in low)})." if low
                 else f"No validator agreed with the outcome less than {below:.0%} of the time.")
        rule = (f" VALIDATOR_TRUST is {services.config.validator_trust:g}: a doubted validator's vote counts only "
                "once someone votes the same." if services.config.validator_trust else
                " Set VALIDATOR_TRUST (e.g. 0.6) to have their votes count only once someone agrees.")
        return words + rule, rows

    return start_round, roll_back, hide, set_goal, list_validators


VALIDATOR_COLUMNS = ["validator", "votes", "on decided examples", "agreed with the outcome", "doubted", "agreement"]


def admin_tab(services: Services, password: Secret) -> None:
    """Call inside `gr.Blocks` when ADMIN_PASSWORD is set."""
    start_round, roll_back, hide, set_goal, list_validators = make_handlers(services, password)
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
        with gr.Row():
            goal = gr.Textbox(label="This round's goal, shown on every page (empty: none)", max_length=120,
                              placeholder="fool it with 4s", elem_id="admin-goal", scale=3)
            goal_button = gr.Button("Set the goal", elem_id="admin-set-goal", scale=1)
        message = gr.Markdown(elem_id="admin-message")
        gr.Markdown("### Validators\nHow often each validator's vote was the outcome of the examples they voted "
                    "on (\"can't tell\" left out); the least agreeing first.")
        show_validators = gr.Button("List the validators", elem_id="admin-validators")
        validators_words = gr.Markdown(elem_id="admin-validators-words")
        validators_table = gr.Dataframe(headers=VALIDATOR_COLUMNS, interactive=False, elem_id="admin-validators-table")
    start.click(start_round, given, message, api_name="admin_start_round")
    goal_button.click(set_goal, [given, goal], message, api_name="admin_set_goal")
    show_validators.click(list_validators, given, [validators_words, validators_table], api_name="admin_validators")
    back.click(roll_back, [given, to_round], message, api_name="admin_roll_back")
    hide_button.click(hide, [given, example, reason], message, api_name="admin_hide")
