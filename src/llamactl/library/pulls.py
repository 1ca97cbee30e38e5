"""Pull jobs (issue 33): ``POST /api/models/pull`` resolves a source on the Hub, checks the
disk, and answers with a job whose files download in the background.

Each file is one ``Download``, shared by every job that needs it (two pulls of one file fetch
it once), run in a worker thread of the library's own pool (never the event loop's, nor its
default executor, which listing and logs use). A job's task watches its downloads and
publishes ``model_pull_progress`` at most 4 times a second; cancelling a job stops the
downloads no other job needs.

Every job is on record (store/pulls.py): written at its changes of status, and at most about
once a second while it downloads. Live jobs are answered from memory, finished ones from the
record (once it holds their end). When llamactl starts, ``resume`` starts every job that had
not finished when the last one ended (a SIGTERM, a kill -9, a power loss) again, with the same
id, at the same commit: the downloads resume from their partial files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llamactl.errors import InsufficientStorage, NotFound, StorageUnavailable
from llamactl.events import Event, EventHub
from llamactl.library.download import Cancelled, ChecksumMismatch, fetch_file, partial_path
from llamactl.library.hub import HubFile, PullSource, Resolved, resolve
from llamactl.library.pull_jobs import (
    FINISHED,
    Download,
    PullJob,
    job_status,
    planned,
    problem,
    record_json,
)
from llamactl.library.sources import SourceBook
from llamactl.store.pulls import PullRepository

log = logging.getLogger(__name__)

EVENT_INTERVAL = 0.25  # seconds between two progress events of one job: at most 4 a second
RECORD_INTERVAL = 1.0  # seconds between two writes of a running job's progress
KEPT_JOBS = 100  # finished jobs listed by GET /api/models/pulls (and kept on record)
WORKERS = 4  # files downloading at once


class Pulls:
    """Every pull of this llamactl: running, and finished (on record)."""

    def __init__(self, library_dir: Path, events: EventHub, sources: SourceBook,
                 hub_url: str, token: str | None, repository: PullRepository):
        self.library_dir, self.events, self.sources = library_dir, events, sources
        self.hub_url, self._token = hub_url.rstrip("/"), token
        self.repository = repository
        # Live jobs, and finished ones until the record holds their end.
        self.jobs: dict[str, PullJob] = {}
        self._downloads: dict[Path, Download] = {}
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="llamactl-pull")
        self.resolver: Callable[[PullSource, str, str | None], Resolved] = resolve

    async def start(self, source: PullSource) -> PullJob:
        """Resolve ``source``, check the disk, and start its job (answered at once)."""
        resolved = await asyncio.to_thread(self.resolver, source, self.hub_url, self._token)
        downloads = [self._download_for(plan, resolved) for plan in resolved.files]
        self._check_space(downloads)
        job = PullJob(source.text, resolved, downloads,
                      model_id=f"{resolved.repo}/{resolved.model_file}")
        self._begin(job)
        return job

    async def resume(self) -> dict[str, PullJob]:
        """At start: every job the last llamactl left unfinished, started again (same id,
        same commit and files); a job that no longer fits on the disk ends failed at once
        (and is among those returned, for the instances waiting for it to say so)."""
        resumed: dict[str, PullJob] = {}
        try:
            records = await self.repository.live()
        except StorageUnavailable as error:  # llamactl starts all the same
            log.error("the pulls on record cannot be read, none resumed: %s", error.message)
            return resumed
        for record in records:
            resolved = planned(record)
            downloads = [self._download_for(plan, resolved) for plan in resolved.files]
            job = PullJob(record.source, resolved, downloads,
                          model_id=f"{resolved.repo}/{resolved.model_file}",
                          job_id=record.id, created_at=record.created_at)
            try:
                self._check_space(downloads)
            except InsufficientStorage as full:
                job.end("failed", f"{full.message} ({full.details})")
                self.repository.save(job.record())
                resumed[job.id] = job
                continue
            log.info("resuming pull %s of %s", job.id, job.source)
            self._begin(job)
            resumed[job.id] = job
        return resumed

    def _begin(self, job: PullJob) -> None:
        for download in job.downloads:
            download.users.add(job.id)
            self._run_download(download)
        self.jobs[job.id] = job
        self._forget_old_jobs()
        self._record(job)
        job.task = asyncio.create_task(self._watch(job), name=f"pull {job.id}")

    async def job(self, job_id: str) -> dict[str, Any]:
        """A job's answer: from memory while it runs, else from the record."""
        job = self.jobs.get(job_id)
        if job is not None:
            return job.as_json()
        record = await self.repository.get(job_id)
        if record is None or record.finished_at is None:
            raise NotFound(f"Pull '{job_id}' not found", code="PULL_NOT_FOUND")
        return record_json(record)

    async def listing(self) -> list[dict[str, Any]]:
        """The live jobs and the newest KEPT_JOBS finished ones, oldest first."""
        shown = {job.id: job.as_json() for job in self.jobs.values()}
        for record in await self.repository.finished():
            shown.setdefault(record.id, record_json(record))
        live = [job for job in shown.values() if job["status"] not in FINISHED]
        finished = sorted((job for job in shown.values() if job["status"] in FINISHED),
                          key=lambda job: job["created_at"])[-KEPT_JOBS:]
        return sorted([*live, *finished], key=lambda job: job["created_at"])

    async def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or job.status in FINISHED:
            return await self.job(job_id)
        self._release(job)
        if job.task is not None:
            job.task.cancel()
        await self._finish(job, "cancelled", None)
        return job.as_json()

    async def close(self) -> None:
        """Stop every download (the partial files stay) and every job's task; the jobs stay
        on record as they are, for the next llamactl to resume."""
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
            if job.status not in FINISHED:
                self.repository.save(job.record())  # the bytes done by now
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
            download.error = problem(error, download)
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
        """Follow the job's downloads, with progress events and records, until they end."""
        try:
            while (status := job_status(job.downloads)) not in FINISHED:
                if status != job.status or (
                        time.monotonic() - job.last_record >= RECORD_INTERVAL):
                    job.status = status
                    self._record(job)
                if time.monotonic() - job.last_event >= EVENT_INTERVAL:
                    self._publish(job)
                await asyncio.sleep(EVENT_INTERVAL / 5)
            job.status = status
            if status == "failed":
                job.error = next((d.error for d in job.downloads if d.status == "failed"), None)
            await asyncio.sleep(max(0.0, job.last_event + EVENT_INTERVAL - time.monotonic()))
            await self._finish(job, status, job.error)
        finally:
            job.finished.set()  # also when llamactl stops: nobody waits for ever

    async def _finish(self, job: PullJob, status: str, error: str | None) -> None:
        """The job's end: on record, told to whoever waits for it, published; then answered
        from the record once the record holds it."""
        job.end(status, error if status == "failed" else None)
        self._record(job)
        for told in job.on_finish:
            try:
                told(job)
            except Exception:  # one listener's bug must not keep the others uninformed
                log.exception("a listener of pull %s failed", job.id)
        self._publish(job)
        with contextlib.suppress(StorageUnavailable):  # else kept in memory (bounded)
            await self.repository.writer.require()
            self.jobs.pop(job.id, None)

    def _record(self, job: PullJob) -> None:
        job.last_record = time.monotonic()
        self.repository.save(job.record())

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


def _remaining(download: Download) -> int:
    partial = partial_path(download.final)
    have = partial.stat().st_size if partial.exists() else 0
    return max(0, download.plan.size - have)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
