"""Memory a request can take: the app's peak memory while `--at-once` worst-case drawings arrive together.

    python -m bench.memory [--at-once 8]

Starts `python app.py` (outwit/sim/app_process.py) and sends, `--at-once` at a time, over plain HTTP as the page
does (each image uploaded first, then `/predict` naming them): the largest drawing the app takes (as many layers,
each as large, as it accepts, plus background and composite) and, past every limit, 50 layers of 2048×2048 and a
layer index of 10,000,000 sent ahead (`accept_blobs`). The PNGs are blank, so they upload small and decode large.
The server's peak resident memory is read from Linux (`VmHWM`, reset before each burst through `clear_refs`).
Prints one JSON line: per burst, the answers and the peak above the memory before it. Target: at most +200 MB.
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import threading
from pathlib import Path

import httpx
from PIL import Image

from outwit.sim.app_process import AppProcess, uploaded
from outwit.ui.sketchpad import MAX_LAYERS, MAX_PART_SIDE

TARGET_MB = 200


def blank_png(side: int, mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (side, side), (0, 0, 0, 0) if mode == "RGBA" else 255).save(buffer, format="PNG")
    return buffer.getvalue()


def drawing(url: str, layers: int, side: int) -> dict:
    refs = uploaded(url, blank_png(side, "RGB"), blank_png(side, "RGB"), *[blank_png(side)] * layers)
    return {"background": refs[0], "composite": refs[1], "layers": refs[2:]}


def memory_kb(pid: int, field: str) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def burst(app: AppProcess, requests: list) -> dict:
    """Send `requests` (callables returning an HTTP status and a message) at once; the peak memory meanwhile."""
    pid = app.process.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak resident memory starts again from now
    before = memory_kb(pid, "VmRSS")
    answers = [None] * len(requests)

    def send(i):
        answers[i] = requests[i]()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = memory_kb(pid, "VmHWM")
    return {"peak_above_before_mb": round((peak - before) / 1024, 1), "answers": sorted({str(a) for a in answers})}


def predict(url: str, payload: dict):
    def call():
        response = httpx.post(url + "gradio_api/run/predict", json={"data": [payload, ["serving"]]}, timeout=120)
        body = response.json()
        return response.status_code, (body.get("error") or "answered")[:120] if isinstance(body, dict) else body
    return call


def blob_index(url: str, editor: int, index: int, png: bytes):
    def call():
        form = {"component_id": str(editor), "session_hash": "bench", "fn_name": "accept_blobs", "id": "bench-blob",
                "type": "layer", "index": str(index)}
        response = httpx.post(url + "gradio_api/component_server/", data=form, timeout=120,
                              files={"file": ("layer.png", png, "image/png")})
        return response.status_code, response.text[:120]
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--at-once", type=int, default=8, help="requests sent together in each burst")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, httpx.Client() as http:
        app = AppProcess(Path(tmp) / "data", Path(tmp) / "app.log", ROBUST_EPS=0).start()
        try:
            largest = drawing(app.url, MAX_LAYERS, MAX_PART_SIDE)
            too_many = drawing(app.url, 50, 2048)
            config = http.get(app.url + "config").raise_for_status().json()
            editor = next(d["inputs"][0] for d in config["dependencies"] if d.get("api_name") == "predict")
            far = blob_index(app.url, editor, 10_000_000, blank_png(280))
            results = {"largest_accepted": burst(app, [predict(app.url, largest)] * args.at_once),
                       "fifty_layers_of_2048": burst(app, [predict(app.url, too_many)] * args.at_once),
                       "layer_index_10_million": burst(app, [far] * args.at_once)}
        finally:
            app.stop()
    print(json.dumps({"bench": "memory", "at_once": args.at_once, "limits": {"layers": MAX_LAYERS,
                      "side_px": MAX_PART_SIDE}, **results,
        "target_mb": TARGET_MB, "meets_target": all(r["peak_above_before_mb"] <= TARGET_MB for r in results.values())}))


if __name__ == "__main__":
    main()
