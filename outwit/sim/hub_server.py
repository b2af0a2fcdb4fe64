"""A server on 127.0.0.1 that speaks the parts of the Hugging Face Hub's HTTP API that huggingface_hub uses here:
repo creation, README validation, preupload, the NDJSON commit, repo info (at a revision or the head), tree listing
and file download (HEAD and GET), file and folder deletion, and `whoami` (the token's account is `account`, which
Gradio's sign-in mock reads off a Space); a commit made on a parent (`parent_commit`) is refused
with 412 when the head has moved, as the Hub refuses it.

Every file is stored in memory per repo; each commit is logged with the paths it added, so tests can check that
nothing was sent twice. `fail_next(n, status)` makes the next n requests answer with an error (503, 429, ...);
`slow_commits(seconds)` makes each commit take that long, and `commit_started[kind]` is set when one arrives;
`stop()`/`start()` take it off the network and back on the same port. It records every Authorization header and
every file downloaded (`downloads`) and request made (`requests`: user agent, method, path).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

from huggingface_hub import HfApi

API = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit|revision|tree)"
                 r"/(?P<rev>[^/]+)(?P<path>/.*)?$")
INFO = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)$")  # repo info at its head
RESOLVE = re.compile(r"^/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


TOKEN = "hf_outwitTestToken0123456789"  # what the tests' app is configured with: it must never show
REPO = "outwit/adversarial"  # the dataset repo the tests sync to


def api_for(server: "FakeHub") -> HfApi:
    return HfApi(endpoint=server.endpoint, token=TOKEN)


class Repo:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.commits: list[dict] = []  # {"oid", "message", "added": [paths], "deleted": [paths]}

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class FakeHub:
    def __init__(self, port: int = 0):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.auth_headers: list[str] = []
        self.downloads: list[str] = []  # the repo paths of every file downloaded (GET), in order
        self.requests: list[tuple[str, str, str]] = []  # (User-Agent, method, path) of every request
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self.down = False
        self.commit_delay = 0.0
        self.account = "ada-lovelace"  # the token's user, as /api/whoami-v2 names it
        self.commit_started = {"models": threading.Event(), "datasets": threading.Event()}

    # ------------------------------------------------------------------ control
    def start(self) -> "FakeHub":
        self.down = False
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Off the network: new connections are refused, and open keep-alive ones are dropped unanswered."""
        self.down = True
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def slow_commits(self, seconds: float) -> None:
        """Each commit from now on takes `seconds` before it lands: a slow Hub, to stop an app mid-push."""
        self.commit_delay = seconds

    def repo(self, repo_id: str, kind: str = "datasets") -> Repo:
        return self.repos[(kind, repo_id)]

    # ------------------------------------------------------------------ HTTP
    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None,
                       head: bool = False):
                payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if not head and self.command != "HEAD":
                    self.wfile.write(payload)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _injected_failure(self) -> bool:
                hub.requests.append((self.headers.get("User-Agent", ""), self.command, urlparse(self.path).path))
                if hub.down:  # a connection opened before the server went down
                    self.close_connection = True
                    self.connection.close()
                    return True
                if auth := self.headers.get("Authorization"):
                    hub.auth_headers.append(auth)
                with hub._lock:
                    status = hub._failures.pop(0) if hub._failures else None
                if status:
                    self._body()
                    self._reply(status, {"error": "injected failure"}, {"Retry-After": "0"})
                return status is not None

            def do_POST(self):
                if self._injected_failure():
                    return
                path = urlparse(self.path).path
                if path == "/api/repos/create":
                    return self._create(json.loads(self._body()))
                if path == "/api/validate-yaml":  # a README.md with front matter is checked before upload
                    self._body()
                    return self._reply(200, {"errors": [], "warnings": []})
                match = API.match(path)
                if not match or (match["kind"], match["repo"]) not in hub.repos:
                    return self._reply(404, {"error": "Repository not found"})
                repo = hub.repos[(match["kind"], match["repo"])]
                if match["op"] == "preupload":
                    files = json.loads(self._body())["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in files]})
                if match["op"] == "commit":
                    hub.commit_started[match["kind"]].set()
                    time.sleep(hub.commit_delay)
                    prefix = "" if match["kind"] == "models" else match["kind"] + "/"
                    return self._commit(repo, f"{hub.endpoint}/{prefix}{match['repo']}", self._body())
                self._reply(404, {"error": "not found"})

            def _create(self, request: dict):
                kind = (request.get("type") or "model") + "s"
                repo_id = f"{request.get('organization') or 'user'}/{request['name']}"
                url = f"{hub.endpoint}/{'' if kind == 'models' else kind + '/'}{repo_id}"
                with hub._lock:
                    if (kind, repo_id) in hub.repos:
                        return self._reply(409, {"error": "You already created this repo", "url": url})
                    hub.repos[(kind, repo_id)] = Repo()
                self._reply(200, {"url": url, "name": repo_id})

            def _commit(self, repo: Repo, repo_url: str, body: bytes):
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                header = next(line["value"] for line in lines if line["key"] == "header")
                added, deleted = {}, []
                for line in lines:
                    if line["key"] == "file":
                        added[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                    elif line["key"] in ("deletedFile", "deletedFolder"):
                        deleted.append((line["value"]["path"].rstrip("/"), line["key"] == "deletedFolder"))
                    elif line["key"] == "lfsFile":
                        return self._reply(400, {"error": f"{line['key']} is not supported by this test server"})
                with hub._lock:
                    parent = header.get("parentCommit")
                    if parent and parent != repo.sha:  # as the Hub does: the commit is made on that head or not at all
                        return self._reply(412, {"error": "A commit has happened since. Please refresh and try again."})
                    gone = {p for path, folder in deleted for p in repo.files
                            if p == path or (folder and p.startswith(path + "/"))}
                    missing = [path for path, folder in deleted
                               if not any(p == path or (folder and p.startswith(path + "/")) for p in repo.files)]
                    if missing:  # as the Hub does: the whole commit is refused
                        return self._reply(404, {"error": f"Entry not found: {missing[0]}"},
                                           {"X-Error-Code": "EntryNotFound"})
                    for path in gone:
                        del repo.files[path]
                    repo.files.update(added)
                    oid = hashlib.sha1(f"{len(repo.commits)}{sorted(added)}{sorted(gone)}".encode()).hexdigest()
                    repo.commits.append({"oid": oid, "message": header.get("summary"), "added": sorted(added),
                                         "deleted": sorted(gone)})
                self._reply(200, {"commitUrl": f"{repo_url}/commit/{oid}", "commitOid": oid,
                                  "pullRequestUrl": None})

            def do_GET(self):
                self._get(head=False)

            def do_HEAD(self):
                self._get(head=True)

            def _get(self, head: bool):
                if self._injected_failure():
                    return
                path = unquote(urlparse(self.path).path)
                if path == "/api/whoami-v2":  # the token's account: what Gradio's sign-in asks for off a Space
                    return self._reply(200, {"type": "user", "name": hub.account, "fullname": hub.account.title(),
                                             "avatarUrl": f"{hub.endpoint}/avatars/{hub.account}.png", "orgs": []})
                if match := INFO.match(path):
                    path = f"{path}/revision/main"
                if match := API.match(path):
                    repo = hub.repos.get((match["kind"], match["repo"]))
                    if repo is None:
                        return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if match["op"] == "revision":
                        return self._reply(200, {"id": match["repo"], "sha": repo.sha, "private": False,
                                                 "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
                    if match["op"] == "tree":
                        prefix = (match["path"] or "").strip("/")
                        return self._reply(200, [
                            {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                            for p, b in sorted(repo.files.items()) if p.startswith(prefix)])
                if match := RESOLVE.match(path):
                    repo = hub.repos.get((match["kind"] or "models", match["repo"]))
                    content = repo.files.get(match["path"]) if repo else None
                    if content is None:
                        return self._reply(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                    if not head:
                        hub.downloads.append(match["path"])
                    return self._reply(200, content, {
                        "Content-Type": "application/octet-stream", "X-Repo-Commit": repo.sha,
                        "ETag": f'"{hashlib.sha1(content).hexdigest()}"'}, head=head)
                self._reply(404, {"error": "not found"})

        return Handler
