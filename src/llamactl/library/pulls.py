"""Pull jobs (issue 33): ``POST /api/models/pull`` resolves a source on the Hub, checks the
disk, and answers with a job whose files download in the background.

Each file is one ``Download``, shared by every job that needs it (two pulls of one file fetch
it once), run in a worker thread of the library's own pool (never the event loop's, nor its
default executor, which listing and logs use). A job's task watches its downloads and
publishes ``model_pull_progress`` at most 4 times a second; cancelling a job stops the
downloads no other job needs. Jobs live in memory: after a restart, pulling the same source
again resumes from the partial files.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llamactl.errors import InsufficientStorage, NotFound
from llamactl.events import Event, EventHub
from llamactl.library.download import (
    Cancelled,
    ChecksumMismatch,
    Transfer,
    fetch_file,
    partial_path,
)
from llamactl.library.hub import HubFile, PullSource, Resolved, resolve
from llamactl.library.sources import SourceBook

log = logging.getLogger(__name__)

EVENT_INTERVAL = 0.25  # seconds between two progress events of one job: at most 4 a second
KEPT_JOBS = 100  # finished jobs remembered for GET /api/models/pulls
WORKERS = 4  # files downloading at once
FINISHED = ("done", "failed", "cancelled")


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
    def __init__(self, source: PullSource, resolved: Resolved, downloads: list[Download],
                 model_id: str):
        self.id = uuid.uuid4().hex[:12]
        self.source, self.resolved, self.downloads = source, resolved, downloads
        self.model_id = model_id
        self.status = "queued"
        self.error: str | None = None
        self.created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.finished = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_event = 0.0

    def as_json(self) -> dict[str, Any]:
        files = [{"file": d.plan.name, "path": str(d.final), "bytes_done": d.transfer.done,
                  "bytes_total": d.plan.size, "status": d.status} for d in self.downloads]
        return {"id": self.id, "source": self.source.text, "repo": self.resolved.repo,
                "revision": self.resolved.commit, "status": self.status,
                "bytes_done": sum(f["bytes_done"] for f in files),
                "bytes_total": sum(f["bytes_total"] for f in files), "files": files,
                "model": self.model_id if self.status == "done" else None,
                "error": self.error, "created_at": self.created_at}


class Pulls:
    """Every pull of this llamactl: running and recently finished."""

    def __init__(self, library_dir: Path, events: EventHub, sources: SourceBook,
                 hub_url: str, token: str | None):
        self.library_dir, self.events, self.sources = library_dir, events, sources
        self.hub_url, self._token = hub_url.rstrip("/"), token
        self.jobs: dict[str, PullJob] = {}
        self._downloads: dict[Path, Download] = {}
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="llamactl-pull")
        self.resolver: Callable[[PullSource, str, str | None], Resolved] = resolve

    async def start(self, source: PullSource) -> PullJob:
        """Resolve ``source``, check the disk, and start its job (answered at once)."""
        resolved = await asyncio.to_thread(self.resolver, source, self.hub_url, self._token)
        downloads = [self._download_for(plan, resolved) for plan in resolved.files]
        self._check_space(downloads)
        job = PullJob(source, resolved, downloads,
                      model_id=f"{resolved.repo}/{resolved.model_file}")
        for download in downloads:
            download.users.add(job.id)
            self._run_download(download)
        self.jobs[job.id] = job
        self._forget_old_jobs()
        job.task = asyncio.create_task(self._watch(job), name=f"pull {job.id}")
        return job

    def job(self, job_id: str) -> PullJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"Pull '{job_id}' not found", code="PULL_NOT_FOUND")
        return job

    async def cancel(self, job_id: str) -> PullJob:
        job = self.job(job_id)
        if job.status in FINISHED:
            return job
        job.status, job.error = "cancelled", None
        self._release(job)
        if job.task is not None:
            job.task.cancel()
        job.finished.set()
        self._publish(job)
        return job

    async def close(self) -> None:
        """Stop every download (the partial files stay) and every job's task."""
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        for download in list(self._downloads.values()):
            download.transfer.cancel.set()  # the thread stops at its next chunk
            if download.task is not None:
                download.task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _download_for(self, plan: HubFile, resolved: Resolved) -> Download:
        from huggingface_hub import hf_hub_url

        final = self.library_dir / resolved.repo / plan.name
        running = self._downloads.get(final)
        if (running is not None and running.plan == plan
                and not running.transfer.cancel.is_set()):
            return running
        url = hf_hub_url(resolved.repo, plan.name, revision=resolved.commit,
                         endpoint=self.hub_url)
        return Download(plan, final, url, resolved)

    def _run_download(self, download: Download) -> None:
        if download.task is not None:
            return  # already running for another job: shared
        if self._already_there(download):
            download.transfer.done, download.transfer.phase = download.plan.size, "done"
            return
        # One writer per partial file: a fetch of it still stopping is waited for.
        previous = self._downloads.get(download.final)
        self._downloads[download.final] = download
        download.task = asyncio.create_task(self._fetch(download, previous),
                                            name=f"download {download.final.name}")

    def _already_there(self, download: Download) -> bool:
        relative = download.final.relative_to(self.library_dir).as_posix()
        noted = self.sources.read().get(relative, {})
        try:
            size = download.final.stat().st_size
        except OSError:
            return False
        return size == download.plan.size and noted.get("sha256") == download.plan.sha256

    async def _fetch(self, download: Download, previous: Download | None) -> None:
        from huggingface_hub.utils._headers import build_hf_headers

        headers = build_hf_headers(token=self._token or None)
        loop = asyncio.get_running_loop()
        try:
            if previous is not None and previous.task is not None:
                await asyncio.wait([previous.task])
                if previous.status == "done":  # it finished before it heard the cancel
                    download.transfer.done, download.transfer.phase = previous.plan.size, "done"
                    return
            await loop.run_in_executor(self._pool, fetch_file, download.url, headers,
                                       download.final, download.plan.sha256, download.transfer)
            await loop.run_in_executor(self._pool, self._note_source, download)
        except Cancelled:
            download.error = "cancelled"
        except ChecksumMismatch as mismatch:
            download.error = str(mismatch)
        except Exception as error:  # the Hub, the network, the disk: the job says which
            download.error = _problem(error)
            log.warning("pull of %s failed: %s", download.final.name, download.error)
        finally:
            if self._downloads.get(download.final) is download:
                del self._downloads[download.final]

    def _note_source(self, download: Download) -> None:
        relative = download.final.relative_to(self.library_dir).as_posix()
        self.sources.record(relative, {
            "repo": download.repo, "file": download.plan.name, "revision": download.commit,
            "sha256": download.plan.sha256})

    async def _watch(self, job: PullJob) -> None:
        """Follow the job's downloads, with progress events, until they end."""
        try:
            while True:
                job.status = _job_status(job.downloads)
                if job.status in FINISHED:
                    break
                if time.monotonic() - job.last_event >= EVENT_INTERVAL:
                    self._publish(job)
                await asyncio.sleep(EVENT_INTERVAL / 5)
            if job.status == "failed":
                job.error = next((d.error for d in job.downloads if d.status == "failed"), None)
            await asyncio.sleep(max(0.0, job.last_event + EVENT_INTERVAL - time.monotonic()))
            self._publish(job)
        finally:
            job.finished.set()

    def _release(self, job: PullJob) -> None:
        for download in job.downloads:
            download.users.discard(job.id)
            if not download.users:
                download.transfer.cancel.set()

    def _publish(self, job: PullJob) -> None:
        job.last_event = time.monotonic()
        self.events.publish(Event("model_pull_progress", job.as_json()))

    def _check_space(self, downloads: list[Download]) -> None:
        needed = sum(_remaining(d) for d in downloads if d.task is None and not
                     self._already_there(d))
        others = sum(_remaining(d) for d in self._downloads.values() if d not in downloads)
        folder = _existing_ancestor(self.library_dir)
        free = shutil.disk_usage(folder).free
        if needed + others > free:
            raise InsufficientStorage(
                "Not enough free disk space for this pull",
                f"needs {needed} bytes (and {others} for pulls in flight); "
                f"{free} bytes free in {folder}")

    def _forget_old_jobs(self) -> None:
        finished = [job_id for job_id, job in self.jobs.items() if job.status in FINISHED]
        for job_id in finished[:max(0, len(self.jobs) - KEPT_JOBS)]:
            del self.jobs[job_id]


def _job_status(downloads: list[Download]) -> str:
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


def _remaining(download: Download) -> int:
    partial = partial_path(download.final)
    have = partial.stat().st_size if partial.exists() else 0
    return max(0, download.plan.size - have)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _problem(error: BaseException) -> str:
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

