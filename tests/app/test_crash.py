"""Kill -9 at any moment: `python app.py` as a subprocess, SIGKILLed mid-flag and mid-retrain, then started again.
Every flag acknowledged to a client is on disk exactly once, nothing is half-written, the counts are right and the
latest promoted model loads."""
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter

from gradio_client import Client
from PIL import Image

from model import build_model
from outwit.dadc.history import History, RoundRecord, load_serving
from outwit.ml import checkpoints
from outwit.ml.metrics import Metrics
from outwit.sim.app_process import REPO, AppProcess, alive
from outwit.sim.drawings import client_payload, draw_sketch


def rows_on_disk(data_dir) -> list[dict]:
    """Every row of every shard; a line that does not parse fails the test (it would be a half-written record)."""
    rows = []
    for metadata in sorted((data_dir / "adversarial").glob("*/*/metadata.jsonl")):
        for line in metadata.read_text(encoding="utf-8").splitlines():
            rows.append(json.loads(line))
    return rows


def assert_whole(data_dir, rows: list[dict]) -> None:
    for row in rows:
        folder = data_dir / "adversarial" / row["split"] / row["shard"]
        for column in ("file_name", "input_file_name"):
            with Image.open(folder / row[column]) as image:
                image.load()  # a truncated PNG raises here


def flag_until(url: str, payloads: list, stop: threading.Event, acked: list, errors: list) -> None:
    """One visitor flagging fooling drawings in a loop; an id is acknowledged when the response arrived."""
    client = Client(url, verbose=False)
    for i in range(10_000):
        payload, digit = payloads[i % len(payloads)]
        if stop.is_set():
            return
        try:
            _, example_id = client.predict(payload, digit, "", False, api_name="/flag")
        except Exception as err:  # noqa: BLE001 - the app was killed mid-request: not acknowledged
            errors.append(err)
            return
        acked.append(example_id)


def test_a_kill_mid_flag_loses_no_acknowledged_flag(tmp_path, fooling_payloads):
    data_dir = tmp_path / "data"
    env = dict(RETRAIN_EVERY=10_000, ROBUST_EPS=0, REPLICA_ID="crash", FLAGS_PER_SESSION=0)
    app = AppProcess(data_dir, tmp_path / "app.log", **env).start()
    acked, errors, stop = [], [], threading.Event()
    visitors = [threading.Thread(target=flag_until, args=(app.url, fooling_payloads[i::2], stop, acked, errors))
                for i in range(2)]
    try:
        for visitor in visitors:
            visitor.start()
        deadline = time.monotonic() + 90
        while len(acked) < 25 and time.monotonic() < deadline:
            time.sleep(0.02)
        app.kill()  # while both visitors have requests in flight
    finally:
        stop.set()
        app.kill()
        for visitor in visitors:
            visitor.join(60)
    assert len(acked) >= 25, f"only {len(acked)} flags acknowledged before the kill: {errors[:1]}"

    rows = rows_on_disk(data_dir)
    ids = Counter(row["id"] for row in rows)
    assert all(ids[example_id] == 1 for example_id in acked)  # every acknowledged flag, exactly once
    assert max(ids.values()) == 1 and len(rows) - len(acked) <= 2  # at most the two in flight besides
    assert_whole(data_dir, rows)
    assert sorted(row["seq"] for row in rows) == list(range(len(rows)))

    with AppProcess(data_dir, tmp_path / "app.log", **env) as again:
        client = Client(again.url, verbose=False)
        status = client.predict(api_name="/status")
        assert status["examples"]["total"] == len(rows)
        assert sum(status["examples"]["per_digit"].values()) == len(rows)
        _, example_id = client.predict(*fooling_payloads[0], "", False, api_name="/flag")
    rows_after = rows_on_disk(data_dir)
    assert len(rows_after) == len(rows) + 1 and rows_after[-1]["id"] == example_id
    assert rows_after[-1]["seq"] == len(rows)  # the shard's count went on from where the kill left it


def flag_mislabelled(client: Client, payload, n: int) -> None:
    """Flags whatever the model says, labelled as the next digit: always accepted (the gate is off below)."""
    for _ in range(n):
        guess = int(client.predict(payload, api_name="/predict")["label"])
        client.predict(payload, (guess + 1) % 10, "", False, api_name="/flag")


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_kill_mid_retrain_leaves_the_last_promoted_model_serving(tmp_path):
    data_dir = tmp_path / "data"
    env = dict(RETRAIN_EVERY=3, ROUND_STEPS=20, ROBUST_EPS=0, GATE_MARGIN=100, REPLICA_ID="crash",
               FLAGS_PER_SESSION=0)
    payload = client_payload(draw_sketch(5), tmp_path / "five")
    history = data_dir / "rounds" / "crash" / "rounds.jsonl"
    app = AppProcess(data_dir, tmp_path / "app.log", **env).start()
    try:
        client = Client(app.url, verbose=False)
        flag_mislabelled(client, payload, 3)
        wait_for(lambda: client.predict(api_name="/status")["round"] == 1, 120, "round 1")
        flag_mislabelled(client, payload, 3)
        wait_for(lambda: client.predict(api_name="/status")["training"], 60, "round 2 to start")
        time.sleep(random.uniform(0, 1.0))  # somewhere in training, evaluation or the checkpoint's write
        rounds_process = app.children()
        assert rounds_process, "the round computes in a process of its own"
        app.kill()
    finally:
        app.kill()
    wait_for(lambda: not any(alive(pid) for pid in rounds_process), 30, "the round process ending with the app")

    records = [RoundRecord.from_json(json.loads(line)) for line in history.read_text().splitlines()]
    promoted = [r for r in records if r.status == "promoted"]
    assert promoted and promoted[-1].round in (1, 2)
    for record in promoted:
        checkpoints.load(data_dir / "rounds" / record.checkpoint)  # every recorded checkpoint is whole

    with AppProcess(data_dir, tmp_path / "app.log", **env) as again:
        client = Client(again.url, verbose=False)
        status = client.predict(api_name="/status")
        assert status["round"] >= promoted[-1].round
        assert client.predict(client_payload(draw_sketch(3), tmp_path / "three"), api_name="/predict")["label"]
        wait_for(lambda: not client.predict(api_name="/status")["training"] and
                 client.predict(api_name="/status")["until_next_round"] > 0, 120, "the interrupted round to rerun")
        status = client.predict(api_name="/status")
    assert status["round"] == 2 and status["examples"]["total"] == 6  # round 2 ran again, with all six examples


SAVE_FOREVER = """
import sys
from outwit.ml import checkpoints
from outwit.ml.metrics import Metrics
from model import build_model
model = build_model("vit")
meta = checkpoints.describe(model, round=1, metrics=Metrics(), trained_on={}, recipe={})
print("ready", flush=True)
while True:
    checkpoints.save(sys.argv[1], model, meta)
"""


def test_a_kill_mid_checkpoint_write_never_leaves_a_half_file(tmp_path):
    target = tmp_path / "rounds" / "round-0001.safetensors"
    rng = random.Random(0)
    for _ in range(5):
        writer = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(target)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.3))
        writer.kill()
        writer.wait(30)
        if target.exists():
            model, meta = checkpoints.load(target)  # whole, or not there at all
            assert meta.round == 1
    assert target.exists()


def test_a_damaged_checkpoint_falls_back_to_the_round_before(tmp_path, caplog):
    history = History(tmp_path / "rounds" / "r" / "rounds.jsonl")
    history.append(RoundRecord(round=0, status="base"))
    for number in (1, 2):
        model = build_model("cnn")
        meta = checkpoints.describe(model, round=number, metrics=Metrics(), trained_on={}, recipe={})
        path = checkpoints.save(tmp_path / "rounds" / "r" / f"round-{number:04d}.safetensors", model, meta)
        history.append(RoundRecord(round=number, status="promoted", checkpoint=f"r/{path.name}",
                                   created=meta.created))
    broken = tmp_path / "rounds" / "r" / "round-0002.safetensors"
    broken.write_bytes(broken.read_bytes()[:1000])  # a damaged disk, not a crash: a crash cannot do this
    model, meta = load_serving(history, REPO / "models/base.safetensors")
    assert meta["round"] == 3 and meta["checkpoint"].endswith("round-0001.safetensors")
    assert history.serving().source == "fallback to round 1" and "round 2's checkpoint" in history.serving().reason
    assert "cannot be loaded" in caplog.text
    assert History(history.path).serving().checkpoint == "r/round-0001.safetensors"  # recorded: a restart agrees
