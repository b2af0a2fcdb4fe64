"""The "Machine adversary" tab: the person draws, PGD attacks the serving model, and the perturbed input (which
still shows their digit to a person) can be saved as an adversarial example with their digit as its label.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch

from outwit.dadc.collect import Fooling
from outwit.ml.attacks import madry_pgd
from outwit.ml.robustness import AttackedDrawing, attack_input
from outwit.services import Services
from outwit.ui import scripts
from outwit.ui.components import DIGITS, digit_choice, drawn_input, label_value, person, user_error
from outwit.ui.seeing import seeing_image, seen
from outwit.ui.sketchpad import sketchpad

EPS_CHOICES = (0.02, 0.3)  # the slider's range; MNIST's usual budgets are 0.1 to 0.3
ATTACK_STEPS = 40
SHOWN = 224  # px: 28×28 images shown 8× larger, pixels kept sharp


@dataclass(frozen=True)
class Attacked:
    """What a visitor may save: the attack's result, for the digit they said, against the model of a round."""

    result: AttackedDrawing
    digit: int
    attack: str
    model_round: int


def _enlarge(image: np.ndarray) -> np.ndarray:
    return np.kron(image, np.ones((SHOWN // 28, SHOWN // 28), dtype=np.uint8))


def make_handlers(services: Services):
    predictor, collector = services.predictor, services.collector

    def attack(drawing: dict | None, digit: int | None, eps: float):
        """Attack the serving model on this drawing at L∞ budget `eps`; show the input, the perturbed input, the
        perturbation and the new guess."""
        if digit is None or str(digit) not in DIGITS:
            raise user_error("Pick the digit you drew (0–9)")
        if eps is None or not EPS_CHOICES[0] <= float(eps) <= EPS_CHOICES[1]:
            raise user_error(f"Pick an ε from {EPS_CHOICES[0]} to {EPS_CHOICES[1]}")
        model_input = drawn_input(drawing)
        serving = predictor.current
        how = madry_pgd(float(eps), ATTACK_STEPS)
        result = attack_input(serving.model, model_input, int(digit), how)
        before, after = int(result.clean_probs.argmax()), int(result.adversarial_probs.argmax())
        if after != int(digit):
            text = (f"At ε = {eps:g} (each pixel moved by at most {round(eps * 255)} of 255) the model now says "
                    f"**{after}** ({result.adversarial_probs[after]:.0%}); it said {before} before. Save it to "
                    f"teach the model that this is still a {int(digit)}.")
        else:
            text = f"At ε = {eps:g} the model still says {after}: try a larger ε."
        state = Attacked(result, int(digit), how.name, serving.round)
        return (_enlarge(result.clean), _enlarge(result.adversarial), _enlarge(result.perturbation),
                label_value(result.adversarial_probs), text, state)

    def save(state: Attacked | None, name: str | None = None, sandbox: bool = False,
             request: gr.Request | None = None, profile: gr.OAuthProfile | None = None) -> tuple[str, Attacked | None]:
        """Save the attacked input with the visitor's digit as its label; once per attack; not in the sandbox."""
        if state is None:
            raise user_error("Attack a drawing first")
        guess = int(state.result.adversarial_probs.argmax())
        if guess == state.digit:
            raise user_error("The attack did not fool the model: nothing saved. Try a larger ε.")
        if sandbox:
            return "Sandbox: nothing was saved. Turn the sandbox off to keep attacked digits.", state
        who = person(request, name, profile, required=services.config.require_sign_in)
        example = Fooling(label=state.digit, guess=guess, confidence=float(state.result.adversarial_probs[guess]),
                          model_round=state.model_round, model_input=state.result.adversarial, source=state.attack,
                          session=who.session, user=who.user, identity=who.kind)
        try:
            saved = collector.save(example)
        except ValueError as err:  # a name that cannot be shown, or the session is at its limit: nothing written
            raise user_error(str(err)) from None
        return (f"Saved the attacked {state.digit} (the model said {guess}) as example `{saved.row['id'][:8]}`. "
                f"{saved.status.until_next_round} more until the next retrain."), None

    def see_attacked(state: Attacked | None):
        """Why the model reads the attacked input as it does."""
        if state is None:
            return None, ""
        return seen(predictor.current.model, torch.from_numpy(state.result.adversarial).float().div(255),
                    read_as="reads the attacked input as")

    return attack, save, see_attacked


def machine_adversary_tab(services: Services, name: gr.Textbox, sandbox: gr.Checkbox) -> gr.events.Dependency:
    """The tab's layout and wiring; call inside a `gr.Blocks`; `name` and `sandbox` are the page's. Returns the save
    event, for the page to chain."""
    attack, save, see_attacked = make_handlers(services)
    state = gr.State(None)
    gr.Markdown("Draw a digit and let a gradient attack (PGD) change each pixel a little, within ε, until the "
                "model reads another digit. To a person it is still your digit.")
    with gr.Row():
        with gr.Column():
            sketch = sketchpad("attack-sketchpad", "Draw a digit to attack")
            clear = gr.Button("Clear", elem_id="attack-clear")
        with gr.Column():
            digit = digit_choice("attack-digit")
            eps = gr.Slider(*EPS_CHOICES, value=0.1, step=0.02, label="ε: how far each pixel may move (0 to 1)",
                            elem_id="attack-eps")
            run = gr.Button("Attack it", variant="primary", elem_id="attack-run")
            guess = gr.Label(num_top_classes=3, label="The model's guess on the attacked digit", elem_id="attack-guess")
            message = gr.Markdown(elem_id="attack-message")
            keep = gr.Button("Save it as an adversarial example", elem_id="attack-save")
    with gr.Row():
        shown = dict(type="numpy", format="png", interactive=False, height=SHOWN, width=SHOWN, buttons=[])
        clean = gr.Image(label="What the model sees (28×28)", elem_id="attack-clean", **shown)
        attacked = gr.Image(label="After the attack", elem_id="attack-adversarial", **shown)
        perturbation = gr.Image(label="The change (grey: none)", elem_id="attack-perturbation", **shown)
        with gr.Column():
            why = seeing_image("attack-saliency", "Why it reads the attacked input so")
            why_caption = gr.Markdown(elem_id="attack-saliency-caption")
    run.click(attack, [sketch, digit, eps], [clean, attacked, perturbation, guess, message, state],
              api_name="attack", concurrency_limit=2).success(see_attacked, state, [why, why_caption],
                                                               api_visibility="private")
    clear.click(None, js=scripts.clear_canvas("attack-sketchpad"))
    return keep.click(save, [state, name, sandbox], [message, state], api_name="save_attack")
