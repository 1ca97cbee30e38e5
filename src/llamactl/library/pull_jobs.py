"""A pull job and its files (issue 33): what ``POST /api/models/pull`` answers with, what the
store keeps of it (store/pulls.py), and how a job found on record at start is planned again.

A job is on record from its start to its end: written at each change of status and about once
a second while it downloads, so that the next llamactl (after a SIGTERM, a kill -9 or a power
loss) starts every job that had not finished again, with the same id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llamactl.library.download import Transfer
from llamactl.library.hub import HubFile, Resolved
from llamactl.store.pulls import PullRecord

FINISHED = ("done", "failed", "cancelled")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Download:
    """One file being fetched, for one or more jobs."""

    def __init__(self, plan: HubFile, final: Path, url: str, resolved: Resolved):
        self.plan, self.final, self.url = plan, final, url
        self.repo, self.commit = resolved.repo, resolved.commit
        self.transfer = Transfer(total=plan.size)
        self.users: set[str] = set()
        self.error: str | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "cancelled" if self.error == "cancelled" else "failed"
        return self.transfer.phase


class PullJob:
    def __init__(self, source: str, resolved: Resolved, downloads: list[Download],
                 model_id: str, *, job_id: str | None = None, created_at: str | None = None):
        self.id = job_id or uuid.uuid4().hex[:12]
        self.source, self.resolved, self.downloads = source, resolved, downloads
        self.model_id = model_id
        self.status = "queued"
        self.error: str | None = None
        self.created_at = created_at or _now()
        self.finished_at: str | None = None
        self.finished = asyncio.Event()
        # Told once the job ends (done, failed or cancelled; not when llamactl stops): the
        # instances waiting for it (supervisor/pending_models.py).
        self.on_finish: list[Callable[[PullJob], None]] = []
        self.task: asyncio.Task[None] | None = None
        self.last_event = 0.0
        self.last_record = 0.0

    def as_json(self) -> dict[str, Any]:
        files = [{"file": d.plan.name, "path": str(d.final), "bytes_done": d.transfer.done,
                  "bytes_total": d.plan.size, "status": d.status} for d in self.downloads]
        return {"id": self.id, "source": self.source, "repo": self.resolved.repo,
                "revision": self.resolved.commit, "status": self.status,
                "bytes_done": sum(f["bytes_done"] for f in files),
                "bytes_total": sum(f["bytes_total"] for f in files), "files": files,
                "model": self.model_id if self.status == "done" else None,
                "error": self.error, "created_at": self.created_at}

    def end(self, status: str, error: str | None) -> None:
        self.status, self.error, self.finished_at = status, error, _now()
        self.finished.set()

    def record(self) -> PullRecord:
        shown = self.as_json()
        files = [{**file, "sha256": download.plan.sha256}
                 for file, download in zip(shown["files"], self.downloads, strict=True)]
        return PullRecord(
            id=self.id, source=self.source, repo=self.resolved.repo,
            file=self.resolved.model_file, revision=self.resolved.commit, files=files,
            status=self.status, bytes_done=shown["bytes_done"],
            bytes_total=shown["bytes_total"], error=self.error, created_at=self.created_at,
            finished_at=self.finished_at)


def planned(record: PullRecord) -> Resolved:
    """What a job on record fetches: its commit and files, as resolved when it started."""
    files = tuple(HubFile(name=file["file"], size=int(file["bytes_total"]),
                          sha256=file.get("sha256")) for file in record.files)
    return Resolved(repo=record.repo, commit=record.revision, files=files)


def record_json(record: PullRecord) -> dict[str, Any]:
    """A finished job's answer, from the record."""
    files = [{key: file[key] for key in ("file", "path", "bytes_done", "bytes_total", "status")}
             for file in record.files]
    return {"id": record.id, "source": record.source, "repo": record.repo,
            "revision": record.revision, "status": record.status,
            "bytes_done": record.bytes_done, "bytes_total": record.bytes_total,
            "files": files,
            "model": f"{record.repo}/{record.file}" if record.status == "done" else None,
            "error": record.error, "created_at": record.created_at}


def job_status(downloads: list[Download]) -> str:
    statuses = {download.status for download in downloads}
    if "failed" in statuses:
        return "failed"
    if "cancelled" in statuses:
        return "cancelled"
    if statuses == {"done"}:
        return "done"
    if "downloading" in statuses:
        return "downloading"
    if "verifying" in statuses:
        return "verifying"
    return "queued"


# What huggingface_hub raises when the Hub refuses a file, and what the job says of it.
_REFUSALS = {
    "GatedRepoError": "{repo} is gated: accept its terms on the Hub, and set "
                      "models.hub_token or HF_TOKEN",
    "RepositoryNotFoundError": "Repository '{repo}' not found on the Hub (a private or gated "
                               "repo needs models.hub_token or HF_TOKEN)",
    "RevisionNotFoundError": "Revision '{commit}' not found in {repo}",
    "EntryNotFoundError": "No file '{file}' in {repo} at {commit}",
    "RemoteEntryNotFoundError": "No file '{file}' in {repo} at {commit}",
}


def problem(error: BaseException, download: Download | None = None) -> str:
    """A failed download's cause, in one line (never a token: huggingface_hub's messages
    carry a request id at most)."""
    refusal = _REFUSALS.get(type(error).__name__)
    if refusal is not None and download is not None:
        return refusal.format(repo=download.repo, commit=download.commit,
                              file=download.plan.name)
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
