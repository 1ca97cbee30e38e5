"""The performance goals of issue 29, checked in one go: run before a change lands.

Runs ``gateway.py``, ``api.py`` and ``lifecycle.py`` one after the other (short forms by
default, ``--full`` for their default runs), reads the ``RESULT {json}`` line each prints, and
prints every goal PASS or MISS against the baseline measured in the same run:

* gateway (b), instant upstream: llamactl's CPU per request <= 2x nginx's; its throughput
  ratio to direct >= nginx's; its added p50 <= nginx's + 0.03 ms;
* gateway (a), real llama-server: a stream's first byte added <= nginx's + 0.1 ms;
* api: ``GET /api/instances`` with 1,000 instances, p50 <= 3 ms (and its ratio to a raw
  ASGI answer of the same size, for context);
* lifecycle: watching 20 running instances < 0.5 % of a core and < 80 MB.

Timings do not belong in the test command: this is for people, on a machine as quiet as they
can get (every figure shares the same cores with what it measures). Exit status 0 when every
benchmark ran (goals may be missed), 1 when one broke.

    .venv/bin/python bench/check.py [--full] [--only gateway,api,lifecycle]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHORT = {
    "gateway": ["--rounds", "1", "--requests", "300", "--instant-requests", "1500",
                "--stream-requests", "150", "--duration", "4"],
    "api": ["--list-requests", "150", "--get-requests", "600"],
    "lifecycle": ["--repeats", "5", "--window", "30", "--idle-window", "10"],
}
Goal = tuple[str, bool | None, str]


def run(name: str, full: bool) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / f"{name}.py"), *([] if full else SHORT[name])]
    print(f"running {' '.join(argv[1:])}", flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        tail = (done.stdout + done.stderr)[-1500:]
        raise RuntimeError(f"{name}.py broke (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(results[-1][len("RESULT "):])
    return result


def gateway_goals(result: dict[str, Any]) -> list[Goal]:
    instant = result["phases"]["instant"]["targets"]
    llama = result["phases"]["llama"]["targets"]
    if "nginx" not in instant:
        return [("gateway: against nginx", None, "no nginx column (apt-get install nginx)")]
    direct, ctl, nginx = instant["direct"], instant["llamactl"], instant["nginx"]
    cpu = ctl["proxy_cpu_us_per_request"] / max(nginx["proxy_cpu_us_per_request"], 1e-9)
    ctl_ratio, nginx_ratio = ctl["rps"] / direct["rps"], nginx["rps"] / direct["rps"]
    ctl_added = ctl["latency"]["p50"] - direct["latency"]["p50"]
    nginx_added = nginx["latency"]["p50"] - direct["latency"]["p50"]
    first = llama["llamactl"]["ttfb"]["p50"] - llama["direct"]["ttfb"]["p50"]
    nginx_first = llama["nginx"]["ttfb"]["p50"] - llama["direct"]["ttfb"]["p50"]
    return [
        ("(b) CPU per request <= 2x nginx's", cpu <= 2,
         f"{ctl['proxy_cpu_us_per_request']:.0f} us vs {nginx['proxy_cpu_us_per_request']:.0f}"
         f" us: {cpu:.1f}x"),
        ("(b) throughput ratio >= nginx's", ctl_ratio >= nginx_ratio,
         f"{ctl_ratio:.2f}x direct vs nginx {nginx_ratio:.2f}x (direct {direct['rps']:.0f}/s)"),
        ("(b) added p50 <= nginx's + 0.03 ms", ctl_added <= nginx_added + 0.03,
         f"+{ctl_added:.3f} ms vs nginx +{nginx_added:.3f} ms"),
        ("(a) stream first byte <= nginx's + 0.1 ms", first <= nginx_first + 0.1,
         f"+{first:.3f} ms vs nginx +{nginx_first:.3f} ms"),
    ]


def api_goals(result: dict[str, Any]) -> list[Goal]:
    listed, base = result["list"]["p50"], result["baseline_list_size"]["p50"]
    return [("list p50 <= 3 ms (1,000 instances)", listed <= 3,
             f"{listed:.2f} ms; a raw ASGI answer of its size {base:.2f} ms "
             f"({listed / base:.1f}x)")]


def lifecycle_goals(result: dict[str, Any]) -> list[Goal]:
    watching, idle = result["watch"]["watching"], result["watch"]["idle"]
    return [
        ("watching 20 running < 0.5 % of a core", watching["cpu_pct"] < 0.5,
         f"{watching['cpu_pct']:.2f} % (idle, all stopped: {idle['cpu_pct']:.2f} %)"),
        ("watching 20 running < 80 MB", watching["rss_mb_max"] < 80,
         f"{watching['rss_mb_max']:.1f} MB"),
    ]


CHECKS: dict[str, Callable[[dict[str, Any]], list[Goal]]] = {
    "gateway": gateway_goals, "api": api_goals, "lifecycle": lifecycle_goals}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="each benchmark's default run")
    parser.add_argument("--only", default=",".join(CHECKS),
                        help="comma-separated: gateway, api, lifecycle")
    args = parser.parse_args()
    goals: list[Goal] = []
    broke = False
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in CHECKS:
            parser.error(f"unknown benchmark {name!r}")
        try:
            goals += [(f"{name}: {what}", ok, detail)
                      for what, ok, detail in CHECKS[name](run(name, args.full))]
        except (RuntimeError, KeyError) as exc:
            broke = True
            goals.append((name, None, f"broke: {exc}"))
    print("\ngoals (issue 29), each against the baseline of the same run")
    for what, ok, detail in goals:
        verdict = "SKIP" if ok is None else "PASS" if ok else "MISS"
        print(f"  {verdict}  {what}: {detail}")
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
