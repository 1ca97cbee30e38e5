"""API latency and memory of llamactl with a thousand instances in its store.

What it measures
----------------
A real ``llamactl serve`` is started as a subprocess (temporary data dir and config, loopback
only, rate limiting off so the benchmark is not throttled).  N instances (default 1000) are
created with ``POST /api/instances`` using a tiny GGUF model and no port, so llamactl assigns
ports from ``instances.port_range``; they are never started.  Then, with one keep-alive
``httpx.Client`` and strictly sequential requests:

* ``GET /api/instances``            (list, ``--list-requests`` times, default 300)
* ``GET /api/instances/{name}``     (random names, ``--get-requests`` times, default 2000)

Baseline, measured in the same run with the same client: a minimal raw ASGI app served by
uvicorn in a subprocess (same uvicorn, same event loop and HTTP parser as llamactl) that answers
a fixed small JSON body, measured before and again after llamactl's reads (a drift between the
two means the machine got busier).  Its latency is what the client, the loopback and uvicorn
cost by themselves; the ratio "llamactl / baseline" shows how much llamactl adds on top.  A
second baseline answers a precomputed body exactly as large as llamactl's list answer, to
separate the cost of moving ~0.5 MB through the client from llamactl's cost of building it.

llamactl's resident memory (psutil RSS of the ``llamactl serve`` process) is sampled after a 2 s
settle: idle with an empty store, after the creates, and after all the reads.

How to read it
--------------
Latencies are in milliseconds: p50 (median), p99 and mean.  ``x base`` is p50 divided by the
baseline's p50; ``+base`` is the difference in ms.  Goals (list p50 <= 10 ms, idle RSS <= 80 MB)
are printed as PASS or MISS.  The last line, prefixed ``RESULT``, is one JSON object with every
number.  The exit status is 0 unless the benchmark itself broke (1: a server failed to start, a
request failed, ...) or was interrupted (130: SIGINT, SIGTERM or SIGHUP stop every process it
started before it exits).  On a loaded machine (2 cores shared with tests) p99 is noisy; p50 is the
number to compare.

Usage::

    .venv/bin/python bench/api.py [--instances 1000] [--list-requests 300] [--get-requests 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from _common import (
    MB,
    BenchError,
    answers_200,
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

SERVER_PORTS = (18500, 18599)  # llamactl and the baseline server listen here
START_TIMEOUT = 30.0

GOAL_LIST_P50_MS = 10.0
GOAL_IDLE_RSS_MB = 80.0

BASELINE_APP = textwrap.dedent(
    """
    import sys
    import uvicorn

    SMALL = b'{"status":"ok","name":"baseline","port":30000,"options":{"threads":1}}'
    BODIES = {}

    def body_for(path):
        # "/" answers SMALL; "/bytes/N" answers a fixed JSON document of exactly N bytes.
        if not path.startswith("/bytes/"):
            return SMALL
        size = int(path.rsplit("/", 1)[1])
        if size not in BODIES:
            BODIES[size] = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'
        return BODIES[size]

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = body_for(scope["path"])
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False, lifespan="off")
    """
)


# --------------------------------------------------------------------------- helpers


def time_requests(
    client: httpx.Client, urls: Iterator[str], count: int, check: Callable[[httpx.Response], None]
) -> tuple[list[float], int]:
    """Time ``count`` sequential GETs; return the durations and the last body size."""
    durations = []
    size = 0
    for _ in range(count):
        url = next(urls)
        began = time.perf_counter()
        response = client.get(url)
        body = response.content  # read fully inside the timing
        durations.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise BenchError(f"GET {url}: {response.status_code} {body[:300]!r}")
        check(response)
        size = len(body)
    return durations, size


def rss_mb(pid: int, settle: float) -> float:
    time.sleep(settle)
    return psutil.Process(pid).memory_info().rss / MB


# --------------------------------------------------------------------------- benchmark


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    taken: set[int] = set()
    llamactl_port = pick_port(*SERVER_PORTS, taken)
    base_port = pick_port(*SERVER_PORTS, taken)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": {"llama_cpp": {"command": args.llama_server}},
        "instances": {"port_range": [args.port_low, args.port_high]},
        # 1000 creates and thousands of reads in a few seconds: the limiter would answer 429.
        "rate_limit": {"enabled": False},
    }))
    data_dir = work / "data"
    data_dir.mkdir()

    processes: list[subprocess.Popen[bytes]] = []
    try:
        llamactl = spawn(
            [sys.executable, "-m", "llamactl", "serve", "--host", "127.0.0.1",
             "--port", str(llamactl_port), "--config", str(config), "--data-dir", str(data_dir)],
            work / "llamactl.out",
        )
        processes.append(llamactl)
        baseline = spawn([sys.executable, "-c", BASELINE_APP, str(base_port)], work / "base.out")
        processes.append(baseline)
        api = f"http://127.0.0.1:{llamactl_port}/api"
        base_url = f"http://127.0.0.1:{base_port}/"
        began = time.monotonic()
        wait_for(answers_200(f"{api}/instances", llamactl, work / "llamactl.out"), START_TIMEOUT,
                 "llamactl to answer")
        llamactl_boot = time.monotonic() - began
        wait_for(answers_200(base_url, baseline, work / "base.out"), START_TIMEOUT,
                 "baseline server")

        rss_idle = rss_mb(llamactl.pid, args.settle)
        print(f"llamactl pid {llamactl.pid} on :{llamactl_port} (answered after "
              f"{llamactl_boot:.2f} s), baseline on :{base_port}; idle RSS {rss_idle:.1f} MB",
              flush=True)

        with httpx.Client(timeout=60) as client:
            # ---- creates
            names = [f"bench-{i:04d}" for i in range(args.instances)]
            create_times = []
            began = time.monotonic()
            for name in names:
                t0 = time.perf_counter()
                response = client.post(f"{api}/instances",
                                       json={"name": name, "model_path": str(model)})
                create_times.append(time.perf_counter() - t0)
                if response.status_code != 201:
                    raise BenchError(f"create {name}: {response.status_code} {response.text[:300]}")
            create_total = time.monotonic() - began
            print(f"created {len(names)} instances in {create_total:.1f} s", flush=True)
            rss_created = rss_mb(llamactl.pid, args.settle)

            # ---- warm-up (connection, caches, first-call imports), not measured
            for _ in range(20):
                client.get(base_url)
                client.get(f"{api}/instances")
                client.get(f"{api}/instances/{random.choice(names)}")

            def same(url: str) -> Iterator[str]:
                while True:
                    yield url

            rng = random.Random(args.seed)

            def random_names() -> Iterator[str]:
                while True:
                    yield f"{api}/instances/{rng.choice(names)}"

            def accept(response: httpx.Response) -> None:
                pass

            def check_list(response: httpx.Response) -> httpx.Response:
                if len(response.json()["instances"]) != len(names):
                    raise BenchError("list does not hold every instance")
                return response

            # Check the list's content once, outside the timing (parsing 1000 instances in the
            # client is not llamactl's cost).
            list_bytes = len(check_list(client.get(f"{api}/instances")).content)
            big_url = f"{base_url}bytes/{list_bytes}"
            for _ in range(5):
                client.get(big_url)
            base_n = max(args.list_requests, args.get_requests)
            base_t, base_size = time_requests(client, same(base_url), base_n, accept)
            big_t, big_size = time_requests(client, same(big_url), args.list_requests, accept)
            list_t, list_size = time_requests(client, same(f"{api}/instances"),
                                              args.list_requests, accept)
            get_t, get_size = time_requests(client, random_names(), args.get_requests, accept)
            # Baseline again at the end: if the machine got busier meanwhile, it shows here.
            base2_t, _ = time_requests(client, same(base_url), base_n // 2, accept)

        rss_after = rss_mb(llamactl.pid, args.settle)
        cpu = psutil.Process(llamactl.pid).cpu_times()

        stop_group(baseline, grace=10)
        began = time.monotonic()
        stop_group(llamactl, grace=30)
        llamactl_exit = time.monotonic() - began
    finally:
        for process in processes:
            stop_group(process, grace=10)
        leftovers = kill_processes_under(work)
        if leftovers:
            print("killed leftovers:", *leftovers, sep="\n  ")

    base = percentiles(base_t)
    return {
        "instances": args.instances,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        "llamactl_boot_s": llamactl_boot,
        "llamactl_exit_s": llamactl_exit,
        "llamactl_cpu_s": cpu.user + cpu.system,
        "create": {**percentiles(create_times), "total_s": create_total},
        "baseline": {**base, "bytes": base_size},
        "baseline_end": percentiles(base2_t),
        "baseline_list_size": {**percentiles(big_t), "bytes": big_size},
        "list": {**percentiles(list_t), "bytes": list_size},
        "get": {**percentiles(get_t), "bytes": get_size},
        "rss_mb": {"idle": rss_idle, "after_creates": rss_created, "after_reads": rss_after},
    }


def report(result: dict[str, Any]) -> None:
    base = result["baseline"]
    print()
    print(f"llamactl API latency, {result['instances']} instances in the store "
          f"(sequential keep-alive GETs; {result['machine']['cpus']} CPUs, "
          f"load {result['machine']['loadavg_1m']:.2f})")
    header = (f"{'request':<28} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
              f"{'body B':>8} {'x base':>7} {'+base ms':>9}")
    print(header)
    print("-" * len(header))
    rows = [
        ("baseline GET (raw ASGI)", base),
        ("baseline GET (again, end)", result["baseline_end"]),
        ("baseline GET, list's size", result["baseline_list_size"]),
        ("GET /api/instances", result["list"]),
        ("GET /api/instances/{name}", result["get"]),
        ("POST /api/instances", result["create"]),
    ]
    for label, row in rows:
        size = f"{row['bytes']:>8}" if "bytes" in row else f"{'':>8}"
        print(f"{label:<28} {int(row['n']):>5} {row['p50']:>8.2f} {row['p99']:>8.2f} "
              f"{row['mean']:>8.2f} {size} {row['p50'] / base['p50']:>7.1f} "
              f"{row['p50'] - base['p50']:>+9.2f}")
    same_size = result["baseline_list_size"]
    print(f"list against a baseline answer of the same size ({same_size['bytes']} B): "
          f"x{result['list']['p50'] / same_size['p50']:.1f}, "
          f"{result['list']['p50'] - same_size['p50']:+.2f} ms at p50")
    print(f"(creating {result['instances']} instances took {result['create']['total_s']:.1f} s; "
          f"llamactl answered {result['llamactl_boot_s']:.2f} s after exec and exited "
          f"{result['llamactl_exit_s']:.2f} s after SIGTERM; it used "
          f"{result['llamactl_cpu_s']:.1f} s CPU in all)")
    print()
    rss = result["rss_mb"]
    print("llamactl RSS (after a settle)")
    print(f"  idle, empty store      {rss['idle']:7.1f} MB")
    print(f"  after the creates      {rss['after_creates']:7.1f} MB  "
          f"({rss['after_creates'] - rss['idle']:+.1f} MB)")
    print(f"  after the reads        {rss['after_reads']:7.1f} MB  "
          f"({rss['after_reads'] - rss['idle']:+.1f} MB)")
    print()
    goals = {
        "list_p50_le_10ms": result["list"]["p50"] <= GOAL_LIST_P50_MS,
        "idle_rss_le_80mb": rss["idle"] <= GOAL_IDLE_RSS_MB,
    }
    print("goals")
    print(f"  {verdict(goals['list_p50_le_10ms'])}  list p50 {result['list']['p50']:.2f} ms "
          f"<= {GOAL_LIST_P50_MS:g} ms")
    print(f"  {verdict(goals['idle_rss_le_80mb'])}  idle RSS {rss['idle']:.1f} MB "
          f"<= {GOAL_IDLE_RSS_MB:g} MB")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=1000, help="instances to create")
    parser.add_argument("--list-requests", type=int, default=300, help="GET /api/instances count")
    parser.add_argument("--get-requests", type=int, default=2000,
                        help="GET /api/instances/{name} count")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait before each RSS sample")
    parser.add_argument("--port-low", type=int, default=30000, help="instances.port_range low")
    parser.add_argument("--port-high", type=int, default=31999, help="instances.port_range high")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random names")
    parser.add_argument("--llama-server", default=None,
                        help="llama-server binary for the config (default: packaged, or PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.port_high - args.port_low + 1 < args.instances:
        parser.error("the port range must hold a port for every instance")
    # Instances are only created here, never started: a bare name will do for the config.
    args.llama_server = args.llama_server or default_llama_server() or "llama-server"

    return run_in_workdir(
        "api", args.keep, lambda work: run(args, work), report,
        (BenchError, httpx.HTTPError, psutil.Error, OSError))


if __name__ == "__main__":
    sys.exit(main())
