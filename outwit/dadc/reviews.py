"""Reviews of the collected examples, as Dynabench runs them: validation votes, retractions and reports.

Append-only: one JSON line per event at `<data>/reviews/<shard>/reviews.jsonl`, beside the examples and synced to
the Hub with them; nothing is ever deleted. An example's standing is derived from its events, in order:

- retracted: the person who flagged it took it back, from the session that flagged it;
- validated / rejected, adaptively: decided once one side leads the other by `required` votes (at least one), so
  that `required` agreeing votes decide it and a split vote asks for more; at `limit` votes (correct and incorrect)
  the majority decides, and a tie is rejected (doubt is not trained on). With `required=0` (the default) the flag is
  trusted: an example counts as validated as soon as it is saved, until a first vote says it is not that digit;
- pending: waiting for votes (with `required > 0`, not trained on yet).

Validators are weighed by how often they agree with the outcome (`validator_agreement`): with `trust` > 0, one who
agreed with fewer than that share of at least MIN_JUDGED decided examples is doubted, and a doubted vote counts only
once somebody else votes the same way on that example. A "can't tell" vote is neither side. The log also keeps the
owner's round goal (a "goal" event, no example), so that every replica shows the same one.

Only validated examples are trained on and make up the adversarial test set. A report (obscene, not a digit) puts
an example under review: it leaves the gallery and the validation queue; an admin may then hide it, which takes it
out of training and testing too (standing "hidden", over any other).
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from outwit.dadc.identity import hash_session, is_own, user_name, voter_keys, voter_keys_hashed
from outwit.dadc.store import AdversarialStore
from outwit.dadc.votes import VERDICTS, Standing, decide, validator_key
from outwit.storage import append_jsonl, read_jsonl, utc_now
from outwit.text import quoted

REPORT_REASONS = ("not a digit", "obscene or offensive", "something else")
STANDINGS = ("validated", "pending", "rejected", "retracted", "hidden")
MIN_JUDGED = 5  # decided examples a validator voted on before their agreement can make them doubted
MAX_GOAL = 120  # characters of a round goal


class ReviewError(ValueError):
    """A vote, retraction or report that cannot be taken; the message says why. Nothing was written."""


class Reviews:
    """The review events of every shard under `root`, and the standing of each example they derive.

    `required`: agreeing votes an example needs (0: trust the flag). Appends take the store's lock, which the Hub
    sync holds around its scan, so a push never carries half a line.
    """

    def __init__(self, root: str | Path, store: AdversarialStore, *, required: int = 0, limit: int = 0,
                 trust: float = 0.0, goal: str = ""):
        if required < 0:
            raise ValueError(f"required={required!r} must be at least 0")
        if limit and limit < max(required, 1):
            raise ValueError(f"limit={limit!r} must be 0 (2 × required + 1) or at least required={required}")
        if not 0 <= trust < 1:
            raise ValueError(f"trust={trust!r} must be from 0 (off) to below 1")
        self.root, self.store, self.required, self.trust = Path(root), store, required, trust
        self.limit = limit or 2 * max(required, 1) + 1
        self.default_goal = goal
        self.path = self.root / store.shard / "reviews.jsonl"
        self._lock = threading.Lock()  # guards the derived standings
        self.refresh()

    def refresh(self) -> None:
        """Read every shard's events again (after other replicas' were downloaded). This replica's own are read
        under the lock its appends hold: an event under way is neither missed nor counted twice."""
        others = [e for p in sorted(self.root.glob("*/reviews.jsonl")) if p != self.path for e in read_jsonl(p)]
        with self._lock:
            events = others + (read_jsonl(self.path) if self.path.exists() else [])
            events.sort(key=lambda e: e["created"])
            standings: dict[str, Standing] = defaultdict(Standing)
            self._agreement: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            self._goal: dict | None = None
            for event in events:
                if event["kind"] == "goal":
                    self._goal = event
                else:
                    self._apply(standings[event["example"]], event)
            counted = {example for example in standings if self.store.row(example) is not None}
            self._standings, self._events, self._counted = standings, events, counted
            self._tally = Counter(self._status(standings[example]) for example in counted)
            self._validated_ever = sum(1 for s in standings.values() if s.decided == "validated")

    # ------------------------------------------------------------------ reading
    def standing(self, example_id: str) -> Standing:
        with self._lock:
            return self._standings.get(example_id) or Standing()

    def status(self, row: dict) -> str:
        """One of STANDINGS."""
        return self._status(self.standing(row["id"]))

    def _status(self, s: Standing) -> str:
        if s.removed:
            return "hidden"
        if s.retracted:
            return "retracted"
        if s.decided:
            return s.decided
        return "validated" if self.required == 0 else "pending"

    def usable(self, row: dict) -> bool:
        """Whether an example is trained on (train split) or tested on (test split)."""
        return self.status(row) == "validated"

    def shown(self, row: dict) -> bool:
        """Whether an example may be shown to other people (gallery, validation): not retracted, not reported."""
        return not self.standing(row["id"]).hidden

    def events(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    @property
    def any_events(self) -> bool:
        """Whether anyone has voted, retracted, reported or hidden anything yet."""
        with self._lock:
            return bool(self._events)

    def counts(self) -> dict[str, int]:
        """Examples per standing, over the whole store. Kept as the events come (every open page asks for it every
        few seconds): the examples with events by their standing, the others at the standing of an example no one
        has reviewed."""
        total = self.store.counts().total
        with self._lock:
            tally = {standing: self._tally[standing] for standing in STANDINGS}
            unreviewed = total - len(self._counted)
        tally[self._status(Standing())] += unreviewed
        return tally

    def validated_ever(self) -> int:
        """Examples that reached `required` agreeing votes, retracted since or not: it never decreases, so the
        retrain trigger can count it when votes are required."""
        with self._lock:
            return self._validated_ever

    def queue(self, session: str | None, user: str | None = None) -> list[dict]:
        """The examples this visitor may validate, the closest to a decision first, then the oldest: undecided,
        shown, not their own, not voted on by them."""
        me = voter_keys(session, user)
        waiting = []
        for row in self.store.rows():
            s = self.standing(row["id"])
            if not s.hidden and s.decided is None and not is_own(row, me) and not me & s.voters:
                waiting.append((-(s.correct + s.incorrect + s.unclear), row))
        return [row for _, row in sorted(waiting, key=lambda item: item[0])]  # stable: the oldest first on ties

    # ------------------------------------------------------------------ writing
    def vote(self, example_id: str, verdict: str, *, session: str | None, user: str | None = None,
             digit: int | None = None) -> Standing:
        """One person's answer to "is this a <label>?"; `digit` (required when incorrect) is what it really is."""
        row = self._example(example_id)
        user = user_name(user)  # a display name is checked as when it is saved with an example
        if verdict not in VERDICTS:
            raise ReviewError(f"verdict={quoted(verdict)} must be one of {', '.join(VERDICTS)}")
        me = voter_keys(session, user)
        if not me:
            raise ReviewError("A vote needs a session: open the page to vote")
        if is_own(row, me):
            raise ReviewError("You flagged this example: somebody else has to validate it")
        if verdict == "incorrect":
            if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
                raise ReviewError(f"Say which digit it really is (0–9), not {quoted(digit)}")
            if digit == row["label"]:
                raise ReviewError(f"It is labelled {digit}: pick another digit, or answer 'correct'")
        else:
            digit = None
        standing = self.standing(example_id)
        if me & standing.voters:
            raise ReviewError("You have already voted on this example")
        if standing.retracted or standing.decided:
            raise ReviewError(f"This example is already {standing.decided or 'retracted'}: no more votes needed")
        return self._append(row, "vote", session, user, verdict=verdict, digit=digit)

    def set_goal(self, goal: str) -> dict:
        """The owner's goal for the round ("fool it with 4s"), shown on every replica's page; "" clears it (the
        ROUND_GOAL setting shows again)."""
        goal = " ".join(str(goal or "").split())
        if len(goal) > MAX_GOAL or not goal.isprintable():
            raise ReviewError(f"A goal is at most {MAX_GOAL} printable characters, not {quoted(goal[:40])}…")
        event = self._event("", "goal", None, "admin", goal=goal)
        with self._lock:
            self._log(event)
            self._goal = event
        return event

    def goal(self) -> str:
        """The round goal shown on the page: the owner's latest, else ROUND_GOAL ("" for none)."""
        with self._lock:
            return (self._goal["goal"] if self._goal is not None else "") or self.default_goal

    def validator_agreement(self) -> dict[str, tuple[int, int]]:
        """Per validator ("user:<name>" or "session:<hash>"): (votes that agreed with the outcome, votes on decided
        examples); "can't tell" votes are left out."""
        with self._lock:
            return {key: (agreed, decided) for key, (agreed, decided) in self._agreement.items()}

    def doubted(self, key: str) -> bool:
        """Whether a validator's votes count only once someone agrees (see the module's words)."""
        with self._lock:
            return self._doubted(key)

    def _doubted(self, key: str) -> bool:
        agreed, decided = self._agreement.get(key, (0, 0))
        return self.trust > 0 and decided >= MIN_JUDGED and agreed < self.trust * decided

    def retract(self, example_id: str, *, session: str | None) -> Standing:
        """The creator takes an example back, from the session that flagged it. It stays in the log, marked."""
        row = self._example(example_id)
        if not session or row.get("session") != hash_session(session):
            raise ReviewError("Only the person who saved an example can retract it, from the same session")
        if self.standing(example_id).retracted:
            raise ReviewError("This example is already retracted")
        return self._append(row, "retract", session, None)

    def report(self, example_id: str, reason: str, *, session: str | None, user: str | None = None) -> Standing:
        """Anyone can report an example for review."""
        row = self._example(example_id)
        user = user_name(user)
        if reason not in REPORT_REASONS:
            raise ReviewError(f"reason={quoted(reason)} must be one of: {', '.join(REPORT_REASONS)}")
        return self._append(row, "report", session, user, reason=reason)

    def hide(self, example_id: str, *, reason: str = "") -> Standing:
        """An admin's call (the caller checked the password): the example is hidden from everyone and neither
        trained nor tested on. It stays in the store and the log, marked."""
        row = self._example(example_id)
        if self.standing(example_id).removed:
            raise ReviewError("This example is already hidden")
        return self._append(row, "hide", None, "admin", reason=str(reason or "")[:200])

    def _example(self, example_id: str) -> dict:
        row = self.store.row(str(example_id)) if example_id else None
        if row is None:
            raise ReviewError(f"There is no example {quoted(example_id)}")
        return row

    def _event(self, example_id: str, kind: str, session: str | None, user: str | None, **fields) -> dict:
        return {"id": uuid.uuid4().hex, "example": example_id, "kind": kind, **fields, "voter": hash_session(session),
                "user": user or "", "created": utc_now("microseconds"), "shard": self.store.shard}

    def _log(self, event: dict) -> None:
        """Append one event to this replica's log and to the events in memory; the caller holds `self._lock`, and
        the store's lock (which the Hub sync holds around its scan) is taken inside it."""
        with self.store.lock:
            append_jsonl(self.path, event)
        self._events.append(event)

    def _append(self, row: dict, kind: str, session: str | None, user: str | None, **fields) -> Standing:
        event = self._event(row["id"], kind, session, user, **fields)
        with self._lock:
            self._log(event)
            standing = self._standings[row["id"]]
            before, validated_before = self._status(standing), standing.decided == "validated"
            self._apply(standing, event)
            if row["id"] in self._counted:
                self._tally[before] -= 1
            self._counted.add(row["id"])
            self._tally[self._status(standing)] += 1
            self._validated_ever += standing.decided == "validated" and not validated_before
            return standing

    def _apply(self, s: Standing, event: dict) -> None:
        kind = event["kind"]
        if kind == "retract":
            s.retracted = True
        elif kind == "report":
            s.reports += 1
        elif kind == "hide":
            s.removed = True
        elif kind == "vote":
            s.voters |= voter_keys_hashed(event["voter"], event.get("user"))
            setattr(s, event["verdict"], getattr(s, event["verdict"]) + 1)
            if event.get("digit") is not None:
                s.digits.append(event["digit"])
            validator = validator_key(event)
            s.votes.append((validator, event["verdict"], self._doubted(validator)))
            if s.decided is None:
                s.decided = decide(s, self.required, self.limit)
                for key, verdict, _ in s.votes if s.decided else ():
                    if verdict != "unclear":
                        self._agreement[key][0] += (verdict == "correct") == (s.decided == "validated")
                        self._agreement[key][1] += 1
