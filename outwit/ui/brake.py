"""A brake on guessing the admin password: wrong answers slow down the client that sends them, and everyone together.

After `free` wrong passwords from one client, each further attempt must wait: 1 s after the next failure, then
twice as long after each one more, up to `longest`. Past `overall` wrong passwords from everyone within `window`
seconds (a guesser with many addresses), every client waits `longest`. While a client waits, its attempts are
refused unchecked, the right password too; a right password clears its client's count. Thread-safe.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable


@dataclass
class _Client:
    failures: int = 0
    until: float = 0.0  # when it may try again (the clock's time)


class Brake:
    def __init__(self, *, free: int = 5, longest: float = 300.0, overall: int = 50, window: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        for name, value in (("free", free), ("longest", longest), ("overall", overall), ("window", window)):
            if value <= 0:
                raise ValueError(f"{name}={value!r} must be more than 0")
        self.free, self.longest, self.overall, self.window, self.clock = free, longest, overall, window, clock
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._recent: deque[float] = deque()  # when the latest wrong passwords came, from anyone
        self._everyone_until = 0.0

    def wait(self, client: str) -> tuple[float, bool]:
        """Seconds `client` must still wait before an attempt is checked (0: now), and whether that is the brake on
        everyone."""
        now = self.clock()
        with self._lock:
            everyone = max(0.0, self._everyone_until - now)
            own = max(0.0, self._clients.get(client, _Client()).until - now)
        return max(everyone, own), everyone >= own and everyone > 0

    def failed(self, client: str) -> str | None:
        """Record a wrong password from `client`. Returns what to log when a brake comes on (once per burst)."""
        now = self.clock()
        with self._lock:
            state = self._clients.setdefault(client, _Client())
            state.failures += 1
            beyond = state.failures - self.free
            if beyond > 0:
                state.until = now + min(self.longest, 2.0 ** (beyond - 1))
            self._recent.append(now)
            while self._recent and self._recent[0] < now - self.window:
                self._recent.popleft()
            if len(self._recent) >= self.overall and self._everyone_until <= now:
                self._everyone_until = now + self.longest
                return (f"{len(self._recent)} wrong admin passwords in {self.window:g} s: every admin action waits "
                        f"{self.longest:g} s")
        if state.failures == 1:
            return f"a wrong admin password from {client} (more from there are logged only when its brake comes on)"
        return f"{self.free} wrong admin passwords from {client}: each next one waits longer" if beyond == 1 else None

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


def in_words(seconds: float) -> str:
    """"1 s", "45 s", "3 min": how long to wait, rounded up."""
    whole = max(1, int(-(-seconds // 1)))
    return f"{whole} s" if whole < 120 else f"{-(-whole // 60)} min"
