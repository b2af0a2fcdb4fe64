"""Who runs rounds when several processes could: a lease in the model repo, held by one round runner at a time.

The lease is a file, `runner/lease.json`, in the model repo that promoted rounds are published to. A runner takes it
(or renews it) with a commit made on the head it read (`create_commit(..., parent_commit=...)`): when two try at
once, the Hub takes the first commit and refuses the second (412), so two can never both hold it. The holder's
every commit to the model repo, the publishing of a round included, is made on its own previous commit: once another
runner has taken an expired lease, the old holder's next commit is refused, and its round is never published.
A holder renews the lease every third of its term; a holder that stopped lets it run out.

Why the model repo and not the dataset repo: only round runners commit to it, so a commit made on the head it read
fails only when another runner moved it; every replica pushes examples to the dataset repo every tick.

The lease also says which round the model repo serves (`round`, `created`) and the round trigger's count when that
round started (`counted`): followers read those to adopt the round and count towards the next one.
"""
from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

log = logging.getLogger(__name__)
LEASE_PATH = "runner/lease.json"


class LeaseLost(RuntimeError):
    """Another runner holds the lease now: what this one meant to commit was not committed."""


@dataclass(frozen=True)
class LeaseState:
    holder: str = ""
    until: float = 0.0  # seconds since the epoch
    round: int | None = None  # the round the model repo serves, its checkpoint's timestamp
    created: str | None = None
    counted: int | None = None  # the round trigger's count when that round started

    def to_bytes(self) -> bytes:
        stamp = datetime.fromtimestamp(self.until, timezone.utc).isoformat(timespec="seconds")
        return (json.dumps({**asdict(self), "until_utc": stamp}, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> "LeaseState":
        raw = json.loads(payload)
        return cls(holder=str(raw.get("holder", "")), until=float(raw.get("until", 0)), round=raw.get("round"),
                   created=raw.get("created"), counted=raw.get("counted"))


def read_lease(api: HfApi, repo_id: str, revision: str | None) -> LeaseState | None:
    """The lease as of `revision`; None when the repo or the file does not exist yet."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = api.hf_hub_download(repo_id, LEASE_PATH, revision=revision, local_dir=folder)
            return LeaseState.from_bytes(Path(path).read_bytes())
    except (RepositoryNotFoundError, EntryNotFoundError):
        return None


def head_of(api: HfApi, repo_id: str) -> str | None:
    """The model repo's head commit; None when the repo does not exist yet."""
    try:
        return api.repo_info(repo_id, repo_type="model").sha
    except RepositoryNotFoundError:
        return None


class RunnerLease:
    """This process's side of the lease. `refresh()` (from one thread, each tick) takes a free or expired lease,
    or renews this one's when a third of its term is left; `commit()` makes a commit only while it is held."""

    def __init__(self, *, api: HfApi, repo_id: str, holder: str, term: float, clock: Callable[[], float] = time.time):
        if term <= 0:
            raise ValueError(f"term={term!r} must be more than 0 seconds")
        self.api, self.repo_id, self.holder, self.term, self.clock = api, repo_id, holder, term, clock
        self._lock = threading.Lock()  # one commit at a time: each is made on the one before
        self._state: LeaseState | None = None  # as this holder last committed it; None: not held
        self._head: str | None = None  # this holder's last commit
        self._read: tuple[str | None, LeaseState | None] | None = None  # (head, lease) as last read, not held

    @property
    def held(self) -> bool:
        with self._lock:
            return self._state is not None and self.clock() < self._state.until

    def refresh(self) -> bool:
        """Take the lease if it is free or expired, renew it if held and due; returns whether it is held. (This
        holder's own, run out while the Hub was away, is renewed on its last commit, unless another took it.)"""
        with self._lock:
            now = self.clock()
            if self._state is not None and now < self._state.until - self.term * 2 / 3:
                return True  # held, not yet due for renewal
            if self._state is not None:
                return self._commit_locked([], "Renew the round runner's lease", self._renewed(self._state))
            head = head_of(self.api, self.repo_id)
            if head is None:  # the first runner ever: the repo is made (an API call only then)
                self.api.create_repo(self.repo_id, repo_type="model", exist_ok=True)
                head = head_of(self.api, self.repo_id)
            if self._read is None or self._read[0] != head:  # the file changes only with the head
                self._read = (head, read_lease(self.api, self.repo_id, head))
            current = self._read[1]
            if current is not None and current.holder != self.holder and now < current.until:
                return False  # another runner holds it
            self._head = head
            return self._commit_locked([], f"{self.holder} runs the rounds", self._renewed(current or LeaseState()))

    def commit(self, operations: list[CommitOperationAdd], message: str, **state) -> str:
        """Commit `operations` with the lease renewed (and `state`: round, created, counted) on this holder's last
        commit; returns the commit's id. Raises LeaseLost when the lease is no longer this process's (nothing is
        committed). A lease that ran out while nobody took it (the Hub was away) is still this holder's: the
        commit on its last one then goes through."""
        with self._lock:
            if self._state is None:
                raise LeaseLost(f"{self.holder} does not hold the round runner's lease")
            if not self._commit_locked(operations, message, self._renewed(replace(self._state, **state))):
                raise LeaseLost(f"another round runner took the lease from {self.holder}")
            return self._head

    def release(self) -> None:
        """Let the lease go now (a clean stop): another runner need not wait for it to run out."""
        with self._lock:
            if self._state is not None and self.clock() < self._state.until:
                try:
                    self._commit_locked([], f"{self.holder} stops running rounds", replace(self._state, until=0.0))
                except Exception as err:  # noqa: BLE001 - it then runs out by itself
                    log.warning("could not release the round runner's lease: %s", err)
            self._state = None

    def _renewed(self, state: LeaseState) -> LeaseState:
        return replace(state, holder=self.holder, until=self.clock() + self.term)

    def _commit_locked(self, operations: list, message: str, state: LeaseState) -> bool:
        """Commit `operations` and the lease as `state` on this holder's last commit; False: the repo moved."""
        lease = CommitOperationAdd(path_in_repo=LEASE_PATH, path_or_fileobj=state.to_bytes())
        try:
            info = self.api.create_commit(repo_id=self.repo_id, repo_type="model", operations=[*operations, lease],
                                          commit_message=message, parent_commit=self._head)
        except HfHubHTTPError as err:
            if err.response is None or err.response.status_code != 412:
                raise  # unreachable, 5xx, 409 (a commit under way): the lease stands as it was; tried again later
            log.warning("%s: another round runner committed to %s; the lease is not this runner's", self.holder,
                        self.repo_id)
            self._state = None
            return False
        self._head = info.oid
        self._state = state if state.until > self.clock() else None
        return True
