"""A restart, as a Space sees it: from `python app.py` to the first answer, and where the time goes.

    python -m bench.startup [--runs 3]

End to end, `--runs` times: `python app.py` on the embedded MNIST sample and a fresh data folder, timed to its
first answer at `/gradio_api/info`, to the first `/predict` (a drawing uploaded, then guessed) and to the base
model measured (`/status`; the worker does it in the background). Then, in a fresh interpreter, each step the
start takes in turn: the imports (torch, Gradio, the app), the data, the model, the services, the page, the launch.
Prints one JSON line. Target: the first /predict within 8 s of the start.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from outwit.sim.app_process import REPO, AppProcess, uploaded
from outwit.sim.drawings import draw_sketch

TARGET_S = 8.0
STEPS = """
import json, tempfile, time
from pathlib import Path
steps, mark = {}, time.perf_counter()
def took(name):
    global mark
    now = time.perf_counter(); steps[name] = round(now - mark, 2); mark = now
import torch; took("import torch")
import gradio; took("import gradio")
import app; took("import the app")
from outwit.config import Config
from outwit.ml import checkpoints, data
from outwit.services import start_services
from outwit.ui.page import build_demo, launch
config = Config(data_dir=Path(tempfile.mkdtemp()) / "data", mnist_data="sample")
data.load_digits("sample", config.data_dir, "train"); data.load_digits("sample", config.data_dir, "test")
took("the data (MNIST sample, both splits)")
checkpoints.load(config.model_path); took("the model")
services = start_services(config); took("the services (the rest of start_services)")
demo = build_demo(config, services); took("the page")
launch(demo, config, server_port=None, prevent_thread_lock=True, quiet=True); took("the launch")
demo.close(); services.stop()
print(json.dumps(steps))
"""


def three() -> bytes:
    """A hand-drawn 3's layer as a PNG."""
    buffer = io.BytesIO()
    Image.fromarray(draw_sketch(3)["layers"][0]).save(buffer, format="PNG")
    return buffer.getvalue()


def wait_until(check, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    return False


def restart() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        app = AppProcess(Path(tmp) / "data", Path(tmp) / "app.log")
        started = time.monotonic()
        app.start()  # returns once /gradio_api/info answers
        url = app.url
        try:
            info = time.monotonic() - started
            deadline = started + 120
            payload = {"background": None, "layers": uploaded(url, three()), "composite": None}
            response = httpx.post(url + "gradio_api/run/predict", json={"data": [payload, ["serving"]]}, timeout=60)
            assert response.json()["data"][0]["label"] == "3"
            predict = time.monotonic() - started
            measured = wait_until(lambda: httpx.post(url + "gradio_api/run/status", json={"data": []}, timeout=5)
                                  .json()["data"][0]["mnist"] is not None, deadline)
            return {"info_s": round(info, 1), "first_predict_s": round(predict, 1),
                    "base_model_measured_s": round(time.monotonic() - started, 1) if measured else None}
        finally:
            app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="restarts to time")
    args = parser.parse_args()
    runs = [restart() for _ in range(args.runs)]
    steps = subprocess.run([sys.executable, "-c", STEPS], cwd=REPO, capture_output=True, text=True, check=True)
    median = statistics.median(r["first_predict_s"] for r in runs)
    print(json.dumps({"bench": "startup", "runs": runs, "first_predict_median_s": median,
                      "steps_s": json.loads(steps.stdout.strip().splitlines()[-1]), "target_s": TARGET_S,
                      "meets_target": median <= TARGET_S}))


if __name__ == "__main__":
    main()
