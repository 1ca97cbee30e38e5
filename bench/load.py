"""Load on a real llamactl: does it stay correct and give back what it used?

Starts ``llamactl serve`` (loopback, a temporary data dir) with ``--instances`` instances of
the tiny model (4 slots each), warms up with a small run, samples llamactl's RSS and open
file descriptors, then runs (``llamactl.devtools.load``, aiohttp clients):

1. ``--completions`` /v1 completions (4 tokens) at ``--concurrency`` concurrent;
2. ``--streams`` /v1 streaming completions all at once, beside ``--event-clients`` readers of
   /api/events held open until the streams end (event streams of both kinds at once);
3. ``--websockets`` /api/ws clients connected together, then half closed cleanly and half
   dropped with no close frame.

After a settle, RSS and descriptors again. Goals (issue 14): 0 errors, RSS growth at most
20 MB, no leaked descriptors (at most 4 more: pooled backend connections). The last line,
prefixed ``RESULT``, is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    BenchError,
    answers_200,
    default_llama_server,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)

from llamactl.devtools.load import Footprint, Shape, run_load, total_errors

PORTS = (18700, 18799)
INSTANCE_PORTS = (36000, 36099)
RSS_GROWTH_GOAL_MB = 20.0
FD_SLACK = 4
WARM_UP = Shape(completions=500, concurrency=32, streams=16, event_clients=16, websockets=16)


def start(args: argparse.Namespace, work: Path) -> tuple[Any, str, list[str]]:
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    port = pick_port(*PORTS, set())
    config = work / "config.yaml"
    config.write_text(json.dumps({
        "backends": {"llama_cpp": {"command": args.llama_server}},
        "instances": {"port_range": list(INSTANCE_PORTS)},
    }))
    server = spawn([sys.executable, "-m", "llamactl", "serve", "--port", str(port),
                    "--config", str(config), "--data-dir", str(work / "data")],
                   work / "llamactl.out")
    url = f"http://127.0.0.1:{port}"
    models = [f"m{n}" for n in range(args.instances)]
    try:
        wait_for(answers_200(f"{url}/api/instances", server, work / "llamactl.out"), 30,
                 "llamactl to answer")
        with httpx.Client(base_url=url, timeout=60) as client:
            for name in models:
                created = client.post("/api/instances", json={
                    "name": name, "model_path": str(model),
                    # One thread each: two llama-servers with a thread per core contend on
                    # 2 cores (ggml's threads spin); beside one busy core that was 412
                    # completions/s against 1,457, and once 6/s with other servers running.
                    "options": {"context_size": 512, "parallel": 4, "threads": 1}})
                if created.status_code != 201:
                    raise BenchError(f"create {name}: {created.text}")
                if client.post(f"/api/instances/{name}/start?wait=true").status_code != 200:
                    raise BenchError(f"{name} did not start")
    except BaseException:
        stop_group(server)
        raise
    return server, url, models


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    shape = Shape(completions=args.completions, concurrency=args.concurrency,
                  streams=args.streams, event_clients=args.event_clients,
                  websockets=args.websockets)
    server, url, models = start(args, work)
    try:
        warm = asyncio.run(run_load(url, models, WARM_UP))
        if total_errors(warm):
            raise BenchError(f"the warm-up failed: {warm}")
        time.sleep(args.settle)
        before = Footprint.of(server.pid)
        began = time.perf_counter()
        result = asyncio.run(run_load(url, models, shape))
        took = time.perf_counter() - began
        time.sleep(args.settle)
        after = Footprint.of(server.pid)
    finally:
        stop_group(server)
    return {
        "shape": vars(shape), "instances": args.instances, "seconds": took, "load": result,
        "before": vars(before), "after": vars(after),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
    }


def report(result: dict[str, Any]) -> None:
    shape, load = result["shape"], result["load"]
    print(f"llamactl under load: {result['instances']} instances of the tiny model, "
          f"{result['seconds']:.0f} s ({result['machine']['cpus']} CPUs, "
          f"load {result['machine']['loadavg_1m']:.2f})")
    header = f"{'clients':<44} {'ok':>6} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    rows = [
        (f"/v1 completions at {shape['concurrency']} concurrent", load["completions"]),
        (f"/v1 streams, {shape['streams']} at once", load["streams"]),
        ("/api/events readers beside them", load["event_readers"]),
        ("/api/ws clients, together, half dropped", load["websockets"]),
    ]
    for label, row in rows:
        print(f"{label:<44} {row['ok']:>6} {row['errors']:>6} {row['p50_ms']:>8.1f} "
              f"{row['p99_ms']:>8.1f}")
        for error in row["first_errors"]:
            print(f"    {error}")
    print(f"completions per second: {load['completions']['per_second']:.0f}")
    before, after = result["before"], result["after"]
    growth = after["rss_mb"] - before["rss_mb"]
    print(f"llamactl RSS {before['rss_mb']:.1f} -> {after['rss_mb']:.1f} MB ({growth:+.1f}); "
          f"open descriptors {before['fds']} -> {after['fds']}")
    goals = {
        "no_errors": total_errors(load) == 0,
        "rss_growth_le_20mb": growth <= RSS_GROWTH_GOAL_MB,
        "no_fd_leak": after["fds"] <= before["fds"] + FD_SLACK,
    }
    print(f"{verdict(goals['no_errors'])}  {total_errors(load)} errors")
    print(f"{verdict(goals['rss_growth_le_20mb'])}  RSS growth {growth:+.1f} MB <= "
          f"{RSS_GROWTH_GOAL_MB:g} MB")
    print(f"{verdict(goals['no_fd_leak'])}  descriptors {after['fds']} <= {before['fds']} + "
          f"{FD_SLACK}")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    defaults = Shape()
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--completions", type=int, default=defaults.completions)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument("--event-clients", type=int, default=defaults.event_clients)
    parser.add_argument("--websockets", type=int, default=defaults.websockets)
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait before each sample")
    parser.add_argument("--llama-server", default=None,
                        help="llama-server binary (default: packaged, or PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.llama_server = args.llama_server or default_llama_server()
    if not args.llama_server:
        parser.error("no llama-server: run scripts/install-llama-server")
    return run_in_workdir("load", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    sys.exit(main())
