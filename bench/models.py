"""``GET /api/models`` with a thousand GGUF files on disk (issue 33: <= 50 ms after the first
scan), and ``/v1`` while a pull runs (issue 33: pulls never slow ``/v1``).

What it measures
----------------
A real ``llamactl serve`` (subprocess, temporary data dir, rate limits off) whose library
folder holds N model files (default 1000: hard links to one tiny model in 20 folders, so the
disk holds one model's bytes). With one keep-alive client, strictly sequential:

* the first ``GET /api/models``: every header read (and ``gguf`` imported);
* ``GET /api/models`` again, ``--requests`` times: a walk of the folders, nothing read;
* after one file is replaced, the next listing: one header read again.

Baseline, in the same run: ``GET /api/instances`` on the same
server with no instances (the client, loopback and uvicorn's cost alone).

Goal: the listing's p50 <= 50 ms after the first scan, printed as PASS or MISS; the last line,
``RESULT {json}``, holds every number.

Usage::

    .venv/bin/python bench/models.py [--files 1000] [--requests 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' stand-in Hub
from _common import (
    BenchError,
    answers_200,
    default_llama_server,
    percentiles,
    pick_port,
    run_in_workdir,
    spawn,
    stop_group,
    verdict,
    wait_for,
)
from tests.support.stand_in_hub import StandInHub

SERVER_PORTS = (38000, 38099)
INSTANCE_PORTS = (38100, 38199)
GOAL_V1_RATIO = 1.2
START_TIMEOUT = 30.0
GOAL_LIST_P50_MS = 50.0
FOLDERS = 20


def lay_out_files(library: Path, count: int) -> Path:
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(library.parent / "source" / "tiny.gguf")
    for index in range(count):
        folder = library / f"user{index % FOLDERS:02d}" / "repo-GGUF"
        folder.mkdir(parents=True, exist_ok=True)
        os.link(model, folder / f"model-{index:04d}-Q4_K_M.gguf")
    return model


def timed(client: httpx.Client, url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        answer = client.get(url)
        samples.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise BenchError(f"{url}: {answer.status_code} {answer.text[:300]}")
    return samples


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    library = work / "library"
    model = lay_out_files(library, args.files)
    port = pick_port(*SERVER_PORTS, set())
    config = work / "config.yaml"
    hub = StandInHub().start()
    hub.add("bench/big-GGUF", "big-Q8_0.gguf", os.urandom(args.pull_mib << 20))
    hub.rate = args.pull_mib_per_s * (1 << 20)
    config.write_text(yaml.safe_dump({
        "backends": {"llama_cpp": {"command": args.llama_server}},
        "instances": {"port_range": list(INSTANCE_PORTS)},
        "rate_limit": {"enabled": False},
        "models": {"dir": str(library), "hub_url": hub.url}}))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        server = spawn([sys.executable, "-m", "llamactl", "serve", "--port", str(port),
                        "--config", str(config), "--data-dir", str(work / "data")],
                       work / "llamactl.out")
        processes.append(server)
        api = f"http://127.0.0.1:{port}/api"
        wait_for(answers_200(f"{api}/instances", server, work / "llamactl.out"),
                 START_TIMEOUT, "llamactl to answer")
        with httpx.Client(timeout=300) as client:
            first = timed(client, f"{api}/models", 1)[0]
            listed = client.get(f"{api}/models").json()["models"]
            if len(listed) != args.files or any(m["error"] for m in listed):
                raise BenchError(f"listed {len(listed)} models, some with errors")
            base = timed(client, f"{api}/instances", args.requests)
            again = timed(client, f"{api}/models", args.requests)
            changed = library / "user00" / "repo-GGUF" / "model-0000-Q4_K_M.gguf"
            changed.unlink()
            shutil.copy(model, changed)
            after_change = timed(client, f"{api}/models", 1)[0]
            base_after = timed(client, f"{api}/instances", args.requests // 2)
            v1 = v1_during_pull(client, api, model, args.requests)
    finally:
        for process in processes:
            stop_group(process, grace=10)
        hub.stop()
    return {"files": args.files, "first_scan_ms": first * 1000,
            "list": percentiles(again), "one_changed_ms": after_change * 1000,
            "baseline": percentiles(base), "baseline_after": percentiles(base_after), **v1}


def chat(client: httpx.Client, v1: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        answer = client.post(f"{v1}/chat/completions", json={
            "model": "tiny", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]})
        samples.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise BenchError(f"/v1: {answer.status_code} {answer.text[:300]}")
    return samples


def v1_during_pull(client: httpx.Client, api: str, model: Path, count: int) -> dict[str, Any]:
    v1 = api.removesuffix("/api") + "/v1"
    created = client.post(f"{api}/instances", json={"name": "tiny", "model_path": str(model),
                                                   "options": {"context_size": 256}})
    if created.status_code != 201:
        raise BenchError(f"create: {created.text[:300]}")
    client.post(f"{api}/instances/tiny/start", params={"wait": "true"})
    chat(client, v1, 10)  # warm
    idle = chat(client, v1, count)
    job = client.post(f"{api}/models/pull", json={"source": "bench/big-GGUF:Q8_0"}).json()
    during: list[float] = []
    while client.get(f"{api}/models/pulls/{job['id']}").json()["status"] in (
            "queued", "downloading", "verifying"):
        during += chat(client, v1, 5)
    final = client.get(f"{api}/models/pulls/{job['id']}").json()
    if final["status"] != "done" or len(during) < 10:
        raise BenchError(f"pull {final['status']} after {len(during)} requests: {final}")
    return {"v1_idle": percentiles(idle), "v1_during_pull": percentiles(during),
            "pull_bytes": final["bytes_total"]}


def report(result: dict[str, Any]) -> None:
    listing, base = result["list"], result["baseline"]
    print(f"{result['files']} model files")
    print(f"  first listing (every header read): {result['first_scan_ms']:.0f} ms")
    print(f"  listing after it: p50 {listing['p50']:.1f} ms, p99 {listing['p99']:.1f} ms "
          f"(baseline p50 {base['p50']:.1f} ms, after {result['baseline_after']['p50']:.1f})"
          f"  goal <= {GOAL_LIST_P50_MS:.0f} ms: {verdict(listing['p50'] <= GOAL_LIST_P50_MS)}")
    print(f"  listing after one file changed: {result['one_changed_ms']:.1f} ms")
    idle, during = result["v1_idle"], result["v1_during_pull"]
    ratio = during["p50"] / idle["p50"]
    print(f"/v1 chat (1 token): p50 {idle['p50']:.1f} ms idle, {during['p50']:.1f} ms during a "
          f"pull of {result['pull_bytes'] >> 20} MiB ({int(during['n'])} requests): {ratio:.2f}x"
          f"  goal <= {GOAL_V1_RATIO}x: {verdict(ratio <= GOAL_V1_RATIO)}")
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--pull-mib", type=int, default=256, help="the pulled file's size")
    parser.add_argument("--pull-mib-per-s", type=int, default=64, help="the Hub's pace")
    parser.add_argument("--llama-server", default=default_llama_server())
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    return run_in_workdir("models", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
