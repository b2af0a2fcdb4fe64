"""One layout for what a model scored: accuracy per named evaluation set, read the same way everywhere.

Checkpoints, the round history, `/status`, the page and the model card all hold a `Metrics`. Two layouts written
before this one are still read (checkpoints and round histories already on disks and on the Hub):
pretraining's `{"mnist_test": {dataset, size, top1, top5}}` and the rounds' flat `mnist_top1`, `mnist_dataset`,
`adversarial_top1`, `adversarial_size`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

MNIST = "mnist"  # the MNIST test split (its data set named in `Accuracy.dataset`)
ADVERSARIAL = "adversarial"  # the held-out adversarial examples
ROBUST = "robust"  # a fixed subset of the MNIST test split under PGD (the attack named in `Accuracy.dataset`)
SUITE = "suite"  # the standard attack suite's worst case: what survives FGSM, PGD, APGD-CE and AutoAttack alike
_LEGACY_SETS = {"mnist_test": MNIST}


@dataclass(frozen=True)
class Accuracy:
    dataset: str  # what it was measured on, e.g. "mnist-sample-5k/test" or "adversarial/test"
    size: int | None  # examples measured; None where an older record did not say
    top1: float | None  # None: nothing to measure on yet
    top5: float | None = None

    @classmethod
    def from_json(cls, raw: Mapping) -> "Accuracy":
        return cls(dataset=str(raw.get("dataset", "")), size=raw.get("size"), top1=raw.get("top1"),
                   top5=raw.get("top5"))


@dataclass(frozen=True)
class Metrics:
    """Accuracy on each evaluation set, by name (`MNIST`, `ADVERSARIAL`, and what later rounds add)."""

    sets: Mapping[str, Accuracy] = field(default_factory=dict)

    def get(self, name: str) -> Accuracy | None:
        return self.sets.get(name)

    def top1(self, name: str) -> float | None:
        accuracy = self.sets.get(name)
        return accuracy.top1 if accuracy else None

    def to_json(self) -> dict:
        return {name: asdict(accuracy) for name, accuracy in sorted(self.sets.items())}

    @classmethod
    def from_json(cls, raw: Mapping | None) -> "Metrics":
        """This layout, or either older one."""
        raw = raw or {}
        if any(key.endswith("_top1") for key in raw):
            return cls._from_flat(raw)
        return cls({_LEGACY_SETS.get(name, name): Accuracy.from_json(value) for name, value in raw.items()
                    if isinstance(value, Mapping)})

    @classmethod
    def _from_flat(cls, raw: Mapping) -> "Metrics":
        """The rounds' first layout: `<set>_top1` with `mnist_dataset` and `adversarial_size` beside it."""
        sets = {}
        if MNIST + "_top1" in raw:
            sets[MNIST] = Accuracy(dataset=raw.get("mnist_dataset", ""), size=raw.get("mnist_size"),
                                   top1=raw["mnist_top1"])
        if ADVERSARIAL + "_top1" in raw:
            sets[ADVERSARIAL] = Accuracy(dataset="adversarial/test", size=raw.get("adversarial_size"),
                                         top1=raw["adversarial_top1"])
        return cls(sets)


def percent(share: float | None) -> str:
    """A share as the page, the tables and the cards show it: "96.0%", or "–" when there is none."""
    return "–" if share is None else f"{100 * share:.1f}%"
