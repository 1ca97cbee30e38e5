"""Lighthouse 12 on the dashboard's Instances, Activity and Playground views (issue 34).

A real ``llamactl serve`` (auth off) with ``--instances`` instances (100) whose model llama-server
cannot load, one more running the tiny model, and ``--requests`` (50) completions through its
``/v1`` so that the Activity view has records and the Playground a model. Then Lighthouse
(npm ``lighthouse@12.2.3``, installed into bench/node_modules by ``npm ci --prefix bench``)
with Debian's chromium, headless, its default mobile profile (simulated throttling: a 4x
slower CPU and a slow 4G network; ``--desktop`` for its desktop one), on each
view's URL, ``--runs`` (3) times; the median run per view (by performance score) is reported.

Printed per view: performance, accessibility and best-practices scores, each against its goal
(performance >= 95, accessibility 100, best practices >= 95) as PASS/MISS, and the audits that
cost points (score below 1), so that a MISS says what to fix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from _common import (
    BenchError,
    run_in_workdir,
    serve_llamactl,
    spawn,
    stop_group,
    verdict,
    write_unloadable_model,
)

HERE = Path(__file__).resolve().parent
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
PORTS = (18800, 18899)
VIEWS = {"Instances": "/#/instances", "Activity": "/#/activity", "Playground": "/#/playground"}
CATEGORIES = ("performance", "accessibility", "best-practices")
GOALS = {"performance": 95, "accessibility": 100, "best-practices": 95}
RUNNING = "bench-tiny"
RUN_TIMEOUT = 180.0


def lighthouse(url: str, out: Path, desktop: bool) -> dict[str, Any]:
    """One Lighthouse run (its own process group, stopped whatever happens): its JSON report."""
    argv = [str(LIGHTHOUSE), url, "--output=json", f"--output-path={out}", "--quiet",
            "--only-categories=" + ",".join(CATEGORIES),
            "--chrome-flags=--headless=new --no-sandbox --disable-dev-shm-usage",
            *(["--preset=desktop"] if desktop else [])]
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    process = spawn(argv, out.with_suffix(".log"), env=env)
    try:
        code = process.wait(timeout=RUN_TIMEOUT)
    finally:
        stop_group(process, grace=5)
    if code != 0 or not out.exists():
        log = out.with_suffix(".log").read_text(errors="replace")[-800:]
        raise BenchError(f"lighthouse exited {code} on {url}: {log}")
    report: dict[str, Any] = json.loads(out.read_text())
    if report.get("runtimeError"):
        raise BenchError(f"lighthouse on {url}: {report['runtimeError']}")
    return report


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """Scores out of 100, and the weighted audits that lost points in each category."""
    scores, lost = {}, {}
    for name in CATEGORIES:
        category = report["categories"][name]
        scores[name] = round((category["score"] or 0) * 100)
        lost[name] = [
            f"{ref['id']} ({report['audits'][ref['id']]['score']})"
            for ref in category["auditRefs"]
            if ref["weight"] > 0 and report["audits"][ref["id"]]["score"] is not None
            and report["audits"][ref["id"]]["score"] < 1]
    return {"scores": scores, "lost": lost}


def populate(url: str, model: Path, broken: Path, instances: int, requests: int) -> None:
    with httpx.Client(base_url=url, timeout=120) as api:
        for i in range(instances):
            api.post("/api/instances", json={"name": f"bench-{i:03d}", "model_path": str(broken),
                                             "group": "bench"}).raise_for_status()
        api.post("/api/instances", json={"name": RUNNING, "model_path": str(model),
                                         "options": {"context_size": 256}}).raise_for_status()
        api.post(f"/api/instances/{RUNNING}/start", params={"wait": "true"}).raise_for_status()
        for i in range(requests):
            api.post("/v1/completions", json={"model": RUNNING, "prompt": f"Hello {i}",
                                              "max_tokens": 4}).raise_for_status()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if not LIGHTHOUSE.exists():
        raise BenchError(f"{LIGHTHOUSE} is missing: run `npm ci --prefix bench` first")
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    broken = write_unloadable_model(work / "broken.gguf")
    server, url = serve_llamactl(work, PORTS)
    views: dict[str, Any] = {}
    try:
        populate(url, model, broken, args.instances, args.requests)
        for view, path in VIEWS.items():
            runs = [summary(lighthouse(url + path, work / f"{view}-{i}.json", args.desktop))
                    for i in range(args.runs)]
            runs.sort(key=lambda r: r["scores"]["performance"])
            views[view] = {**runs[len(runs) // 2],
                           "performance_runs": [r["scores"]["performance"] for r in runs]}
    finally:
        stop_group(server)
    return {"instances": args.instances, "requests": args.requests, "runs": args.runs,
            "profile": "desktop" if args.desktop else "mobile",
            "views": views,
            "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]}}


def report(result: dict[str, Any]) -> None:
    print(f"Lighthouse 12 ({result['profile']}) on the dashboard, {result['instances']} "
          f"instances, median of "
          f"{result['runs']} runs ({result['machine']['cpus']} CPUs, "
          f"load {result['machine']['loadavg_1m']:.2f})")
    goals: dict[str, bool] = {}
    for view, found in result["views"].items():
        runs = ", ".join(str(s) for s in found["performance_runs"])
        print(f"{view}: performance runs {runs}")
        for name in CATEGORIES:
            score, goal = found["scores"][name], GOALS[name]
            goals[f"{view} {name}"] = score >= goal
            lost = "; lost points: " + ", ".join(found["lost"][name]) if found["lost"][name] else ""
            print(f"  {verdict(score >= goal)}  {name} {score} (goal >= {goal}){lost}")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50, help="completions in the ledger")
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per view")
    parser.add_argument("--desktop", action="store_true",
                        help="Lighthouse's desktop profile (no CPU slowdown, wired network)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    return run_in_workdir("lighthouse", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    sys.exit(main())
