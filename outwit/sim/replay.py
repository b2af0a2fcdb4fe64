"""A recorded visitor's traffic (outwit/sim/traffic.py) replayed for many visitors at once, from one asyncio process.

Each visitor has its own session and sends the recorded requests again, in order and at their recorded times from
its own start, each only once the requests it followed in the recording have been answered (a save's uploads before
its event; an event chained to another after that one's result). What the recording drew and uploaded is sent as
recorded; its random ids (the session, the editor's drawing ids, upload ids) are made new per visitor and loop, and
the paths the server gave an upload are put in place of the recorded ones. A visitor goes round the recording again
and again. The page's event streams are kept as the page keeps them: one per session, open while events are due.
"""
from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import string
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx

from outwit.sim.traffic import Entry

TIMEOUT = 60.0  # seconds a request or an event's result is waited for before it counts as an error
# A kept-alive connection the server closed as a request went out (its idle timeout, 5 s, is the panel check's
# period): a browser sends a GET again on a new connection, and so does a visitor here (counted apart).
CLOSED = (httpx.ReadError, httpx.RemoteProtocolError)
REFUSAL = "already reads this as"  # a save refused because a round learnt the drawing (collect.NotFooled)


def _fresh(token: str, rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in token)


def tokens(recording: list[Entry]) -> tuple[str, list[str]]:
    """The recorded session hash, and the other random ids to make new each loop (drawing ids, upload ids)."""
    session, others = None, set()
    for entry in recording:
        if entry.body and "text" in entry.body:
            session = session or json.loads(entry.body["text"]).get("session_hash")
        for form in (entry.body or {}).get("form", []):
            if form["name"] == "data" and "value" in form:
                found = re.search(r'"id"\s*:\s*"([a-z0-9]+)"', form["value"])
                if found:
                    others.add(found.group(1))
        found = re.search(r"upload_id=([a-z0-9]+)", entry.path)
        if found:
            others.add(found.group(1))
    return session or "", sorted(others)


def dependencies(recording: list[Entry]) -> list[list[int]]:
    """For each request, the earlier ones it followed: those done (answered, or their event's result in) before it
    was sent, in the recording."""
    waits = []
    for i, entry in enumerate(recording):
        waits.append([j for j in range(i) if recording[j].kind != "stream" and recording[j].done is not None
                      and recording[j].done <= entry.start])
    return waits


@dataclass
class Tally:
    """What the replay saw, each latency with the time it was taken (to keep a measuring window)."""

    latencies: dict = field(default_factory=lambda: defaultdict(list))  # kind → [(at, ms)]
    errors: Counter = field(default_factory=Counter)
    refused: int = 0
    acknowledged: list = field(default_factory=list)  # saved example ids
    sent: Counter = field(default_factory=Counter)  # kind → requests
    retried: Counter = field(default_factory=Counter)  # kind → GETs sent again after the connection closed

    def took(self, kind: str, started: float) -> None:
        self.latencies[kind].append((started, 1000 * (time.perf_counter() - started)))


class Visitor:
    def __init__(self, client: httpx.AsyncClient, recording: list[Entry], tally: Tally, seed: int):
        self.client, self.recording, self.tally = client, recording, tally
        self.rng, self.seed = random.Random(seed), seed
        self.session, self.ids = tokens(recording)
        self.my_session = _fresh(self.session, self.rng)
        self.waits = dependencies(recording)
        self.files = {}  # (entry, part) → bytes
        self.due: dict[str, asyncio.Future] = {}  # event id → its result message
        self.stream: asyncio.Task | None = None

    async def run(self) -> None:
        length = max(entry.done or entry.start for entry in self.recording) + 1.0
        self.loop = -1
        while True:
            self.loop += 1
            loop_start = time.perf_counter()
            swap = {self.session: self.my_session, **{token: _fresh(token, self.rng) for token in self.ids}}
            done = [asyncio.Event() for _ in self.recording]
            tasks = [asyncio.create_task(self.send(i, loop_start, swap, done)) for i in range(len(self.recording))]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
            await asyncio.sleep(max(0.0, loop_start + length - time.perf_counter()))

    async def send(self, i: int, loop_start: float, swap: dict, done: list[asyncio.Event]) -> None:
        entry = self.recording[i]
        try:
            if entry.kind == "stream":
                return
            await asyncio.sleep(max(0.0, loop_start + entry.start - time.perf_counter()))
            for j in self.waits[i]:
                await done[j].wait()
            await self.request(entry, i, swap)
        finally:
            done[i].set()

    def _relabelled(self, text: str) -> str:
        """A save's digit moved on by the visitor's number and loop: every visitor sends the same recorded drawings,
        and once a round has learnt one under its label the same save is refused ("the model already reads this as
        ..."), where a real crowd draws new things. (A digit that is the model's guess is refused, and counted so.)"""
        body = json.loads(text)
        shift = (self.seed + self.loop) % 10
        if shift and isinstance(body.get("data"), list) and len(body["data"]) > 1:
            body["data"][1] = (int(body["data"][1]) + shift) % 10
        return json.dumps(body)

    def _text(self, text: str, swap: dict) -> str:
        for old, new in swap.items():
            if old:
                text = text.replace(old, new)
        return text

    async def request(self, entry: Entry, i: int, swap: dict) -> None:
        kind, started = entry.kind, time.perf_counter()
        self.tally.sent[kind] += 1
        options = {}
        if entry.body and "text" in entry.body:
            text = self._text(entry.body["text"], swap)
            options["content"] = (self._relabelled(text) if kind == "save" else text).encode()
            options["headers"] = {"content-type": "application/json"}
        elif entry.body and "form" in entry.body:
            data, files = {}, []
            for n, part in enumerate(entry.body["form"]):
                if "base64" in part:
                    if (i, n) not in self.files:
                        self.files[(i, n)] = base64.b64decode(part["base64"])
                    files.append((part["name"], (part["filename"], self.files[(i, n)], part["type"] or "image/png")))
                else:
                    data[part["name"]] = self._text(part["value"], swap)
            options.update(data=data, files=files)
        for attempt in (1, 2):
            try:
                response = await self.client.request(entry.method, self._text(entry.path, swap), timeout=TIMEOUT,
                                                     **options)
                break
            except httpx.HTTPError as err:
                if entry.method == "GET" and attempt == 1 and isinstance(err, CLOSED):
                    self.tally.retried[kind] += 1
                    continue
                self.tally.errors[f"{kind}: {type(err).__name__}"] += 1
                return
        if response.status_code >= 400:
            self.tally.errors[f"{kind}: HTTP {response.status_code}"] += 1
            return
        if kind == "upload" and entry.response:
            for old, new in zip(json.loads(entry.response), response.json()):
                swap[old] = new
        if "/queue/join" not in entry.path:
            self.tally.took(kind, started)
            return
        await self.result(kind, response.json()["event_id"], started)

    async def result(self, kind: str, event_id: str, started: float) -> None:
        """Wait for a queued event's result on the session's stream."""
        future = self.due[event_id] = asyncio.get_running_loop().create_future()
        if self.stream is None or self.stream.done():
            self.stream = asyncio.create_task(self.listen())
        try:
            message = await asyncio.wait_for(future, TIMEOUT)
        except asyncio.TimeoutError:
            self.tally.errors[f"{kind}: no result in {TIMEOUT:.0f} s"] += 1
            return
        finally:
            self.due.pop(event_id, None)
        if message.get("success"):
            self.tally.took(kind, started)
            if kind == "save":
                saved = (message.get("output") or {}).get("data") or []
                if saved and isinstance(saved[-1], str) and saved[-1]:
                    self.tally.acknowledged.append(saved[-1])
        elif kind == "save" and REFUSAL in str(message.get("output")):
            self.tally.refused += 1
        else:
            self.tally.errors[f"{kind}: {str((message.get('output') or {}).get('error'))[:60]}"] += 1

    async def listen(self) -> None:
        """The session's event stream, open while any of its events is due."""
        while self.due:
            try:
                async with self.client.stream("GET", f"/gradio_api/queue/data?session_hash={self.my_session}",
                                              timeout=TIMEOUT) as response:
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        message = json.loads(line[5:])
                        future = self.due.get(message.get("event_id"))
                        if message.get("msg") == "process_completed" and future and not future.done():
                            future.set_result(message)
                        if message.get("msg") == "close_stream":
                            break
            except httpx.HTTPError as err:
                self.tally.errors[f"stream: {type(err).__name__}"] += 1
                await asyncio.sleep(0.5)
