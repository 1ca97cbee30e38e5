"""A network namespace with only ``lo`` for tests that must send nothing off loopback.

Ray replaces 127.0.0.1 with the machine's other address, except in a namespace that has no
other: there it falls back to 127.0.0.1 (issue 18). ``LoopbackNamespace`` starts a holder
process in a new namespace (``unshare -n``), brings ``lo`` up there, and moves the calling
thread into it with ``setns``; threads and processes started from that thread meanwhile live
in it too. ``leave()`` moves the thread back and ends the holder (by pid).
Needs root (CAP_SYS_ADMIN); ``unavailable_reason()`` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "Ray tests need root: they run in a network namespace of their own (unshare -n)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"Ray tests need {tool} (util-linux / iproute2) for their network namespace"
    return None


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


class LoopbackNamespace:
    def __init__(self) -> None:
        self._holder = subprocess.Popen(["unshare", "-n", "sleep", "infinity"],
                                        start_new_session=True, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self.path = Path(f"/proc/{self._holder.pid}/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(self.path) == os.readlink("/proc/thread-self/ns/net"):
            if time.monotonic() > deadline:  # unshare not yet done: still our namespace
                raise RuntimeError("unshare -n did not make a namespace")
            time.sleep(0.01)
        self.inode = os.readlink(self.path)
        self._entered = False

    def enter(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        self._entered = True
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)

    def processes(self) -> list[int]:
        """Pids of the processes in the namespace but the holder and this one."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (os.getpid(), self._holder.pid):
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == self.inode:
                    found.append(int(entry))
            except OSError:
                continue
        return found

    def end_processes(self, timeout: float = 15.0) -> list[int]:
        """TERM every process left in the namespace, KILL what remains after timeout; the pids
        that needed the KILL."""
        for pid in self.processes():
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        stubborn = self.processes()
        for pid in stubborn:
            _signal(pid, signal.SIGKILL)
        return stubborn

    def leave(self) -> None:
        if self._entered:
            _setns(self._original)
            self._entered = False
        os.close(self._original)
        self._holder.kill()
        self._holder.wait(timeout=10)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
