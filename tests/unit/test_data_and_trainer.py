"""Data sources, training, evaluation and the trainer's command line."""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import build_model
from outwit import cli
from outwit.ml import checkpoints, data, training


def write_idx(path: Path, array: np.ndarray, packed: bool = False) -> None:
    """IDX, the format MNIST is distributed in: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload += array.tobytes()
    path.write_bytes(gzip.compress(payload) if packed else payload)


@pytest.fixture
def tiny_mnist_root(tmp_path, mnist_sample_train, mnist_sample_test):
    """Real-MNIST files in torchvision's layout, made of 200 train / 50 test sample images (train ones gzipped)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte.gz", mnist_sample_train.images[:200], packed=True)
    write_idx(raw / "train-labels-idx1-ubyte.gz", mnist_sample_train.labels[:200], packed=True)
    write_idx(raw / "t10k-images-idx3-ubyte", mnist_sample_test.images[::20])
    write_idx(raw / "t10k-labels-idx1-ubyte", mnist_sample_test.labels[::20])
    return tmp_path


def test_sample_split_is_stratified_disjoint_and_fixed(mnist_sample_train, mnist_sample_test):
    assert (len(mnist_sample_train), len(mnist_sample_test)) == (4000, 1000)
    assert np.bincount(mnist_sample_train.labels).tolist() == [400] * 10
    assert np.bincount(mnist_sample_test.labels).tolist() == [100] * 10
    train_rows = {im.tobytes() for im in mnist_sample_train.images}
    assert not any(im.tobytes() in train_rows for im in mnist_sample_test.images)
    again = data.load_sample("test")
    assert np.array_equal(again.images, mnist_sample_test.images)
    assert mnist_sample_test.name == "mnist-sample-5k/test"


def test_auto_uses_real_mnist_when_its_files_exist(tiny_mnist_root, tmp_path_factory, mnist_sample_train):
    train = data.load_digits("auto", tiny_mnist_root, "train")
    test = data.load_digits("auto", tiny_mnist_root, "test")
    assert (train.name, len(train), test.name, len(test)) == ("mnist/train", 200, "mnist/test", 50)
    assert np.array_equal(train.images, mnist_sample_train.images[:200])
    assert np.array_equal(train.labels, mnist_sample_train.labels[:200])
    empty = tmp_path_factory.mktemp("empty")
    assert data.load_digits("auto", empty, "test").name == "mnist-sample-5k/test"


def test_bad_source_and_split_are_named():
    with pytest.raises(ValueError, match="'emnist'"):
        data.load_digits("emnist", ".", "test")
    with pytest.raises(ValueError, match="'valid'"):
        data.load_sample("valid")


def test_evaluate_counts_top1_top5_per_digit_and_confusion():
    class Fixed(torch.nn.Module):
        """Always ranks 3 first, then 1, 2, 4, 5."""

        def forward(self, x):
            logits = torch.full((len(x), 10), -10.0)
            logits[:, [3, 1, 2, 4, 5]] = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
            return logits

    labels = torch.tensor([3, 3, 1, 9])
    result = training.evaluate(Fixed(), torch.zeros(4, 1, 28, 28), labels, name="toy")
    assert (result["dataset"], result["size"], result["top1"], result["top5"]) == ("toy", 4, 0.5, 0.75)
    assert result["per_digit"] == {"1": 0.0, "3": 1.0, "9": 0.0}
    assert result["confusion"][3][3] == 2 and result["confusion"][1][3] == 1 and result["confusion"][9][3] == 1
    assert sum(map(sum, result["confusion"])) == 4


def test_random_affine_moves_ink_but_keeps_it():
    images = torch.from_numpy(data.load_sample("test").images[:16]).unsqueeze(1).float() / 255
    moved = training.random_affine(images, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape
    assert not torch.allclose(moved, images)
    ratio = moved.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert ((ratio > 0.6) & (ratio < 1.5)).all()


def test_training_is_deterministic_for_a_seed(mnist_sample_train):
    x, y = mnist_sample_train.tensors()

    def run(seed):
        gen = training.seed_everything(seed)
        model = build_model("cnn")
        training.train(model, x[:256], y[:256], epochs=1, lr=3e-3, batch_size=64, generator=gen, max_steps=3)
        return model.state_dict()

    first, second, other = run(1), run(1), run(2)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_a_few_steps_of_training_lower_the_loss(mnist_sample_train):
    x, y = mnist_sample_train.tensors()
    model = build_model("seed")
    before = torch.nn.functional.cross_entropy(model.eval()(x[:512]), y[:512]).item()
    training.train(model, x, y, epochs=1, lr=3e-3, batch_size=64, generator=torch.Generator().manual_seed(0),
                  max_steps=30, augment=False)
    after = torch.nn.functional.cross_entropy(model(x[:512]), y[:512]).item()
    assert after < before * 0.8


def run_cli(capsys, *argv) -> tuple[int, dict | None, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else None, err


def test_cli_dry_run_trains_one_step_and_writes_nothing(tmp_path, capsys):
    code, result, _ = run_cli(capsys, "pretrain", "--dry-run", "--quiet", "--out", tmp_path / "m.safetensors")
    assert code == 0 and result["steps"] == 1 and result["checkpoint"] is None
    assert list(tmp_path.iterdir()) == []


def test_cli_pretrain_with_other_channels_writes_them_in_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "narrow.safetensors"
    code, _, _ = run_cli(capsys, "pretrain", "--channels", "8,16,32", "--max-steps", "2", "--quiet", "--out", out)
    assert code == 0
    model, meta = checkpoints.load(out)
    assert meta.arch == "cnn" and meta.arch_args["channels"] == [8, 16, 32]
    assert model.head.in_features == 32


@pytest.mark.parametrize("argv, message", [
    (["--channels", "8,16"], "three channel counts"),
    (["--channels", "8,x,32"], "three comma-separated whole numbers"),
    (["--channels", "0,16,32"], "from 1 to 1024"),
])
def test_cli_bad_channels_are_refused_with_a_reason(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain", *argv, "--out", str(tmp_path / "m.safetensors")])
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_channels_are_for_the_cnn_only(tmp_path, capsys):
    code, _, err = run_cli(capsys, "pretrain", "--arch", "seed", "--channels", "8,16,32", "--out", tmp_path / "m")
    assert code == 2 and "--channels is for --arch cnn" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_pretrain_then_evaluate_on_real_mnist_files(tiny_mnist_root, tmp_path, capsys):
    out = tmp_path / "models" / "tiny.safetensors"
    code, trained, _ = run_cli(capsys, "pretrain", "--arch", "seed", "--max-steps", "5", "--quiet", "--data", "mnist",
                               "--data-root", tiny_mnist_root, "--out", out)
    assert code == 0 and out.exists() and trained["dataset"] == "mnist/test"
    code, result, _ = run_cli(capsys, "evaluate", "--checkpoint", out, "--data-root", tiny_mnist_root)
    assert code == 0
    assert (result["dataset"], result["size"], result["arch"]) == ("mnist/test", 50, "seed")
    assert result["top1"] == trained["top1"]
    assert sum(map(sum, result["confusion"])) == 50 and len(result["confusion"]) == 10
    assert 0 <= result["top1"] <= result["top5"] <= 1
    assert set(result["per_digit"]) <= {str(d) for d in range(10)}


def test_cli_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "nope.safetensors")
    assert code == 2 and "nope.safetensors" in err


def test_cli_help_states_every_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--help"])
    text = capsys.readouterr().out
    for default in ("(default: cnn)", "(default: 20", "(default: 0.003)", "(default: 64)", "(default: 0)",
                    "(default: True)", "(default: auto)", "(default: models/base.safetensors)"):
        assert default in text


def test_a_fixed_subset_is_random_but_the_same_every_time(mnist_sample_test):
    pick = data.fixed_subset(len(mnist_sample_test), 50)
    assert torch.equal(pick, data.fixed_subset(len(mnist_sample_test), 50)) and len(set(pick.tolist())) == 50
    assert len(set(mnist_sample_test.labels[pick.numpy()].tolist())) == 10  # every digit, unlike the first 50
    assert len(data.fixed_subset(20, None)) == len(data.fixed_subset(20, 99)) == 20


def test_the_sample_is_read_once_however_many_splits_are_loaded_and_reads_as_numpy_reads_it():
    """Every start loads both splits (twice over, before): the file is parsed once per process."""
    data._sample_table.cache_clear()
    train, test = data.load_sample("train"), data.load_sample("test")
    data.load_sample("train")
    assert data._sample_table.cache_info().misses == 1 and (len(train), len(test)) == (4000, 1000)
    with gzip.open(data._sample_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images, labels = data._sample_table()
    assert np.array_equal(images, table[:, :-1].astype(np.uint8).reshape(-1, 28, 28))
    assert np.array_equal(labels, table[:, -1].astype(np.int64))


def test_ema_ends_with_the_moving_average_of_every_steps_weights_and_batchnorm_statistics(mnist_sample_train,
                                                                                          monkeypatch):
    x, y = mnist_sample_train.tensors()
    seen, step = [], training.optimiser_step

    def recording(optimizer, schedule, loss):
        answer = step(optimizer, schedule, loss)
        seen.append({k: v.detach().clone().float() for k, v in model.state_dict().items()})
        return answer

    monkeypatch.setattr(training, "optimiser_step", recording)
    model = build_model("cnn", channels=(4, 8, 8))
    training.train(model, x[:96], y[:96], epochs=1, lr=3e-3, batch_size=32, generator=torch.Generator().manual_seed(0),
                   augment=False, ema=0.6)
    expected = dict(seen[0])
    for weights in seen[1:]:
        expected = {k: 0.6 * expected[k] + 0.4 * weights[k] for k in expected}
    final = model.state_dict()
    assert len(seen) == 3 and not torch.equal(final["head.weight"], seen[-1]["head.weight"])
    for name in ("head.weight", "features.0.0.weight", "features.0.1.running_mean", "features.0.1.running_var"):
        assert torch.allclose(final[name], expected[name], atol=1e-6), name


def test_cli_records_the_ema_decay_and_refuses_one_that_is_not_a_decay(tmp_path, capsys, mnist_sample_train):
    out = tmp_path / "m.safetensors"
    code, _, _ = run_cli(capsys, "pretrain", "--ema", "0.9", "--max-steps", "2", "--quiet", "--out", out)
    assert code == 0 and checkpoints.load(out)[1].recipe["ema"] == 0.9
    for bad in ("1", "0", "fast"):
        with pytest.raises(SystemExit):
            cli.main(["pretrain", "--ema", bad, "--out", str(tmp_path / "bad.safetensors")])
        assert "--ema" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    with pytest.raises(ValueError, match="ema=1"):
        training.train(build_model("seed"), *mnist_sample_train.tensors(), epochs=1, lr=1e-3, batch_size=8,
                       generator=torch.Generator(), ema=1)
