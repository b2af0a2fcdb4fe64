"""`trainer.py see`: a drawing read by a model and by the fixed references, and what the model sees of it (the 28×28
input it got, tinted by Integrated Gradients): the drawing tab's guess, its line of readings and "What does the model
see?", from the command line.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from outwit.ml import checkpoints
from outwit.ml.preprocess import preprocess
from outwit.ml.references import REFERENCES, References
from outwit.ml.saliency import explain, heat_picture


def see(image: Path, checkpoint: Path, references: list[str], out: Path | None,
        models_dir: Path | None = None) -> dict:
    """Read `image` (any drawing: dark ink on light or light on dark) with `checkpoint`'s model and each of
    `references` (keys of REFERENCES); explain the model's guess, and write the picture to `out` (PNG) if given.
    ValueError for a key that is not a reference there, an image with no digit or one that cannot be read."""
    shipped = References(models_dir) if models_dir else References()
    missing = [key for key in references if key not in shipped.available()]
    if missing:
        there = ", ".join(f"{key} ({REFERENCES[key]})" for key in shipped.available()) or "none"
        raise ValueError(f"--references: {missing[0]!r} is not one of the references there: {there}")
    with Image.open(image) as opened:
        model_input = preprocess(opened.convert("RGB"))  # (1, 28, 28); EmptyDrawingError is a ValueError
    model, meta = checkpoints.load(checkpoint)
    model.eval()
    with torch.inference_mode():
        probs = F.softmax(model(model_input.unsqueeze(0)), dim=1)[0].numpy()
    readings = [_reading(checkpoint.stem, probs)]
    readings += [_reading(REFERENCES[key], shipped.read(key, model_input)) for key in references]
    explanation = explain(model, model_input)
    result = {"image": str(image), "checkpoint": str(checkpoint), "arch": meta.arch, "readings": readings,
              "explained": {"digit": explanation.target, "probability": round(explanation.probability, 4),
                            "convergence": round(explanation.convergence, 4)}}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(heat_picture(explanation)).save(out)
        result["picture"] = str(out)
    return result


def _reading(model: str, probs) -> dict:
    guess = int(probs.argmax())
    return {"model": model, "guess": guess, "confidence": round(float(probs[guess]), 4)}
