"""How far validators agree: per round, Fleiss' kappa over the examples two or more people voted on; per validator,
how often their vote was the outcome. Pure functions of the review log, for the Rounds tab and the Admin tab.

Fleiss' kappa for items rated by differing numbers of raters (Fleiss 1971, with each item's agreement over its own
n_i raters): P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)), P̄ their mean, p_j = Σ_i n_ij / Σ_i n_i, P_e = Σ_j p_j²,
κ = (P̄ − P_e) / (1 − P_e). 1: full agreement; 0: what chance would give; below 0: worse. Categories: correct,
incorrect (a digit named does not split it further) and can't tell.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from outwit.dadc.reviews import Reviews
from outwit.dadc.store import AdversarialStore
from outwit.dadc.votes import VERDICTS, validator_key

LOW_AGREEMENT = 0.6  # the Admin tab lists validators who agreed with the outcome less often than this


def fleiss_kappa(tallies: list[list[int]]) -> float | None:
    """κ over items, each a list of how many raters put it in each category; items with fewer than two raters are
    left out. None when no item has two, or when every vote fell in one category (chance agreement is then 1)."""
    items = [t for t in tallies if sum(t) >= 2]
    if not items:
        return None
    total = sum(sum(t) for t in items)
    shares = [sum(t[j] for t in items) / total for j in range(len(items[0]))]
    chance = sum(p * p for p in shares)
    if chance >= 1:
        return None
    observed = sum((sum(c * c for c in t) - sum(t)) / (sum(t) * (sum(t) - 1)) for t in items) / len(items)
    return (observed - chance) / (1 - chance)


@dataclass(frozen=True)
class RoundAgreement:
    round: int
    kappa: float | None
    examples: int  # examples with two or more votes


def agreement_per_round(store: AdversarialStore, reviews: Reviews) -> dict[int, RoundAgreement]:
    """Fleiss' kappa per round of the model the examples fooled."""
    tallies: dict[str, list[int]] = defaultdict(lambda: [0] * len(VERDICTS))
    for event in reviews.events():
        if event["kind"] == "vote":
            tallies[event["example"]][VERDICTS.index(event["verdict"])] += 1
    per_round: dict[int, list[list[int]]] = defaultdict(list)
    for example, tally in tallies.items():
        row = store.row(example)
        if row is not None:
            per_round[row["round"]].append(tally)
    return {r: RoundAgreement(r, fleiss_kappa(t), sum(1 for x in t if sum(x) >= 2)) for r, t in per_round.items()}


@dataclass(frozen=True)
class Validator:
    name: str  # their display or Hub name, or "anonymous (<session hash>)"
    key: str
    votes: int  # every vote they cast
    decided: int  # of those, on examples now decided (not counting "can't tell")
    agreed: int
    doubted: bool  # their votes count only once someone agrees (VALIDATOR_TRUST)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.decided if self.decided else None


def validators(reviews: Reviews) -> list[Validator]:
    """Every validator, the least agreeing (of those with decided votes) first."""
    votes: dict[str, int] = defaultdict(int)
    names: dict[str, str] = {}
    for event in reviews.events():
        if event["kind"] == "vote":
            key = validator_key(event)
            votes[key] += 1
            names[key] = event.get("user") or f"anonymous ({(event.get('voter') or '?')[:8]})"
    agreement = reviews.validator_agreement()
    found = [Validator(names[k], k, n, agreement.get(k, (0, 0))[1], agreement.get(k, (0, 0))[0], reviews.doubted(k))
             for k, n in votes.items()]
    return sorted(found, key=lambda v: (v.agreement is None, v.agreement or 0, -v.decided, v.name.casefold()))


def low_agreement(found: list[Validator], below: float = LOW_AGREEMENT, at_least: int = 3) -> list[Validator]:
    """Validators with at least `at_least` decided votes who agreed with the outcome less often than `below`."""
    return [v for v in found if v.decided >= at_least and v.agreement is not None and v.agreement < below]
