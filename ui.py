"""What the page's tabs share: the canvas, the visitor's errors, and the scripts that keep the brush ready."""
from __future__ import annotations

import gradio as gr

CANVAS = 280  # px; with BRUSH_RADIUS a digit drawn over most of the canvas gets MNIST-like strokes
BRUSH_RADIUS = 9

# A Sketchpad opens with no tool selected ("select the draw tool to start"); pick the brush for the visitor, in
# each canvas once it is on the page (the machine adversary's appears when its tab is first opened).
SELECT_BRUSH_JS = """
() => {
  const pick = (id) => {
    const button = document.querySelector(`#${id} button[aria-label="Brush"]`);
    if (!button || button.dataset.outwitPicked) return !!button;
    button.click();
    button.dataset.outwitPicked = "1";
    return true;
  };
  const timer = setInterval(() => {
    if (["sketchpad", "attack-sketchpad"].map(pick).every(Boolean)) clearInterval(timer);
  }, 100);
  setTimeout(() => clearInterval(timer), 20000);
}
"""


def clear_canvas_js(elem_id: str) -> str:
    return f"""
() => {{
  document.querySelector('#{elem_id} button[aria-label="Clear canvas"]')?.click();
  setTimeout(() => document.querySelector('#{elem_id} button[aria-label="Brush"]')?.click(), 150);
}}
"""


def user_error(message: str) -> gr.Error:
    """The visitor's mistake: shown to them, nothing changed, no traceback in the server log."""
    return gr.Error(message, print_exception=False)


def sketchpad(elem_id: str, label: str) -> gr.Sketchpad:
    return gr.Sketchpad(elem_id=elem_id, label=label, canvas_size=(CANVAS, CANVAS), type="numpy",
                        brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                        layers=False, transforms=())


def visitor(request: gr.Request | None, display_name: str | None) -> tuple[str | None, str | None]:
    """Who is asking: their session, and their name (a signed-in visitor's own name wins over a display name)."""
    name = (display_name or "").strip() or None
    if request is None:
        return None, name
    return request.session_hash, request.username or name


def display_name_box() -> gr.Textbox:
    return gr.Textbox(label="Display name (optional: shown on the leaderboard)", max_length=40, elem_id="name",
                      placeholder="anonymous", scale=3)
