"""A stand-in Hugging Face Hub: an HTTP server speaking the Hub's protocol as PyPI
``huggingface_hub`` uses it, serving files the tests put in its repos (issue 33).

- ``GET /api/models/{repo}[/revision/{rev}]``: the repo's info, its ``sha`` (commit) and,
  with ``?blobs=true``, ``siblings`` with sizes and LFS ``{sha256, size, pointerSize}``;
  unknown repos and revisions answer 404 with the Hub's ``X-Error-Code``.
- ``GET|HEAD /{repo}/resolve/{rev}/{file}``: a 302 to the "CDN" (``/cdn/{sha256}``), with
  ``X-Repo-Commit``, ``X-Linked-Etag`` and ``X-Linked-Size``, as the Hub answers for LFS files.
- ``GET /cdn/{sha256}``: the bytes, with ``ETag``, ``Accept-Ranges`` and ``Range`` (206).

It counts the bytes it served per file, paces them (``rate``: bytes a second) and can hold a
file's stream after a number of bytes until released, so a test can kill llamactl
mid-download and know what was in flight. Runs in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

CHUNK = 64 * 1024


@dataclass
class HubFile:
    data: bytes
    sha256: str  # what the Hub claims; a test may make it differ from the data's


@dataclass
class HubRepo:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


class StandInHub:
    def __init__(self, *, token: str | None = None):
        self.repos: dict[str, HubRepo] = {}
        self.token = token  # when set, every request must carry it
        self.served: dict[str, int] = defaultdict(int)  # file name -> body bytes sent
        self.claimed_sizes: dict[str, int] = {}  # file name -> a size the info claims
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.streams = 0  # file bodies being sent now (a stopped client's ends soon after)
        self.rate: float | None = None  # bytes a second of a file's body; None: at once
        self.hold_after: int | None = None  # a file's stream pauses at this offset...
        self.release = threading.Event()  # ...until this is set
        self.lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StandInHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def add(self, repo: str, name: str, data: bytes, *, sha256: str | None = None) -> None:
        """Put ``data`` in ``repo`` as ``name``; ``sha256``: a different claim than the data's."""
        entry = self.repos.setdefault(repo, HubRepo(commit=hashlib.sha1(repo.encode()).hexdigest()))
        entry.files[name] = HubFile(data, sha256 or hashlib.sha256(data).hexdigest())

    def body_bytes(self, name: str) -> int:
        with self.lock:
            return self.served[name]

    def by_sha(self, sha256: str) -> tuple[str, HubFile] | None:
        for repo in self.repos.values():
            for name, item in repo.files.items():
                if item.sha256 == sha256:
                    return name, item
        return None


INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?/?$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")


def _handler(hub: StandInHub) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            return None

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def _route(self, *, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with hub.lock:
                hub.requests.append((self.command, path, dict(self.headers.items())))
            if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self._error(401, "RepoNotFound", "Invalid username or password.")
            if match := INFO.match(path):
                return self._info(match["repo"], match["rev"])
            if match := RESOLVE.match(path):
                return self._resolve(match["repo"], match["rev"], match["file"])
            if match := CDN.match(path):
                return self._cdn(match["sha"], head=head)
            return self._error(404, "EntryNotFound", "not found")

        def _repo(self, name: str, revision: str | None) -> HubRepo | None:
            repo = hub.repos.get(name)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            if revision not in (None, "main", repo.commit):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return None
            return repo

        def _info(self, name: str, revision: str | None) -> None:
            repo = self._repo(name, revision)
            if repo is None:
                return
            siblings = []
            for file_name, item in repo.files.items():
                size = hub.claimed_sizes.get(file_name, len(item.data))
                siblings.append({"rfilename": file_name, "size": size,
                                 "blobId": hashlib.sha1(item.data).hexdigest(),
                                 "lfs": {"sha256": item.sha256, "size": size,
                                         "pointerSize": 134}})
            self._json(200, {"_id": name, "id": name, "modelId": name, "sha": repo.commit,
                             "private": False, "tags": ["gguf"], "siblings": siblings})

        def _resolve(self, name: str, revision: str, file_name: str) -> None:
            repo = self._repo(name, revision)
            if repo is None:
                return None
            item = repo.files.get(file_name)
            if item is None:
                return self._error(404, "EntryNotFound", "Entry not found")
            self.send_response(302)
            self.send_header("Location", f"/cdn/{item.sha256}")
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("X-Linked-Etag", f'"{item.sha256}"')
            self.send_header("X-Linked-Size", str(len(item.data)))
            self.send_header("ETag", f'"{hashlib.sha1(item.data).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None

        def _cdn(self, sha: str, *, head: bool) -> None:
            found = hub.by_sha(sha)
            if found is None:
                return self._error(404, "EntryNotFound", "no such blob")
            name, item = found
            start = _range_start(self.headers.get("Range"))
            size = len(item.data)
            if start >= size and size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.send_header("Content-Length", str(size - start))
            self.send_header("ETag", f'"{sha}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if not head:
                self._stream(name, item.data, start)
            return None

        def _stream(self, name: str, data: bytes, start: int) -> None:
            with hub.lock:
                hub.streams += 1
            try:
                self._send(name, data, start)
            finally:
                with hub.lock:
                    hub.streams -= 1

        def _send(self, name: str, data: bytes, start: int) -> None:
            offset = start
            while offset < len(data):
                if hub.hold_after is not None and offset >= hub.hold_after:
                    hub.release.wait()
                end = len(data)
                if hub.hold_after is not None and offset < hub.hold_after:
                    end = min(end, hub.hold_after)
                chunk = data[offset:min(end, offset + CHUNK)]
                try:
                    self.wfile.write(chunk)
                except OSError:  # the client went away (a kill -9, a cancel)
                    return
                with hub.lock:
                    hub.served[name] += len(chunk)
                offset += len(chunk)
                if hub.rate:
                    time.sleep(len(chunk) / hub.rate)

        def _error(self, status: int, code: str, message: str) -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, document: object) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _range_start(header: str | None) -> int:
    match = re.match(r"^bytes=(\d+)-$", header or "")
    return int(match[1]) if match else 0


# ---- what the tests of the model library share ----

REPO = "tester/tiny-GGUF"
PULL_TIMEOUT = 30.0


def tiny_repo(hub: StandInHub, work: Path, tiny_model_file: Path) -> StandInHub:
    """``REPO``: the tiny model in two quants (Q4_K_M, the default, from another seed), a
    projector, a split model under big/, a README (not a model)."""
    from llamactl.devtools.tiny_model import write_tiny_model
    from tests.support.model_files import write_mmproj, write_split_model

    hub.add(REPO, "tiny-Q8_0.gguf", tiny_model_file.read_bytes())
    hub.add(REPO, "tiny-Q4_K_M.gguf", write_tiny_model(work / "q4.gguf", seed=8).read_bytes())
    hub.add(REPO, "mmproj-tiny-F16.gguf", write_mmproj(work / "p.gguf").read_bytes())
    for part in write_split_model(work, "big-Q2_K", parts=2):
        hub.add(REPO, f"big/{part.name}", part.read_bytes())
    hub.add(REPO, "README.md", b"# tiny\n")
    return hub


def hub_settings(make_settings: Any, hub: StandInHub, tmp_path: Path, **models: Any) -> Any:
    """A test's settings with the library in tmp_path/library, pulling from ``hub``."""
    return make_settings(sections={"models": {"dir": str(tmp_path / "library"),
                                              "hub_url": hub.url, **models}})


async def wait_pull(app: Any, job_id: str, *statuses: str) -> dict[str, Any]:
    """The pull once its status is one of ``statuses`` (default: finished)."""
    deadline = time.monotonic() + PULL_TIMEOUT
    while True:
        job: dict[str, Any] = (await app.client.get(f"/api/models/pulls/{job_id}")).json()
        if job["status"] in (statuses or ("done", "failed", "cancelled")):
            return job
        assert time.monotonic() < deadline, f"pull still {job['status']}: {job}"
        await asyncio.sleep(0.05)


async def held_pull_app(make_settings: Any, make_app: Any, hub: StandInHub,
                        tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """An app whose instance "tiny" was created from the tiny repo's model while the Hub
    holds the download after its first 1,000 bytes: the app and the instance as created."""
    hub.hold_after = 1000
    app = await make_app(hub_settings(make_settings, hub, tmp_path))
    created = await app.client.post("/api/instances",
                                    json={"name": "tiny", "model": f"{REPO}:Q8_0"})
    assert created.status_code == 201, created.text
    return app, created.json()["instance"]


async def pull(app: Any, body: dict[str, Any]) -> dict[str, Any]:
    answer = await app.client.post("/api/models/pull", json=body)
    assert answer.status_code == 202, answer.text
    return await wait_pull(app, answer.json()["id"])
