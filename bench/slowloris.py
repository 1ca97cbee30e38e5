"""Slowloris against llamactl's front door: do ``GET /api/instances`` and ``/v1`` keep their p99?

What it measures
----------------
One fresh ``llamactl serve`` (temp config and data dir, rate limits off, ``server.max_connections``
above the attack, ``server.header_timeout`` as given) with one instance whose backend is
bench/instant_upstream.py (answers at once: what is left is llamactl's own time).  Two phases,
each ``--requests`` sequential requests of three kinds, timed from the call to the last byte:

* ``api``: ``GET /api/instances`` on one keep-alive connection;
* ``api-new``: the same on a new connection each time (what a client arriving during the
  attack gets: the accept queue and the front door's handover);
* ``v1``: ``POST /v1/completions`` (non-streaming, ``max_tokens`` 4) on one keep-alive connection.

Phase ``quiet`` runs them alone; phase ``slowloris`` while ``--connections`` (2,000) raw
connections each send a request head one byte every ``--byte-every`` seconds (2 s), never
finishing it, and reconnect whenever llamactl closes them (at the header timeout).  The bench
raises its own open-file limit (``resource.setrlimit``) to hold them; llamactl raises its own.
Printed: p50/p99 per kind and phase, how many attack connections were open while measuring,
how many llamactl closed (and after how long, p50), and llamactl's RSS and CPU.

    .venv/bin/python bench/slowloris.py [--connections 2000] [--requests 500] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from _common import (
    BenchError,
    answers_200,
    percentiles,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    wait_for,
)

from llamactl.devtools.tiny_model import write_tiny_model

OWN_PORTS = (36000, 36499)
INSTANCE_PORTS = (36500, 36999)
INSTANCE = "bench"
START_TIMEOUT = 60.0
HERE = Path(__file__).resolve().parent
SLOW_HEAD = b"GET /api/instances HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000
BODY = json.dumps({"model": INSTANCE, "prompt": "hi", "max_tokens": 4}).encode()


def raise_open_files(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Attack:
    """``count`` connections that each send a head a byte at a time, reopened when closed."""

    def __init__(self, port: int, count: int, every: float):
        self.port, self.count, self.every = port, count, every
        self.open = 0
        self.closed_by_server: list[float] = []  # how long each lived
        self.failed_connects = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._one(i)) for i in range(self.count)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _one(self, index: int) -> None:
        await asyncio.sleep(index * 0.002)  # not all in one burst of accepts
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.failed_connects += 1
                await asyncio.sleep(self.every)
                continue
            self.open += 1
            began = time.monotonic()
            try:
                for byte in range(len(SLOW_HEAD)):
                    writer.write(SLOW_HEAD[byte:byte + 1])
                    try:
                        if await asyncio.wait_for(reader.read(1024), self.every) == b"":
                            break  # closed by llamactl
                    except TimeoutError:
                        continue
                self.closed_by_server.append(time.monotonic() - began)
            except (ConnectionError, OSError):
                self.closed_by_server.append(time.monotonic() - began)
            finally:
                self.open -= 1
                writer.close()


async def timed(count: int, request: Any) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        status = await request()
        if status != 200:
            raise BenchError(f"answer {status}")
        samples.append(time.perf_counter() - began)
    return samples


async def on_a_new_connection(port: int) -> int:
    """``GET /api/instances`` on a connection of its own (a raw one: an HTTP client's own
    setup would dwarf what is measured)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /api/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    return int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else 0


async def measure(base: str, port: int, count: int) -> dict[str, dict[str, float]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as api, \
            httpx.AsyncClient(base_url=base, timeout=30) as v1:
        async def keep_alive_api() -> int:
            return (await api.get("/api/instances")).status_code

        async def completion() -> int:
            return (await v1.post("/v1/completions", content=BODY,
                                  headers={"content-type": "application/json"})).status_code

        return {
            "api": percentiles(await timed(count, keep_alive_api)),
            "api-new": percentiles(await timed(count, lambda: on_a_new_connection(port))),
            "v1": percentiles(await timed(count, completion)),
        }


async def attack_and_measure(args: argparse.Namespace, base: str, port: int,
                             server: psutil.Process) -> dict[str, Any]:
    quiet = await measure(base, port, args.requests)
    print(f"quiet: measured; opening {args.connections} slow connections", file=sys.stderr)
    attack = Attack(port, args.connections, args.byte_every)
    attack.start()
    try:
        deadline = time.monotonic() + 60
        while attack.open < args.connections * 0.95 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        held = attack.open
        print(f"slowloris: {held} open; measuring", file=sys.stderr)
        cpu_before = sum(server.cpu_times()[:2])
        began = time.monotonic()
        loud = await measure(base, port, args.requests)
        cpu = (sum(server.cpu_times()[:2]) - cpu_before) / (time.monotonic() - began)
        held_after = attack.open
        if args.hold_after:
            await asyncio.sleep(args.hold_after)
    finally:
        await attack.stop()
    lived = sorted(attack.closed_by_server)
    return {"quiet": quiet, "slowloris": loud, "held_at_start": held,
            "held_at_end": held_after, "closed_by_llamactl": len(lived),
            "lived_p50_s": lived[len(lived) // 2] if lived else None,
            "failed_connects": attack.failed_connects, "llamactl_cpu_pct": cpu * 100,
            "llamactl_rss_mb": server.memory_info().rss / 2**20}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    limit = raise_open_files(args.connections + 512)
    taken: set[int] = set()
    port = pick_port(*OWN_PORTS, taken)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": {"llama_cpp": {"command": [sys.executable, str(HERE / "instant_upstream.py")]}},
        "instances": {"port_range": list(INSTANCE_PORTS)},
        "rate_limit": {"enabled": False},
        "server": {"max_connections": args.connections + 200,
                   "header_timeout": args.header_timeout},
    }))
    (work / "data").mkdir()
    log = work / "llamactl.out"
    process = spawn([sys.executable, "-m", "llamactl", "serve", "--port", str(port),
                     "--config", str(config), "--data-dir", str(work / "data")], log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(answers_200(f"{base}/api/instances", process, log), START_TIMEOUT, "llamactl")
        model = write_tiny_model(work / "tiny.gguf", seed=7)
        with httpx.Client(base_url=f"{base}/api", timeout=START_TIMEOUT) as api:
            api.post("/instances", json={"name": INSTANCE, "model_path": str(model)})
            started = api.post(f"/instances/{INSTANCE}/start", params={"wait": "true"})
            if started.status_code != 200:
                raise BenchError(f"start: {started.status_code} {started.text[:300]}")
        print("llamactl and its instance are up", file=sys.stderr)
        result = asyncio.run(attack_and_measure(args, base, port, psutil.Process(process.pid)))
    finally:
        stop_group(process, grace=15)
    result["args"] = vars(args)
    result["bench_open_files"] = limit
    return result


def report(result: dict[str, Any]) -> None:
    args = result["args"]
    print(f"slowloris: {args['connections']} connections, a byte every {args['byte_every']} s, "
          f"header_timeout {args['header_timeout']} s; {args['requests']} requests per kind")
    print(f"{'kind':8} {'quiet p50':>10} {'quiet p99':>10} {'attack p50':>11} {'attack p99':>11}")
    for kind in ("api", "api-new", "v1"):
        quiet, loud = result["quiet"][kind], result["slowloris"][kind]
        print(f"{kind:8} {quiet['p50']:10.2f} {quiet['p99']:10.2f} {loud['p50']:11.2f} "
              f"{loud['p99']:11.2f}")
    print(f"attack connections open: {result['held_at_start']} when measuring began, "
          f"{result['held_at_end']} at its end; closed by llamactl: "
          f"{result['closed_by_llamactl']} (after {result['lived_p50_s']} s at p50); "
          f"failed connects {result['failed_connects']}")
    print(f"llamactl: {result['llamactl_cpu_pct']:.0f} % of a core while measuring under attack, "
          f"RSS {result['llamactl_rss_mb']:.0f} MB")
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--byte-every", type=float, default=2.0)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--hold-after", type=float, default=0.0,
                        help="seconds to keep attacking after the measurements")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    return run_in_workdir("slowloris", args.keep, lambda work: run(args, work), report,
                          (BenchError, OSError))


if __name__ == "__main__":
    sys.exit(main())
