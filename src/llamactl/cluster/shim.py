"""``python -m llamactl.cluster.shim PARENT_PID -- ARGV...``: a backend that dies with its
Ray worker.

A process started from a Ray actor outlives the actor's worker when the worker is SIGKILLed
or its node's raylet dies. The actor starts this shim instead of the backend, in a new
session, so shim and backend form one process group (its id is the shim's pid). The shim:
- forks the backend with ``PR_SET_PDEATHSIG`` = SIGKILL (the shim has one thread, so "parent
  died" means the shim died), then execs it;
- polls its own parent: once reparented (the worker is gone) it kills the group;
- passes SIGTERM/SIGINT on to the backend, and exits as the backend did.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.2


def _die_with_parent(signum: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _exec_backend(argv: list[str], shim_pid: int) -> None:
    _die_with_parent(signal.SIGKILL)
    if os.getppid() != shim_pid:  # the shim died before prctl took effect
        os._exit(1)
    try:
        os.execv(argv[0], argv)  # noqa: S606 (the backend's own argv, as llamactl built it)
    except OSError as exc:
        sys.stderr.write(f"cannot run {argv[0]}: {exc.strerror or exc}\n")
    os._exit(127)


def _exit_like(status: int) -> None:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: die by the same one, so the actor reports it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 1)


def main(args: list[str]) -> None:
    parent = int(args[0])
    argv = args[2:] if args[1:2] == ["--"] else args[1:]
    shim_pid = os.getpid()
    child = os.fork()
    if child == 0:
        _exec_backend(argv, shim_pid)

    def forward(signum: int, _frame: object) -> None:
        os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            _exit_like(status)
        if os.getppid() != parent:  # the Ray worker is gone: so is its backend
            os.killpg(0, signal.SIGKILL)
        time.sleep(PARENT_POLL_SECONDS)


if __name__ == "__main__":
    main(sys.argv[1:])
