"""What a round learns from and is judged on, as functions the worker calls when a round starts: the training-set
policy (the adversarial examples, repeated, mixed with replayed MNIST) and the evaluation sets."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from outwit.dadc.rounds import EvalSet, Replay, TrainingSet
from outwit.dadc.store import AdversarialStore
from outwit.ml import data
from outwit.ml.attacks import Attack
from outwit.ml.metrics import ADVERSARIAL, MNIST, ROBUST


def mixed_training_set(store: AdversarialStore, mnist_train: data.Digits, *, replay: int = 2048,
                       adversarial_share: float = 0.25, seed: int = 0, attack: Attack | None = None,
                       serving: Callable[[], nn.Module] | None = None,
                       keep: Callable[[dict], bool] | None = None) -> Callable[[], TrainingSet]:
    """All adversarial training examples, repeated to about `adversarial_share` of the set, plus `replay` MNIST
    training images drawn at random (so MNIST accuracy holds). A function, so a caller can filter or add.

    With `attack` (and `serving`, the model to attack), each adversarial training example also comes as its PGD
    version against the serving model, with the same label: the round learns the gradient's tricks too.
    `keep`: which examples may be trained on (e.g. `Reviews.usable`: validated, not retracted); all by default.
    """
    if attack is not None and serving is None:
        raise ValueError("attack needs serving: the model whose gradients make the PGD examples")
    mnist_x, mnist_y = mnist_train.tensors()
    generator = torch.Generator().manual_seed(seed)

    def build() -> TrainingSet:
        adv_x, adv_y = store.tensors(_kept(store, "train", keep))
        described = {}
        if attack is not None and len(adv_y):
            adv_x = torch.cat([adv_x, attack(serving(), adv_x, adv_y, generator)])
            adv_y = torch.cat([adv_y, adv_y])
            described = {"attacked": len(adv_y) // 2, "attack": attack.name}
        pick = torch.randperm(len(mnist_y), generator=generator)[:replay]
        repeat = max(1, round(adversarial_share / (1 - adversarial_share) * len(pick) / max(1, len(adv_y))))
        return TrainingSet(torch.cat([adv_x.repeat(repeat, 1, 1, 1), mnist_x[pick]]),
                           torch.cat([adv_y.repeat(repeat), mnist_y[pick]]),
                           {"adversarial": len(adv_y) - described.get("attacked", 0), **described,
                            "replay": len(pick), "mnist": mnist_train.name},
                           replay=Replay(mnist_train.name, mnist_x, pick))

    return build


def standard_eval_sets(store: AdversarialStore, mnist_test: data.Digits, *, robust: Attack | None = None,
                       robust_size: int = 100, keep: Callable[[dict], bool] | None = None
                       ) -> Callable[[], dict[str, EvalSet]]:
    """The MNIST test split, the held-out adversarial examples as they are when the round runs (those `keep`
    accepts), and with `robust`, a fixed random subset of `robust_size` MNIST test images under that attack (the same
    subset every round)."""
    mnist = EvalSet.of(mnist_test)
    sets = {MNIST: mnist}
    if robust is not None:
        pick = data.fixed_subset(len(mnist.labels), robust_size)
        sets[ROBUST] = EvalSet(f"{mnist.dataset}, {len(pick)} images", mnist.inputs[pick], mnist.labels[pick], robust)

    def build() -> dict[str, EvalSet]:
        return {**sets, ADVERSARIAL: EvalSet("adversarial/test", *store.tensors(_kept(store, "test", keep)))}

    return build


def _kept(store: AdversarialStore, split: str, keep: Callable[[dict], bool] | None) -> list[dict]:
    return [row for row in store.rows(split) if keep is None or keep(row)]
