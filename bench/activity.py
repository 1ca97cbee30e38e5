"""The ledger's cost and the speed of reading it (issue 30).

(a) The ledger's cost on the gateway: two llamactls in front of bench/instant_upstream.py (a
    backend that answers at once, so that llamactl's own cost is all there is to see), one
    with ``activity.enabled: true`` and one with false, loaded in turns at ``--concurrency``
    (64) for ``--duration`` seconds per round: throughput and p50/p99 latency, on against off,
    and every request on record (records counted against requests answered).
(b) Reading 1,000,000 records: written straight into a fresh database through the store's
    schema (the fast way to have a million), then served by a llamactl: ``GET /api/activity``
    one page with one filter (p50 of ``--reads``), a day's ``summary?by=key``, and a full CSV
    export (records/s, and llamactl's RSS growth while it streams).

Goals (issue 30): throughput on >= 0.95x off, added p50 <= +10 us; list p50 <= 20 ms; a day's
summary <= 300 ms; export >= 100,000 records/s with flat memory.

    .venv/bin/python bench/activity.py [--records 1000000] [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from _common import (
    MB,
    BenchError,
    answers_200,
    percentiles,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)
from gateway import BODY, INSTANCE, INSTANT_UPSTREAM, new_session, run_async

OWN_PORTS = (36000, 36999)
INSTANCE_PORTS = (37000, 37999)
START_TIMEOUT = 60.0


def start_llamactl(work: Path, name: str, activity: bool, taken: set[int],
                   data: Path | None = None) -> tuple[psutil.Process, str, Any]:
    home = work / f"llamactl-{name}"
    home.mkdir(parents=True)
    data = data or home / "data"
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({
        "backends": {"llama_cpp": {"command": [sys.executable, str(INSTANT_UPSTREAM)]}},
        "instances": {"port_range": list(INSTANCE_PORTS)},
        "rate_limit": {"enabled": False},
        "activity": {"enabled": activity},
    }))
    port = pick_port(*OWN_PORTS, taken)
    log = work / f"llamactl-{name}.out"
    process = spawn([sys.executable, "-m", "llamactl", "serve", "--host", "127.0.0.1",
                     "--port", str(port), "--config", str(config), "--data-dir", str(data)],
                    log)
    base = f"http://127.0.0.1:{port}"
    wait_for(answers_200(f"{base}/api/instances", process, log), START_TIMEOUT, name)
    return psutil.Process(process.pid), base, process


def create_instance(base: str, model: Path) -> None:
    with httpx.Client(base_url=f"{base}/api", timeout=START_TIMEOUT) as api:
        created = api.post("/instances", json={"name": INSTANCE, "model_path": str(model)})
        if created.status_code != 201:
            raise BenchError(f"create: {created.status_code} {created.text[:300]}")
        started = api.post(f"/instances/{INSTANCE}/start", params={"wait": "true"})
        if started.status_code != 200:
            raise BenchError(f"start: {started.status_code} {started.text[:300]}")


async def load(url: str, concurrency: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    ok = 0
    deadline = time.perf_counter() + seconds
    async with new_session(concurrency) as session:
        async def worker() -> None:
            nonlocal ok
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                async with session.post(url, data=BODY) as response:
                    await response.read()
                if response.status == 200:
                    ok += 1
                    latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, latencies


def gateway_cost(args: argparse.Namespace, work: Path, model: Path) -> dict[str, Any]:
    taken: set[int] = set()
    started = [start_llamactl(work, name, name == "on", taken) for name in ("on", "off")]
    try:
        for _, base, _ in started:
            create_instance(base, model)
        results: dict[str, dict[str, Any]] = {"on": {"ok": 0, "seconds": 0.0, "lat": []},
                                              "off": {"ok": 0, "seconds": 0.0, "lat": []}}
        for round_ in range(args.rounds):
            order = list(zip(("on", "off"), started, strict=True))
            if round_ % 2:
                order.reverse()
            for name, (_, base, _) in order:
                url = f"{base}/v1/completions"
                run_async(load(url, args.concurrency, 0.5))  # warm-up
                ok, latencies = run_async(load(url, args.concurrency, args.duration))
                results[name]["ok"] += ok
                results[name]["seconds"] += args.duration
                results[name]["lat"] += latencies
        on_base = started[0][1]
        sent = 0
        with httpx.Client(base_url=on_base, timeout=60) as api:
            for _ in range(100):
                status = api.get("/api/system/status").json()["activity"]
                if status["pending"] == 0:
                    break
                time.sleep(0.1)
            sent = sum(v for (inst, code), v in _answered(api).items() if inst == INSTANCE)
    finally:
        for _, _, process in started:
            stop_group(process, grace=15)
    summary = {}
    for name, found in results.items():
        pct = percentiles(found["lat"])
        summary[name] = {"requests_per_s": round(found["ok"] / found["seconds"], 1),
                         "p50_ms": pct["p50"], "p99_ms": pct["p99"]}
    summary["throughput_ratio"] = round(
        summary["on"]["requests_per_s"] / summary["off"]["requests_per_s"], 3)
    summary["added_p50_us"] = round(
        (summary["on"]["p50_ms"] - summary["off"]["p50_ms"]) * 1000, 1)
    summary["recorded"] = status["written"]
    summary["answered"] = sent
    summary["dropped"] = status["dropped"]
    return summary


def _answered(api: httpx.Client) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("llamactl_gateway_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            parts = dict(part.split("=", 1) for part in labels[32:-1].split(","))
            found[(parts["instance"].strip('"'), parts["status"].strip('"'))] = float(value)
    return found


def fill(database: Path, count: int) -> float:
    """``count`` records over the last 30 days, straight through the store's schema."""
    from llamactl.activity.ledger import _insert  # the ledger's own batch insert
    from llamactl.activity.record import Record, Usage
    from llamactl.store.database import open_database

    db = open_database(database)
    began = time.perf_counter()
    now = time.time()
    rng = random.Random(30)
    keys = [f"key-{n}" for n in range(50)]
    instances = [f"model-{n}" for n in range(20)]
    batch: list[tuple[Any, ...]] = []
    for index in range(count):
        started = now - (count - index) * (30 * 86400 / count)
        instance = rng.choice(instances)
        record = Record(id=f"r{index}", started=started, kind="v1", method="POST",
                        endpoint="/v1/chat/completions", principal_kind="key",
                        principal_name=rng.choice(keys), status=200 if rng.random() > .02
                        else 429, model=instance, instance=instance, stream=True,
                        usage=Usage(prompt_tokens=rng.randint(10, 500),
                                    completion_tokens=rng.randint(1, 800),
                                    generation_tps=rng.uniform(20, 90)),
                        ttft_ms=rng.uniform(20, 300), duration_ms=rng.uniform(100, 9000),
                        client="127.0.0.1", user_agent="bench")
        batch.append(record.row())
        if len(batch) == 20000:
            _insert(db, batch)
            batch.clear()
    if batch:
        _insert(db, batch)
    db.close()
    return time.perf_counter() - began


def reading(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "million"
    data.mkdir()
    filled = fill(data / "llamactl.db", args.records)
    taken: set[int] = set()
    proc, base, process = start_llamactl(work, "reader", True, taken, data=data)
    try:
        with httpx.Client(base_url=base, timeout=600) as api:
            took: dict[str, list[float]] = {"none": [], "instance": [], "key": [], "status": []}
            queries = {"none": "", "instance": "?instance=model-3", "key": "?key=key-7",
                       "status": "?status=4xx"}
            for _ in range(args.reads):
                for name, query in queries.items():
                    began = time.perf_counter()
                    answer = api.get(f"/api/activity{query}")
                    took[name].append(time.perf_counter() - began)
                    if answer.status_code != 200 or len(answer.json()["items"]) != 100:
                        raise BenchError(f"list {query}: {answer.status_code}")
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
            began = time.perf_counter()
            summary = api.get(f"/api/activity/summary?by=key&since={since}")
            summary_s = time.perf_counter() - began
            rss_before = proc.memory_info().rss
            peak = rss_before
            rows = 0
            began = time.perf_counter()
            with api.stream("GET", "/api/activity/export?format=csv") as export:
                for _line in export.iter_lines():
                    rows += 1
                    if rows % 50000 == 0:
                        peak = max(peak, proc.memory_info().rss)
            export_s = time.perf_counter() - began
    finally:
        stop_group(process, grace=15)
    return {
        "records": args.records, "fill_seconds": round(filled, 1),
        "list_p50_ms": {name: round(statistics.median(v) * 1000, 2) for name, v in took.items()},
        "summary_day_by_key_ms": round(summary_s * 1000, 1),
        "summary_groups": len(summary.json()["groups"]),
        "export_rows": rows - 1, "export_records_per_s": round((rows - 1) / export_s),
        "export_rss_growth_mb": round((peak - rss_before) / MB, 1),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    result: dict[str, Any] = {}
    if not args.skip_gateway:
        result["gateway"] = gateway_cost(args, work, model)
    if args.records:
        result["reading"] = reading(args, work)
    return result


def report(result: dict[str, Any]) -> None:
    gateway = result.get("gateway")
    if gateway:
        print("(a) the ledger's cost on /v1 (instant upstream, on vs off, same run)")
        for name in ("on", "off"):
            g = gateway[name]
            print(f"  {name:4} {g['requests_per_s']:9.1f} req/s  p50 {g['p50_ms']:.3f} ms  "
                  f"p99 {g['p99_ms']:.3f} ms")
        print(f"  throughput ratio {gateway['throughput_ratio']}  "
              f"{verdict(gateway['throughput_ratio'] >= 0.95)} (>= 0.95)")
        print(f"  added p50 {gateway['added_p50_us']} us  "
              f"{verdict(gateway['added_p50_us'] <= 10)} (<= +10 us)")
        print(f"  recorded {gateway['recorded']} of {gateway['answered']:.0f} answered, "
              f"dropped {gateway['dropped']}")
    reading = result.get("reading")
    if reading:
        print(f"(b) reading {reading['records']:,} records (filled in "
              f"{reading['fill_seconds']} s)")
        for name, p50 in reading["list_p50_ms"].items():
            print(f"  list, filter {name:8} p50 {p50:7.2f} ms  {verdict(p50 <= 20)} (<= 20 ms)")
        s = reading["summary_day_by_key_ms"]
        print(f"  a day's summary by key {s} ms  {verdict(s <= 300)} (<= 300 ms)")
        e = reading["export_records_per_s"]
        print(f"  CSV export {reading['export_rows']:,} rows, {e:,} records/s  "
              f"{verdict(e >= 100_000)} (>= 100,000/s); RSS growth "
              f"{reading['export_rss_growth_mb']} MB")
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    return run_in_workdir("activity", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    sys.exit(main())
