"""Many replicas, one model: three `python app.py` that only collect (ROUND_RUNNER=none) and round runners
(`python trainer.py rounds`), all through a local server that speaks the Hub's HTTP API."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from outwit.dadc.store import AdversarialStore
from outwit.hub.lease import LEASE_PATH, LeaseState
from outwit.hub.restore import restore_dataset
from outwit.sim.app_process import REPO as ROOT
from outwit.sim.app_process import AppProcess
from outwit.sim.hub_server import REPO, TOKEN, api_for
from tests.app.test_replicas import Replica
from tests.app.test_stop import wait_for

MODELS = "outwit/model"
SYNC_EVERY = 0.05  # minutes: a tick every 3 s
HUB = dict(HF_TOKEN=TOKEN, DATASET_REPO=REPO, MODEL_REPO=MODELS, HF_HUB_OFFLINE="0", SYNC_EVERY=SYNC_EVERY,
           RETRAIN_EVERY=10, ROBUST_EPS=0, MNIST_DATA="sample", GATE_MARGIN=10, FLAGS_PER_SESSION=0,
           RUNNER_LEASE=0.5, HF_HUB_DISABLE_XET="1")


def runner_command(hub, folder: Path, name: str, *extra: str) -> tuple[list[str], dict]:
    """`python trainer.py rounds` for the test Hub, with its data in `folder/name`: (argv, environment)."""
    env = {**os.environ, **{k: str(v) for k, v in HUB.items()}, "HF_ENDPOINT": hub.endpoint, "PYTHONUNBUFFERED": "1"}
    return [sys.executable, "trainer.py", "rounds", "--dataset-repo", REPO, "--model-repo", MODELS,
            "--data-dir", str(folder / name), "--name", name, *extra], env


class Runner:
    """`python trainer.py rounds` as its own process."""

    def __init__(self, hub, folder: Path, name: str, *extra: str):
        self.log = folder / f"{name}.log"
        argv, env = runner_command(hub, folder, name, *extra)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(90)


def status(app: AppProcess) -> dict:
    return Client(app.url, verbose=False).predict(api_name="/status")


def published(hub) -> dict:
    """The model repo's config.json (the round it serves), or {} before any."""
    repo = hub.repos.get(("models", MODELS))
    return json.loads(repo.files["config.json"]) if repo and "config.json" in repo.files else {}


def lease_on_hub(hub) -> LeaseState | None:
    repo = hub.repos.get(("models", MODELS))
    return LeaseState.from_bytes(repo.files[LEASE_PATH]) if repo and LEASE_PATH in repo.files else None


def round_zero(app: AppProcess) -> list:
    """Round 0's row of the Rounds tab: round, status, model, examples, tried, MER, vMER, rejected, ..."""
    rounds, _, _ = Client(app.url, verbose=False).predict(api_name="/rounds")
    return next(row for row in rounds["data"] if row[0] == 0)


def save(app: AppProcess, payloads: list, n: int, relabel: bool = False) -> list[str]:
    """`n` saves on `app`. `relabel`: each saved as another digit than it is (after a round, the drawings that fooled
    the shipped model may not fool the new one; a wrong label always differs from some guess)."""
    client = Client(app.url, verbose=False)
    saved = []
    for i in range(n):
        payload, digit = payloads[i % len(payloads)]
        labels = [(digit + k) % 10 for k in (5, 6)] if relabel else [digit]
        for label in labels:
            try:
                saved.append(client.predict(payload, label, "", False, api_name="/flag")[1])
                break
            except AppError as err:
                if "already reads this as" not in str(err) or label == labels[-1]:
                    raise
    return saved


@pytest.fixture
def replicas(hub, tmp_path):
    apps = [AppProcess(tmp_path / name, tmp_path / f"{name}.log", REPLICA_ID=name, ROUND_RUNNER="none",
                       ROUNDS_IN="thread", HF_ENDPOINT=hub.endpoint, **HUB) for name in ("a", "b", "c")]
    for app in apps:
        app.start()
    yield apps
    for app in apps:
        assert app.stop(timeout=90) == 0, app.log.read_text()[-3000:]


def test_ten_saves_over_three_replicas_make_one_round_that_all_three_serve(hub, tmp_path, replicas,
                                                                          fooling_payloads):
    runners = [Runner(hub, tmp_path, "runner-1"), Runner(hub, tmp_path, "runner-2")]  # the second by mistake
    wait_for(lambda: lease_on_hub(hub), 120, "a runner taking the lease")
    acked = []
    for app, n in zip(replicas, (4, 3, 3)):
        acked += save(app, fooling_payloads, n)
    wait_for(lambda: published(hub).get("round") == 1, 180, "round 1 published")
    for app in replicas:  # every replica swaps it in, and says where it came from
        wait_for(lambda app=app: status(app)["round"] == 1, 60, f"{app.url} serving round 1")
    holder = lease_on_hub(hub).holder
    for app in replicas:
        assert status(app)["served_from"] == f"the round runner ({holder})"
    assert holder.startswith(("runner-1", "runner-2"))
    model_repo = hub.repo(MODELS, kind="models")
    rounds = [p for p in model_repo.files if p.startswith("rounds/")]
    assert len(rounds) == 1 and holder.rsplit("-", 1)[0] in rounds[0], rounds  # one round, by the lease's holder
    counts = [status(app)["examples"] for app in replicas]
    assert [c["total"] for c in counts] == [10, 10, 10]  # each replica counts the whole app's
    assert published(hub)["trained_on"]["adversarial"] == counts[0]["train"]  # each train example once
    for app in replicas:  # MER's denominator: the drawings every replica judged (each pulls the others' counts)
        wait_for(lambda app=app: round_zero(app)[4:6] == [10, "100.0%"], 60, f"{app.url} counting every drawing")
    # a vote cast on replica b, on an example saved on a, counts on c
    label = fooling_payloads[0][1]
    Client(replicas[1].url, verbose=False).predict(acked[0], (label + 1) % 10, "", api_name="/vote_incorrect")
    wait_for(lambda: round_zero(replicas[2])[7] == "10.0%", 60, "replica c counting b's vote")
    # the runner is stopped and started again: it resumes where it was, and the next ten make round 2
    for runner in runners:
        assert runner.stop() == 0, runner.log.read_text()[-3000:]
    assert lease_on_hub(hub).until == 0  # let go at the stop
    again = Runner(hub, tmp_path, "runner-3")
    for app, n in zip(replicas, (3, 3, 4)):
        acked += save(app, fooling_payloads, n, relabel=True)
    wait_for(lambda: published(hub).get("round") == 2, 180, "round 2 published")
    # each train example once, but for the one voted out on b (a's first save: a train example)
    assert published(hub)["trained_on"]["adversarial"] == status(replicas[0])["examples"]["train"] - 1
    assert status(replicas[0])["examples"]["total"] == 20
    for app in replicas:
        wait_for(lambda app=app: status(app)["round"] == 2, 60, f"{app.url} serving round 2")
    assert len([p for p in model_repo.files if p.startswith("rounds/")]) == 2
    assert again.stop() == 0, again.log.read_text()[-3000:]
    assert len(set(acked)) == 20


def test_a_replica_killed_mid_push_loses_no_acknowledged_example(hub, tmp_path, fooling_payloads):
    """SIGKILL while a commit is on its way; started again on the same disk, the replica pushes what the Hub lacks
    and the other replica sees every acknowledged example once."""
    env = dict(HUB, REPLICA_ID="k", ROUNDS_IN="thread", HF_ENDPOINT=hub.endpoint, RETRAIN_EVERY=1000)
    other = AppProcess(tmp_path / "other", tmp_path / "other.log", **{**env, "REPLICA_ID": "other"}).start()
    app = AppProcess(tmp_path / "k", tmp_path / "k.log", **env).start()
    hub.slow_commits(30)
    hub.commit_started["datasets"].clear()
    acked = save(app, fooling_payloads, 5)
    assert hub.commit_started["datasets"].wait(60), "no push began"
    app.kill()
    hub.slow_commits(0)
    again = AppProcess(tmp_path / "k", tmp_path / "k.log", **env).start()
    wait_for(lambda: status(other)["examples"]["total"] == 5, 120, "the other replica seeing all five")
    assert again.stop(timeout=90) == 0 and other.stop(timeout=90) == 0
    restore_dataset(api_for(hub), REPO, tmp_path / "restored")
    on_hub = Counter(row["id"] for row in AdversarialStore(tmp_path / "restored" / "adversarial").rows())
    assert set(acked) == set(on_hub) and set(on_hub.values()) == {1}


def run_once(hub, tmp_path, name: str) -> dict:
    argv, env = runner_command(hub, tmp_path, name, "--once")
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_runner_run_once_makes_the_round_that_is_due_then_the_next_run_carries_on(hub, tmp_path):
    """`trainer.py rounds --once`, as a cron job or a webhook runs it: each run on a fresh disk."""
    replica = Replica(hub, tmp_path / "replica", "replica-a")
    replica.flag(10)
    replica.sync()
    first = run_once(hub, tmp_path, "cron-1")
    assert first["held_lease"] and first["promoted_here"] == [1] and first["round"] == 1
    assert published(hub)["round"] == 1 and lease_on_hub(hub).until == 0  # published, and the lease let go
    second = run_once(hub, tmp_path, "cron-2")  # nothing new: no round, and it counts on from round 1's start
    assert second["promoted_here"] == [] and second["round"] == 1 and second["until_next_round"] == 10
    replica.flag(10, start=10)
    replica.sync()
    third = run_once(hub, tmp_path, "cron-3")
    assert third["promoted_here"] == [2] and published(hub)["round"] == 2
    replica.stop()
