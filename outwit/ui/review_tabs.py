"""The "Validate" tab (other people's examples, one at a time: is this a 4?) and the "Rounds" tab (one row per
round with its error rates, each round's examples as a zip, and the leaderboard)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from outwit.dadc.opponents import told
from outwit.dadc.reviews import REPORT_REASONS, ReviewError
from outwit.dadc.standings import (
    LEADERBOARD_COLUMNS,
    PAIR_COLUMNS,
    ROUND_COLUMNS,
    leaderboard,
    pair_rates,
    round_zip,
    rounds_table,
)
from outwit.dadc.transfer import TRANSFER_COLUMNS
from outwit.services import Services
from outwit.text import quoted
from outwit.ui.components import digit_choice, person, user_error
from outwit.ui.seeing import seeing_image, seen

NOTHING_TO_VALIDATE = "Nothing to validate right now: every example is decided, yours, or already voted on by you."


def validation_handlers(services: Services):
    store, reviews = services.store, services.reviews

    def next_example(name: str | None, request: gr.Request | None = None, profile: gr.OAuthProfile | None = None):
        """The next example this visitor may validate: its image, the question, its id ("" when there is none)."""
        who = person(request, name, profile)
        queue = reviews.queue(who.session, who.user)
        if not queue:
            return None, NOTHING_TO_VALIDATE, ""
        row = queue[0]
        needed = max(reviews.required, 1)
        standing = reviews.standing(row["id"])
        split = (f" The votes so far are split ({standing.correct} yes, {standing.incorrect} no): it needs "
                 f"{needed} more on one side than the other." if standing.correct and standing.incorrect else "")
        question = (f"### Is this a **{row['label']}**?\nThe person who drew it says so; {told(row)}. "
                    f"{len(queue)} waiting; an example is decided after {needed} agreeing "
                    f"vote{'s' if needed > 1 else ''}, and a split vote asks for more (at most "
                    f"{reviews.limit}).{split}")
        return str(store.path_of(row)), question, row["id"]

    def vote(example_id: str, verdict: str, digit: int | None, name: str | None, request: gr.Request | None = None,
             profile: gr.OAuthProfile | None = None):
        who = person(request, name, profile, required=services.config.require_sign_in, to="vote")
        try:
            standing = reviews.vote(example_id, verdict, session=who.session, user=who.user,
                                    digit=None if digit is None else int(digit))
        except (ReviewError, ValueError) as err:
            raise user_error(str(err)) from None
        outcome = f" It is now **{standing.decided}**." if standing.decided else ""
        return f"Thanks: your vote ({verdict}) is saved.{outcome}", None

    def report(example_id: str, reason: str, request: gr.Request | None = None):
        try:
            reviews.report(example_id, reason, session=person(request, None).session)
        except ReviewError as err:
            raise user_error(str(err)) from None
        return "Reported: it is hidden from the gallery and from validation until someone reviews it."

    def see_example(example_id: str | None):
        """The example as the serving model gets it (its stored input), and why it reads it so."""
        row = store.row(example_id) if example_id else None
        if row is None:
            return None, ""
        inputs, _ = store.tensors([row])
        return seen(services.predictor.current.model, inputs[0], read_as="now reads it as")

    return next_example, vote, report, see_example


def validate_tab(services: Services, name: gr.Textbox) -> gr.Tab:
    """The tab's layout and wiring; call inside a `gr.Blocks`."""
    next_example, vote, report, see_example = validation_handlers(services)
    with gr.Tab("Validate", id="validate", elem_id="validate-tab") as tab:
        gr.Markdown("Other people saved these drawings as fooling the model. Is each one really the digit it is "
                    "labelled? Examples voted incorrect are not trained on.")
        with gr.Row():
            image = gr.Image(label="A saved drawing", type="filepath", interactive=False, height=280, width=280,
                             buttons=[], elem_id="validate-image")
            with gr.Column():
                question = gr.Markdown(elem_id="validate-question")
                example_id = gr.Textbox(visible=False, elem_id="validate-id")
                with gr.Row():
                    correct = gr.Button("Yes, it is", variant="primary", elem_id="vote-correct")
                    incorrect = gr.Button("No, it is not", elem_id="vote-incorrect")
                    unclear = gr.Button("Can't tell", elem_id="vote-unclear")
                right = digit_choice("vote-digit", "If not: the digit it really is")
                with gr.Row():
                    reason = gr.Dropdown(list(REPORT_REASONS), value=REPORT_REASONS[0], label="Report it as",
                                         elem_id="report-reason")
                    report_button = gr.Button("Report for review", size="sm", elem_id="report")
                message = gr.Markdown(elem_id="validate-message")
        with gr.Row():
            picture = seeing_image("validate-saliency", "What the model serving now sees")
            caption = gr.Markdown(elem_id="validate-saliency-caption")
    shown = [image, question, example_id]
    seeing = dict(fn=see_example, inputs=example_id, outputs=[picture, caption], api_visibility="private")
    for button, verdict in ((correct, "correct"), (incorrect, "incorrect"), (unclear, "unclear")):
        button.click(_with_verdict(vote, verdict), [example_id, right, name], [message, right],
                     api_name=f"vote_{verdict}").success(
            next_example, name, shown, api_visibility="private").then(**seeing)
    report_button.click(report, [example_id, reason], message, api_name="report").success(
        next_example, name, shown, api_visibility="private").then(**seeing)
    tab.select(next_example, name, shown, api_name="validate_next", queue=False).then(**seeing)
    return tab


def _with_verdict(vote, verdict: str):
    def vote_with(example_id: str, digit: int | None, name: str | None, request: gr.Request | None = None,
                  profile: gr.OAuthProfile | None = None):
        return vote(example_id, verdict, digit, name, request, profile)

    vote_with.__doc__ = f"Vote '{verdict}' on an example (digit: what it really is, when incorrect)."
    return vote_with


def rounds_tab(services: Services) -> gr.Tab:
    """One row per round, each round's examples as a zip, and the leaderboard; refreshed when the tab is opened."""
    store, reviews, worker = services.store, services.reviews, services.worker

    def tables():
        """One row per round, newest first, and the leaderboard."""
        status = worker.status()
        return (rounds_table(worker.history.records, store, reviews, status.error_rate.attempts, services.tries),
                pair_rates(services.tries), leaderboard(store, reviews))

    def round_choices():
        served = worker.history.served_rounds()[::-1]  # the newest first
        return gr.update(choices=served or [0], value=served[0] if served else 0)

    def download(model_round: int | str | None) -> str:
        """The examples that fooled one round's model, as a zip of an imagefolder data set."""
        served = worker.history.served_rounds()
        number = _whole_number(model_round)
        if number is None:
            raise user_error(f"Pick a round: a whole number, not {quoted(model_round)}")
        if number not in served:
            raise user_error(f"Round {number} has no model that served, so nothing fooled it; these do: {served}")
        folder = Path(tempfile.mkdtemp(prefix="outwit-round-"))
        path = folder / f"outwit-round-{number:04d}.zip"
        path.write_bytes(round_zip(store, reviews, number))
        return str(path)

    with gr.Tab("Rounds", id="rounds", elem_id="rounds-tab") as tab:
        gr.Markdown("**MER**, the model error rate: drawings that fooled the round's model, of the drawings it was "
                    "tried on. **vMER** counts only those other people validated. *rejected*: voted not the "
                    "labelled digit; *retracted*: taken back by their author (both of the fooling drawings). "
                    "**Validators' κ**: Fleiss' kappa over the examples two or more people voted on (1: they all "
                    "agree; 0: no more than chance).")
        rounds = gr.Dataframe(headers=ROUND_COLUMNS, interactive=False, elem_id="rounds-table", wrap=True)
        with gr.Row():
            which = gr.Dropdown(choices=[0], value=0, label="Round", elem_id="round-pick", scale=1,
                                allow_custom_value=True)  # the page's choices follow the rounds; the API names any
            make_zip = gr.Button("Download its examples (zip)", elem_id="round-download", scale=1)
            archive = gr.File(label="Examples that fooled that round's model", elem_id="round-zip", scale=2)
        gr.Markdown("### Targeted challenges\nPer round, the attempts at making the model read one digit as another "
                    "(\"a 3 read as 8\"), and how many met it: the challenge's error rate.")
        pairs = gr.Dataframe(headers=PAIR_COLUMNS, interactive=False, elem_id="pair-rates")
        gr.Markdown("### Leaderboard\nPeople signed in with Hugging Face or who gave a display name, by fooling "
                    "drawings that others validated.")
        board = gr.Dataframe(headers=LEADERBOARD_COLUMNS, interactive=False, elem_id="leaderboard")
        gr.Markdown("### Fooling transfer\nOf the validated drawings that fooled each round's model, the share that "
                    "still fools each other model: the fixed references, and the models of later rounds (does an "
                    "example stay hard?).")
        transfer = gr.Dataframe(headers=TRANSFER_COLUMNS, interactive=False, elem_id="transfer")
    tab.select(services.transfer.table, None, transfer, api_name="transfer")
    tab.select(tables, None, [rounds, pairs, board], api_name="rounds", queue=False).then(
        round_choices, None, which, api_visibility="private", queue=False)
    make_zip.click(download, which, archive, api_name="round_examples")
    return tab


def _whole_number(value) -> int | None:
    """A round as the page or an API client names it: 3, 3.0 or "3"; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, (int, float)) and value >= 0 and float(value).is_integer():
        return int(value)
    return None
