"""What the model sees, on the page: the 28×28 input beside the guess, coloured by which pixels pushed the model
towards its guess (outwit/ml/saliency.py), with a one-line caption. Asked for with a click in the drawing tab (the
guess itself never waits for it), shown with each example in the Validate tab and with each attack."""
from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from outwit.ml.saliency import explain, heat_picture
from outwit.services import Services
from outwit.ui.components import drawn_input

SHOWN = 224  # px: the 28×28 picture 8× larger, pixels kept sharp
ROUGH = 0.1  # attributions this far (a share) from the logit's change: the map is called rough
HOW = "red: pixels that pushed it towards that digit, blue: away (Integrated Gradients)"


def seen(model: torch.nn.Module, model_input: torch.Tensor, read_as: str = "reads it as") -> tuple[np.ndarray, str]:
    """The picture and its caption for one model input."""
    explanation = explain(model, model_input)
    caption = (f"What the model got (28×28): it {read_as} **{explanation.target}** "
               f"({explanation.probability:.0%}); {HOW}.")
    if explanation.convergence > ROUGH:  # the attributions do not add up to the model's change: say so
        caption += f" A rough map for this one: its parts add up to {explanation.convergence:.0%} off the whole."
    return heat_picture(explanation, SHOWN // 28), caption


def seeing_image(elem_id: str, label: str = "What the model sees") -> gr.Image:
    return gr.Image(label=label, type="numpy", format="png", interactive=False, height=SHOWN, width=SHOWN,
                    buttons=[], elem_id=elem_id)


def see_drawing_handler(services: Services):
    def see(drawing: dict | None):
        """The drawing as the serving model gets it, and why it reads it so."""
        return seen(services.predictor.current.model, drawn_input(drawing))

    return see


def see_section(services: Services, sketch: gr.components.Component) -> None:
    """The drawing tab's "What does the model see?": a button, the picture and its caption."""
    with gr.Row():
        button = gr.Button("What does the model see?", size="sm", elem_id="explain", scale=1)
        with gr.Column(scale=3):
            picture = seeing_image("saliency")
            caption = gr.Markdown(elem_id="saliency-caption")
    button.click(see_drawing_handler(services), sketch, [picture, caption], api_name="explain",
                 concurrency_limit=2)
