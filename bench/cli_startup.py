"""How long the ``llamactl`` command takes to start: ``--help`` and ``instances list``.

Every call of the command line pays for its imports before it does anything. Timed here, each
``--runs`` times in turns (so that drift hits all alike), as wall time from exec to exit:

- ``python -c pass``: the interpreter alone, the baseline;
- ``python -c "import llamactl.cli"``: what the command imports before it parses arguments;
- ``llamactl --help``;
- ``llamactl instances list`` against a real ``llamactl serve`` (empty data dir) that this
  benchmark starts on loopback and stops at the end;
- the same two from ``llamactl-client`` installed alone into a fresh venv (its wheel built
  here, its dependencies from pip's cache): what a user of the command line has. The
  development venv also holds ``rich`` (schemathesis needs it), which httpx imports for its
  own command line (~35 ms); a user's install does not.

Then ``python -X importtime`` of ``--help`` and of ``instances list``: the five costliest
imports of each (cumulative microseconds), to say where the time goes.

Goal (issue 12): ``--help`` and ``instances list`` at p50 under 0.2 s, as installed by a user
(``llamactl-client``). The last line,
prefixed ``RESULT``, is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
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

GOAL_MS = 200
PORTS = (18600, 18699)


def command_line() -> list[str]:
    script = Path(sys.executable).parent / "llamactl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "llamactl"]


def time_once(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise BenchError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return took


def costliest_imports(argv: list[str], env: dict[str, str], count: int = 5) -> list[list[Any]]:
    """The ``count`` top-level imports with the largest cumulative time, in microseconds."""
    done = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    rows = []
    for line in done.stderr.decode().splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[12:].split("|"))
        if cumulative.isdigit() and not name.startswith(" ") and "." not in name.strip():
            rows.append([name.strip(), int(cumulative)])
    return sorted(rows, key=lambda row: -row[1])[:count]


def client_alone(work: Path) -> Path:
    """``llamactl-client`` alone in a fresh venv under ``work``: its ``llamactl`` command."""
    root = Path(__file__).resolve().parent.parent
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels, house, venv = work / "wheels", work / "wheelhouse", work / "client-venv"
    steps = [
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
         str(root / "clients" / "python")],
        [*pip, "download", "-d", str(house), "--find-links", str(wheels), "llamactl-client"],
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-index",
         "--find-links", str(house), "llamactl-client"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(step[:6])} ...: {done.stderr[-500:]}")
    return venv / "bin" / "llamactl"


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMACTL_")}
    env["XDG_CONFIG_HOME"] = str(work / "config-home")  # no saved token from the user's home
    port = pick_port(*PORTS, set())
    config = work / "config.yaml"
    config.write_text("{}\n")
    server = spawn([sys.executable, "-m", "llamactl", "serve", "--port", str(port),
                    "--config", str(config), "--data-dir", str(work / "data")],
                   work / "llamactl.out", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(answers_200(f"{url}/api/instances", server, work / "llamactl.out"), 30,
                 "llamactl to answer")
        llamactl, alone = command_line(), str(client_alone(work))
        targets = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import llamactl.cli": [sys.executable, "-c", "import llamactl.cli"],
            "llamactl --help": [alone, "--help"],
            "llamactl instances list": [alone, "instances", "list", "--url", url],
            "dev venv: --help": [*llamactl, "--help"],
            "dev venv: instances list": [*llamactl, "instances", "list", "--url", url],
        }
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.runs):
            for name, argv in targets.items():
                samples[name].append(time_once(argv, env))
        imports = {name: costliest_imports(targets[name], env)
                   for name in ("llamactl --help", "llamactl instances list",
                                "dev venv: instances list")}
    finally:
        stop_group(server)
    return {
        "runs": args.runs,
        "ms": {name: percentiles(values) for name, values in samples.items()},
        "imports_us": imports,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
    }


def report(result: dict[str, Any]) -> None:
    ms = result["ms"]
    base = ms["python -c pass"]["p50"]
    print(f"llamactl command-line start time, {result['runs']} runs each "
          f"({result['machine']['cpus']} CPUs, load {result['machine']['loadavg_1m']:.2f})")
    header = f"{'command':<26} {'p50 ms':>7} {'p99 ms':>7} {'x base':>7} {'+base ms':>8}"
    print(header)
    print("-" * len(header))
    for name, row in ms.items():
        print(f"{name:<26} {row['p50']:>7.1f} {row['p99']:>7.1f} {row['p50'] / base:>7.2f} "
              f"{row['p50'] - base:>+8.1f}")
    for name, rows in result["imports_us"].items():
        costs = ", ".join(f"{module} {micros / 1000:.0f} ms" for module, micros in rows)
        print(f"costliest imports of {name}: {costs}")
    goals = {name: ms[name]["p50"] < GOAL_MS
             for name in ("llamactl --help", "llamactl instances list")}
    for name, ok in goals.items():
        print(f"{verdict(ok)}  {name} p50 {ms[name]['p50']:.0f} ms < {GOAL_MS} ms")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each command")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    return run_in_workdir("cli", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    sys.exit(main())
