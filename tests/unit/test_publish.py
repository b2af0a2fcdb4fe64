"""Promoted rounds in a model repo, against a local server that speaks the Hub's HTTP API."""
import json
import subprocess
import sys

import torch

from model import build_model
from outwit import services as app_services
from outwit.config import Config
from outwit.hub.publish import ModelPublisher, fetch_published
from outwit.ml import checkpoints
from outwit.ml.metrics import ADVERSARIAL, MNIST, Accuracy, Metrics
from outwit.sim.drawings import fooling_examples
from outwit.sim.hub_server import REPO, TOKEN, api_for


def test_a_promoted_round_is_published_with_a_card_and_loads_back(hub, tmp_path):
    model = build_model("seed").eval()
    meta = checkpoints.describe(model, round=3, trained_on={"adversarial": 24, "replay": 2048},
                                recipe={"steps": 80, "seed": 3},
                                metrics=Metrics({MNIST: Accuracy("mnist-sample-5k/test", 1000, 0.991),
                                                 ADVERSARIAL: Accuracy("adversarial/test", 8, 0.75)}))
    checkpoints.save(tmp_path / "round-0003.safetensors", model, meta)
    links = {"endpoint": hub.endpoint, "space_id": "someone/outwit", "dataset_repo": REPO}
    publisher = ModelPublisher(api=api_for(hub), repo_id="outwit/model", shard="replica-a", every=60,
                               card_links=links).start()
    hub.stop()  # the Hub is away when the round is promoted
    publisher.publish(tmp_path / "round-0003.safetensors", meta)
    assert publisher.wait_idle(120)
    assert publisher.status().waiting == 1 and publisher.status().last_error
    hub.start()
    publisher.push_now()  # as the next tick would
    assert publisher.wait_idle(60) and publisher.status().waiting == 0
    publisher.stop()
    files = hub.repo("outwit/model", kind="models").files
    assert {"model.safetensors", "config.json", "model.py", "rounds/round-0003-replica-a.safetensors",
            "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert "round 3" in card and "99.1%" in card and "75.0%" in card and "mnist-sample-5k/test" in card
    assert f"({hub.endpoint}/spaces/someone/outwit)" in card and f"({hub.endpoint}/datasets/{REPO})" in card
    assert "(https://huggingface.co/blog/mnist-adversarial)" in card and "github.com/)" not in card
    payload, fetched = fetch_published(api_for(hub), "outwit/model")
    assert fetched == meta and payload == (tmp_path / "round-0003.safetensors").read_bytes()
    # the card's own code, run where Outwit is not importable, loads the same model
    code = card.split("```python\n")[1].split("```")[0]
    x = torch.rand(2, 1, 28, 28)
    torch.save(x, tmp_path / "x.pt")
    code += f"\nimport torch\nprint(json.dumps(net(torch.load({str(tmp_path / 'x.pt')!r})).tolist()))\n"
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.allclose(torch.tensor(json.loads(done.stdout)), model(x), atol=1e-6)


def test_a_restarted_space_resumes_examples_rounds_and_the_published_model(hub, tmp_path):
    def start(data_dir):
        config = Config.from_env({"HF_TOKEN": TOKEN, "DATASET_REPO": REPO, "MODEL_REPO": "outwit/model",
                                  "HF_ENDPOINT": hub.endpoint, "DATA_DIR": str(data_dir), "MNIST_DATA": "sample",
                                  "SYNC_EVERY": "60", "RETRAIN_EVERY": "5", "ROUND_STEPS": "30",
                                  "GATE_MARGIN": "5"})
        services = app_services.start_services(config)
        assert services.hub.wait_ready(30)
        return services

    first = start(tmp_path / "first")
    for drawing, digit, probs in fooling_examples(first.predictor.predict, 5):
        first.store.add(drawing, label=digit, guess=int(probs.argmax()), confidence=0.5, model_round=0)
        first.worker.notify()
        assert first.worker.wait_idle(120)
    assert first.status().worker.round == 1
    assert first.publisher.wait_idle(60) and first.publisher.status().waiting == 0
    served_before = first.predictor.current.model
    first.stop()  # shutting down pushes what waits

    second = start(tmp_path / "second")  # a wiped disk
    try:
        assert second.worker.wait_idle(60)
        status = second.status().worker
        assert status.round == 1 and status.examples.total == 5
        assert [h.status for h in status.history][:2] == ["base", "promoted"]
        leftovers = [p for p in (tmp_path / "second").rglob("*") if p.name in (".hub-restore", ".downloads")]
        assert not leftovers  # what was restored or fetched is not kept twice
        x = torch.rand(3, 1, 28, 28)
        assert torch.allclose(second.predictor.current.model(x), served_before(x))
    finally:
        second.stop()
