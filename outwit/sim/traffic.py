"""One visitor's traffic as a real Chromium page sends it: recorded request by request, to replay for many visitors
(outwit/sim/replay.py, bench/crowd.py) and to count what the page sends (tests/browser/test_traffic.py).

The page's scripts are left as they are; `assets/recorder.js`, installed before them, notes each `fetch` (Gradio's
client sends everything so, its event streams included). Each request is then given a kind from the page's own
config: which control's event it is (the quick guess, the editor's guess, the timer's refresh, the save, ...).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from outwit.sim.browser import CHROMIUM, FLAGS, draw
from outwit.ui.routes import GUESS_PATH, PANEL_PATH, TRIED_PATH

RECORDER = Path(__file__).resolve().parent / "assets" / "recorder.js"
# Whose events are which, by the elem_id of the control (or the component type) that triggers them.
KIND_OF_TRIGGER = {("quick-guess", "click"): "guess", ("editor-guess", "click"): "editor guess",
                   ("sketchpad", "change"): "editor guess", ("save", "click"): "save", ("sketchpad", "clear"): "clear",
                   ("timer", "tick"): "refresh", ("panel-refresh", "click"): "refresh"}
KIND_OF_PATH = {"/gradio_api/upload": "upload", "/gradio_api/component_server/": "accept_blobs",
                "/gradio_api/queue/data": "stream", GUESS_PATH: "guess", PANEL_PATH: "panel check", TRIED_PATH: "clear"}


@dataclass
class Entry:
    """One request: what was sent, when (seconds from the start of the recording) and what came back."""

    method: str
    path: str  # with its query
    body: dict | None  # {"text": ...} | {"form": [{name, value} | {name, filename, type, base64}]} | None
    start: float
    end: float | None  # the response read (for a queued event: see `completed`)
    status: int | None
    response: str | None
    kind: str = "other"
    event_id: str | None = None  # a queue join's event
    completed: float | None = None  # a queue join's event: when its result came on the stream
    messages: list = field(default_factory=list)  # an event stream's: [{"at": s, "data": str}]

    @property
    def done(self) -> float | None:
        """When whatever waits on this request could go on."""
        return self.completed if self.event_id else self.end


def triggers(url: str) -> dict[int, str]:
    """fn_index → the kind of the event, from the page's config."""
    config = httpx.get(url + "config", timeout=60).raise_for_status().json()
    names = {c["id"]: c.get("props", {}).get("elem_id") or c.get("type") for c in config["components"]}
    kinds = {}
    for dependency in config["dependencies"]:
        for target, event in dependency.get("targets", []):
            kind = KIND_OF_TRIGGER.get((names.get(target), event))
            if kind:
                kinds[dependency["id"]] = kind
                break
    return kinds


def entries(raw: list[dict], url: str, since_ms: float) -> list[Entry]:
    """The recorder's log → Entries from `since_ms` (page time) on, each with its kind; a queue join's event id and
    the time its result came on the stream."""
    kinds = triggers(url)
    out, completions = [], {}
    for item in raw:
        if item["start"] < since_ms:
            continue
        seconds = lambda ms: None if ms is None else (ms - since_ms) / 1000  # noqa: E731
        path = item["url"].replace(url.rstrip("/"), "", 1)
        entry = Entry(item["method"], path, item["body"], seconds(item["start"]), seconds(item["end"]),
                      item["status"], item["response"],
                      messages=[{"at": seconds(m["at"]), "data": m["data"]} for m in item["messages"] or []])
        bare = path.split("?")[0]
        entry.kind = KIND_OF_PATH.get(bare, "other")
        if bare in ("/gradio_api/queue/join", "/gradio_api/run/predict") or bare.startswith("/gradio_api/run/"):
            fn = json.loads(entry.body["text"]).get("fn_index") if entry.body and "text" in entry.body else None
            entry.kind = kinds.get(fn, "other")
            if bare == "/gradio_api/queue/join" and entry.response:
                entry.event_id = json.loads(entry.response).get("event_id")
        for message in entry.messages:
            data = _json(message["data"])
            if data.get("msg") == "process_completed" and data.get("event_id"):
                completions[data["event_id"]] = message["at"]
        out.append(entry)
    for entry in out:
        if entry.event_id:
            entry.completed = completions.get(entry.event_id, entry.end)
    return out


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def counts(recorded: list[Entry]) -> dict[str, int]:
    """Requests per kind, as a visitor's page sent them."""
    return dict(Counter(entry.kind for entry in recorded))


# ---------------------------------------------------------------------------------------------- a visitor
GUESS_TOP = "#guess [data-testid='label-output-value'], #guess h2"


def brush_ready(page, canvas: str = "sketchpad", timeout: float = 60_000) -> None:
    page.wait_for_function("""(id) => document.querySelector(`#${id} button[aria-label="Brush"]`)
        ?.classList.contains('highlight')""", arg=canvas, timeout=timeout)


def top_guess(page) -> int | None:
    text = page.locator(GUESS_TOP).first.text_content(timeout=30_000) or ""
    return int(text) if text.strip().isdigit() else None


def visit(page, digits: list[int], saves: set[int], look_ms: int = 4000, stroke_pause_ms: int = 300) -> int:
    """A visitor at the page: draws each digit stroke by stroke, looks at the guess for `look_ms` (the panel's timer
    ticks meanwhile), then clears it; the drawings at the indices in `saves` are saved instead, labelled with a
    digit the model did not guess (so the save is taken). Returns the saves taken."""
    taken = 0
    for i, digit in enumerate(digits):
        draw(page, digit, pause_ms=stroke_pause_ms)
        page.wait_for_timeout(look_ms)
        if i in saves:
            guess = top_guess(page)
            label = (digit if guess != digit else digit + 1) % 10
            page.locator(f'#digit [data-testid="{label}-radio-label"]').click()
            page.locator("#save").click()
            page.wait_for_function("() => /Saved|fooled it/.test(document.querySelector('#flag-message')"
                                   "?.textContent || '')", timeout=60_000)
            page.wait_for_function("() => !document.querySelector(\"#guess [data-testid='label-output-value']\")",
                                   timeout=60_000)  # the page clears the canvas and the guess once it is saved
            taken += 1
        else:
            page.locator("#clear").click()
        brush_ready(page)
        page.wait_for_timeout(1000)
    return taken


def record(url: str, digits: list[int], saves: set[int], **visit_options) -> list[Entry]:
    """One visitor's traffic, from the moment the page is ready to draw on until the last drawing is done."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.add_init_script(RECORDER.read_text(encoding="utf-8"))
            page.goto(url)
            page.wait_for_selector("#sketchpad canvas", timeout=60_000)
            brush_ready(page)
            since = page.evaluate("performance.now()")
            visit(page, digits, saves, **visit_options)
            page.wait_for_timeout(1500)  # the last events' answers
            raw = page.evaluate("window.__traffic")
        finally:
            browser.close()
    return entries(raw, url, since)
