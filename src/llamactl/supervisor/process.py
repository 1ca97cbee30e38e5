"""One backend process: spawn in its own session, watch for exit, signal its group, adopt.

Children are started with ``posix_spawn`` rather than ``subprocess.Popen`` or asyncio's
subprocess transport: the transport kills its child when it is closed, and Popen warns when
collected with a live child, but llamactl must be able to leave children running for the next
llamactl to adopt. Output goes straight to the instance's log file, never to a pipe, so a child
outlives a crash of llamactl. Exit is noticed through a pidfd, which works for adopted
processes (not our children) as well as our own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil


class SpawnError(Exception):
    pass


@dataclass
class ProcessHandle:
    pid: int
    start_time: float  # psutil create_time(), to tell this process from a later one with its pid
    command: list[str]
    owned: bool  # our child (we reap it) or adopted from an earlier llamactl
    returncode: int | None = None

    @classmethod
    def spawn(cls, argv: list[str], env: Mapping[str, str], log_path: Path) -> ProcessHandle:
        """Start argv in a new session (so it is its own process group) writing to log_path."""
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        try:
            pid = os.posix_spawn(argv[0], argv, dict(env), file_actions=actions, setsid=True)
        except OSError as exc:
            raise SpawnError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        try:
            start_time = psutil.Process(pid).create_time()
        except psutil.Error:
            start_time = 0.0  # already gone: the exit watcher reports it
        return cls(pid=pid, start_time=start_time, command=list(argv), owned=True)

    @classmethod
    def adopt(cls, pid: int, start_time: float, command: list[str]) -> ProcessHandle | None:
        """The recorded process if it still runs as the same program, else None."""
        try:
            process = psutil.Process(pid)
            same = process.create_time() == start_time and process.cmdline() == command
            alive = process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return None
        if not (same and alive):
            return None
        return cls(pid=pid, start_time=start_time, command=list(command), owned=False)

    def signal_group(self, signum: signal.Signals) -> None:
        """Signal the whole process group; a group that is already gone is not an error."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def wait(self) -> int | None:
        """Wait until the process exits; reap it if it is ours. Returns the exit code if known."""
        if self.returncode is not None:
            return self.returncode
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return self._reap()
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, on_readable)
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return self._reap()

    def _reap(self) -> int | None:
        if not self.owned:
            return None
        # Kill what the leader left behind in its group before reaping: until it is reaped the
        # zombie leader keeps the group id from being reused, so this cannot hit a stranger.
        self.signal_group(signal.SIGKILL)
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return self.returncode
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def is_alive(self) -> bool:
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
