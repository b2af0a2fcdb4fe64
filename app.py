"""Outwit: draw a digit, watch the model guess. `python app.py` serves the page on port 7860."""
from __future__ import annotations

import logging

import gradio as gr

from config import Config
from model import EmptyDrawingError, Predictor
from trainer import load_checkpoint

CANVAS = 280  # px; with BRUSH_RADIUS a digit drawn over most of the canvas gets MNIST-like strokes
BRUSH_RADIUS = 9

# The Sketchpad opens with no tool selected ("select the draw tool to start"); pick the brush for the visitor.
SELECT_BRUSH_JS = """
() => {
  const pick = () => {
    const button = document.querySelector('#sketchpad button[aria-label="Brush"]');
    if (!button) return false;
    if (!button.classList.contains('highlight') && !button.closest('.highlight')) button.click();
    return true;
  };
  const timer = setInterval(() => { if (pick()) clearInterval(timer); }, 100);
  setTimeout(() => clearInterval(timer), 15000);
}
"""


def top_digits(probs) -> dict[str, float]:
    return {str(d): float(p) for d, p in enumerate(probs)}


def build_demo(config: Config, predictor: Predictor) -> gr.Blocks:
    def predict(drawing):
        if drawing is None:
            return None
        try:
            return top_digits(predictor.predict(drawing))
        except EmptyDrawingError:
            return None

    with gr.Blocks(title="Outwit: fool the digit model") as demo:
        gr.Markdown("# Outwit\nDraw a digit. The model guesses as you draw.")
        with gr.Row():
            sketch = gr.Sketchpad(
                elem_id="sketchpad", label="Draw a digit", canvas_size=(CANVAS, CANVAS), type="numpy",
                brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                layers=False, transforms=(),
            )
            guess = gr.Label(num_top_classes=3, label="The model's guess", elem_id="guess")
        sketch.change(predict, inputs=sketch, outputs=guess, api_name="predict", trigger_mode="always_last",
                      show_progress="hidden")
        demo.load(None, js=SELECT_BRUSH_JS)
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config.from_env()
    model, meta = load_checkpoint(config.model_path)
    demo = build_demo(config, Predictor(model, meta.__dict__))
    demo.launch(server_name=config.host, server_port=config.port)


if __name__ == "__main__":
    main()
