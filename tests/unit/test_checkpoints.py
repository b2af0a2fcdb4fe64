"""The one home of checkpoints: bytes, atomic files, the Hub's layout, and the one metrics layout."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save as save_plain

from model import build_model
from outwit.ml import checkpoints
from outwit.ml.metrics import ADVERSARIAL, MNIST, Accuracy, Metrics

METRICS = Metrics({MNIST: Accuracy("mnist-sample-5k/test", 1000, 0.991, 0.999),
                   ADVERSARIAL: Accuracy("adversarial/test", 8, 0.75, 1.0)})


def described(model, **changes):
    return checkpoints.describe(model, **{"round": 3, "metrics": METRICS, "trained_on": {"adversarial": 24},
                                          "recipe": {"steps": 80, "lr": 3e-4}, **changes})


@pytest.mark.parametrize("arch, args", [("cnn", {"channels": (16, 32, 48), "dropout": 0.2}), ("seed", {})])
def test_round_trip_rebuilds_the_same_model_and_its_description(tmp_path, arch, args):
    model = build_model(arch, **args).eval()
    meta = described(model)
    path = checkpoints.save(tmp_path / "m.safetensors", model, meta)
    loaded, loaded_meta = checkpoints.load(path)
    assert loaded_meta == meta and loaded_meta.metrics.top1(MNIST) == 0.991
    assert loaded_meta.recipe == {"steps": 80, "lr": 3e-4} and loaded_meta.arch_args == meta.arch_args
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    assert checkpoints.read_meta(path) == meta


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    model = build_model("seed").eval()
    path = checkpoints.save(tmp_path / "m.safetensors", model, described(model, round=1))
    before = path.read_bytes()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("outwit.storage.os.fsync", disk_full)
    with pytest.raises(OSError):
        checkpoints.save(path, model, described(model, round=2))
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_a_truncated_or_foreign_file_is_refused():
    payload = checkpoints.to_bytes(build_model("seed"), checkpoints.CheckpointMeta(arch="seed"))
    with pytest.raises(ValueError, match="truncated"):
        checkpoints.from_bytes(payload[:4])
    with pytest.raises(ValueError, match="truncated"):
        checkpoints.from_bytes(payload[:8] + payload[8:40])
    with pytest.raises(ValueError, match="not an Outwit checkpoint"):
        checkpoints.from_bytes(save_plain({"w": torch.zeros(2)}))


def test_a_checkpoint_of_the_first_format_is_read_in_the_one_layout():
    """Rounds already on disks and on the Hub: metrics flat, the recipe inside trained_on."""
    model = build_model("seed").eval()
    old = {"arch": "seed", "arch_args": {"hidden": 50, "dropout": 0.5}, "round": 2, "created": "2026-11-01",
           "metrics": {"mnist_top1": 0.98, "mnist_dataset": "mnist-sample-5k/test", "adversarial_top1": 0.5,
                       "adversarial_size": 4},
           "trained_on": {"adversarial": 16, "recipe": {"epochs": 20}}}
    payload = save_plain({k: v.contiguous() for k, v in model.state_dict().items()},
                         metadata={"format": "outwit-checkpoint/1", "outwit": json.dumps(old)})
    _, meta = checkpoints.from_bytes(payload)
    assert meta.metrics == Metrics({MNIST: Accuracy("mnist-sample-5k/test", None, 0.98),
                                    ADVERSARIAL: Accuracy("adversarial/test", 4, 0.5)})
    assert meta.recipe == {"epochs": 20} and meta.trained_on == {"adversarial": 16}


def test_pretraining_s_first_metrics_layout_is_read_the_same_way():
    old = {"mnist_test": {"dataset": "mnist-sample-5k/test", "size": 1000, "top1": 0.992, "top5": 1.0}}
    assert Metrics.from_json(old) == Metrics({MNIST: Accuracy("mnist-sample-5k/test", 1000, 0.992, 1.0)})
    assert Metrics.from_json(METRICS.to_json()) == METRICS


def test_the_hub_layout_loads_with_only_torch_safetensors_and_the_published_networks(tmp_path):
    """What the model card promises: the repo's model.py, config.json and model.safetensors, and nothing of Outwit."""
    model = build_model("cnn", channels=(8, 16, 24)).eval()
    model.train()(torch.rand(16, 1, 28, 28))  # BatchNorm statistics off their defaults
    model.eval()
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, payload in checkpoints.hub_files(checkpoints.to_bytes(model, described(model))).items():
        (repo / name).write_bytes(payload)
    config = json.loads((repo / "config.json").read_text())
    assert (config["arch"], config["round"], config["metrics"]["mnist"]["top1"]) == ("cnn", 3, 0.991)
    x = torch.rand(2, 1, 28, 28)
    torch.save(x, tmp_path / "x.pt")
    script = f"""
import json, sys
import torch
from safetensors.torch import load_file
sys.path.insert(0, {str(repo)!r})
import model as outwit_networks
config = json.load(open({str(repo / 'config.json')!r}))
net = outwit_networks.build_model(config["arch"], **config["arch_args"]).eval()
net.load_state_dict(load_file({str(repo / 'model.safetensors')!r}))
print(json.dumps(net(torch.load({str(tmp_path / 'x.pt')!r})).tolist()))
"""
    # -I: no current folder, no PYTHONPATH: Outwit's own modules cannot be imported from here
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.allclose(torch.tensor(json.loads(done.stdout)), model(x), atol=1e-6)
    loaded, meta = checkpoints.load_hub_folder(repo)
    assert meta.round == 3 and torch.equal(loaded(x), model(x))


def test_the_networks_file_needs_only_torch():
    source = checkpoints.hub_files(checkpoints.to_bytes(build_model("seed"), checkpoints.CheckpointMeta(arch="seed")))
    imports = [line for line in source["model.py"].decode().splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in ("__future__", "json", "dataclasses", "typing", "torch")
               for line in imports), imports
