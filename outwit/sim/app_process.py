"""`python app.py` as its own process on a free loopback port: what the crowd bench loads and the crash tests kill;
and how a client uploads images to an app, as the page does."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]  # where app.py is


def alive(pid: int) -> bool:
    """A process that has not ended (a zombie waiting for its parent to reap it has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uploaded(url: str, *pngs: bytes, timeout: float = 120) -> list[dict]:
    """PNGs uploaded to the app at `url`, as the page uploads them: the references its events take, one per PNG."""
    files = [("files", (f"part-{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
    paths = httpx.post(url + "gradio_api/upload", files=files, timeout=timeout).raise_for_status().json()
    return [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in paths]


class AppProcess:
    """Start with `start()`, which returns once the page answers; `kill()` is SIGKILL: no cleanup runs."""

    def __init__(self, data_dir: Path, log: Path, repo: Path = REPO, **env: str):
        self.repo = repo  # another checkout's app.py (bench/crowd.py's --baseline)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        self.env = {**os.environ, "DATA_DIR": str(data_dir), "GRADIO_SERVER_PORT": str(self.port),
                    "MNIST_DATA": "sample", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "AppProcess":
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "app.py"], cwd=self.repo, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "gradio_api/info", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # fine enough to time a start by (bench/startup.py)
        self.kill()
        raise RuntimeError(f"app.py did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def children(self) -> list[int]:
        """The app's own child processes (the round process), by pid; none once it has ended."""
        if not self.process or self.process.poll() is not None:
            return []
        found = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                found += [int(pid) for pid in (task / "children").read_text().split()]
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
        return found

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, as a stopping Space does: the app runs its `finally` (final pushes) and exits; SIGKILL after
        `timeout` s. Returns the exit code (negative: the signal that ended it), None if it never started."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None

    def __enter__(self) -> "AppProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
