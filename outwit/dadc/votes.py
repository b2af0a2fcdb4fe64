"""One example's votes and how they decide it: adaptive validation (see `outwit.dadc.reviews` for the rules)."""
from __future__ import annotations

from dataclasses import dataclass, field

VERDICTS = ("correct", "incorrect", "unclear")


@dataclass
class Standing:
    """What the events say of one example."""

    correct: int = 0
    incorrect: int = 0
    unclear: int = 0
    decided: str | None = None  # "validated" or "rejected" once one side reached the threshold
    retracted: bool = False
    removed: bool = False  # an admin hid it
    reports: int = 0
    voters: set[str] = field(default_factory=set)  # who voted: session hashes and display names
    digits: list[int] = field(default_factory=list)  # the right digit, as each "incorrect" voter gave it
    votes: list[tuple[str, str, bool]] = field(default_factory=list)  # (validator, verdict, doubted then)

    @property
    def hidden(self) -> bool:
        """Not shown to other people (gallery, validation): retracted, reported or hidden by an admin."""
        return self.retracted or self.removed or self.reports > 0


def decide(s: Standing, required: int, limit: int) -> str | None:
    """"validated", "rejected" or None (more votes wanted): one side leads by `required` (at least 1) counted votes,
    or `limit` votes (correct and incorrect) were cast and the majority decides (a tie: rejected). A doubted
    validator's vote is counted only when someone else voted the same way."""
    counted = {}
    for side in ("correct", "incorrect"):
        sided = [doubted for _, verdict, doubted in s.votes if verdict == side]
        counted[side] = len(sided) if len(sided) >= 2 or not all(sided) else 0  # a lone doubted vote waits
    lead = counted["correct"] - counted["incorrect"]
    if abs(lead) >= max(required, 1) or s.correct + s.incorrect >= limit:
        return "validated" if lead > 0 else "rejected"
    return None


def validator_key(event: dict) -> str:
    """Who cast a vote, as the validators' table names them: their name when they gave one, else their session."""
    name = " ".join((event.get("user") or "").split())
    return f"user:{name.casefold()}" if name else f"session:{event.get('voter') or ''}"
