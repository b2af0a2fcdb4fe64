"""Challenges and hints, on the drawing tab: a targeted challenge ("make it read your 3 as an 8", picked by the
visitor or suggested where the model is strongest), the owner's goal for the round, and the hints that teach:
where the model is weakest this round and the drawings it still gets wrong (`outwit.dadc.hints`)."""
from __future__ import annotations

import gradio as gr

from outwit.dadc.store import NO_TARGET
from outwit.ml.metrics import percent
from outwit.services import Services
from outwit.text import quoted
from outwit.ui.components import DIGITS, InOurWords

AIMS = [("any wrong digit (no challenge)", NO_TARGET), *[(d, int(d)) for d in DIGITS]]


class AimDropdown(InOurWords, gr.Dropdown):
    """The challenge's digit; anything else (12, "eight") is refused."""

    block = "dropdown"

    def refusal(self, payload) -> str:
        return f"A challenge's digit is 0–9, or -1 for none, not {quoted(payload)}"


def challenge_handlers(services: Services):
    """(suggest, goal_line): a targeted challenge where the model is strongest; the owner's goal for the round."""

    def suggest():
        """A challenge: the digit to draw (set as "the digit you drew") and the digit to make it read as."""
        drawn, aimed = services.hints.suggestion()
        rate = services.hints.digit_rates()[drawn]
        record = (f"This round it read {rate.judged - rate.fooled} of the {rate.judged} {drawn}s it saw right."
                  if rate.judged else f"Nobody has fooled it with a {drawn} this round yet.")
        return drawn, aimed, f"**Challenge:** draw a {drawn} that the model reads as a {aimed}. {record}"

    def goal_line() -> str:
        goal = services.reviews.goal()
        return f"**This round's goal:** {goal}" if goal else ""

    return suggest, goal_line


def hints_handler(services: Services):
    def hints():
        """Per-digit error rates this round, in words, and the drawings the serving model still gets wrong."""
        rates = services.hints.digit_rates()
        seen = [r for r in rates if r.judged]
        if seen:
            lines = [f"- **{r.digit}**: wrong on {r.fooled} of {r.judged} ({percent(r.rate)})"
                     for r in sorted(seen, key=lambda r: -(r.rate or 0))]
            words = ("**Where the model is weakest this round**: of the drawings of each digit it judged, the share "
                     "it got wrong (the weakest first).\n" + "\n".join(lines))
        else:
            words = "No drawings judged this round yet: the model's weak digits show here as people try it."
        unbeaten = services.hints.unbeaten()
        pictures = [(str(services.store.path_of(u.row)),
                     f"a {u.row['label']} from round {u.row['round']}: still read as {u.now_read_as}")
                    for u in unbeaten]
        caption = (f"{len(unbeaten)} drawing{'s' if len(unbeaten) != 1 else ''} that fooled earlier rounds, "
                   "validated, that the model serving now still gets wrong: what it has not learnt yet."
                   if unbeaten else "Every validated drawing that fooled an earlier round is read right now.")
        return words, gr.update(value=pictures, label=caption)

    return hints


def challenge_row() -> tuple[gr.Dropdown, gr.Button, gr.Markdown]:
    """The challenge picker, its "suggest" button and its words; call inside the drawing tab's column."""
    with gr.Row():
        aim = AimDropdown(AIMS, value=NO_TARGET, label="Targeted challenge: make it read your drawing as",
                          elem_id="aim", scale=3)
        suggest = gr.Button("Suggest one", size="sm", elem_id="suggest", scale=1)
    challenge = gr.Markdown(elem_id="challenge")
    return aim, suggest, challenge


def hints_section(services: Services) -> None:
    """The hints, folded until opened (then read afresh each time); call inside the drawing tab."""
    hints = hints_handler(services)
    with gr.Accordion("Hints: where the model is weakest, and what it has not learnt yet", open=False,
                      elem_id="hints") as section:
        rates = gr.Markdown(elem_id="digit-rates")
        unbeaten = gr.Gallery(label="Still unbeaten", columns=6, rows=1, height=200, allow_preview=False,
                              object_fit="contain", interactive=False, elem_id="unbeaten")
    section.expand(hints, None, [rates, unbeaten], api_name="hints")


def goal_box(services: Services) -> gr.Markdown:
    """The owner's goal for the round, read as each page opens (and after the admin sets it, on their page)."""
    _, goal_line = challenge_handlers(services)
    return gr.Markdown(goal_line, elem_id="round-goal")


def wire_challenges(services: Services, suggest: gr.Button, shows: list) -> None:
    """`shows`: the digit picker, the challenge picker and the challenge's words."""
    suggest_fn, _ = challenge_handlers(services)
    suggest.click(suggest_fn, None, shows, api_name="suggest_challenge")
