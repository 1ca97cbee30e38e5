"""The dashboard at ``/`` in headless Chromium (Debian's, through Playwright).

A real ``llamactl serve`` (auth off) with ``--instances`` instances (100) whose model is a
file that llama-server cannot load. Timed:

- First load of ``/``, ``--loads`` times (5), each in a fresh browser context (empty cache):
  bytes transferred (headers and bodies of every HTTP answer, as the network saw them, gzip
  where the server compressed; the WebSocket is not counted), the same bodies once decoded,
  and the time from navigation start to the table shown (the page's ``llamactl:table``
  performance mark, set once the rows are in the document); then the page loaded again in
  the same context (versioned assets come from the browser's cache): bytes transferred.
- Event to row: ``--starts`` (20) starts of instances, each going ``starting`` then
  ``failed``; for each status event, the time from the event's own timestamp (llamactl's
  clock, the same host's) to the moment the row's status cell shows it (a MutationObserver
  in the page, ``Date.now()``).

Goals (issue 17): under 150 KB transferred, table in under 300 ms, row within 200 ms.
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
    percentiles,
    run_in_workdir,
    serve_llamactl,
    stop_group,
    verdict,
    write_unloadable_model,
)
from playwright.sync_api import Browser, sync_playwright

GOAL_KB, GOAL_TABLE_MS, GOAL_ROW_MS = 150, 300, 200
PORTS = (18800, 18899)
CHROMIUM = "/usr/bin/chromium"

# In the page: every change of a status cell, and every status event with its timestamp.
WATCH = """() => {
  window.benchSeen = [];
  new MutationObserver((changes) => {
    const now = Date.now();
    for (const c of changes) {
      const td = c.target.nodeType === 1 ? c.target : c.target.parentElement;
      const cell = td && td.closest("td.state");  // the status badge's cell
      const badge = cell && cell.querySelector(".status");
      if (badge) window.benchSeen.push([cell.parentElement.dataset.name, badge.textContent, now]);
    }
  }).observe(document.querySelector("#instances tbody"),
             {subtree: true, childList: true, characterData: true});
}"""


def load_sizes(requests: list[Any]) -> tuple[int, int]:
    """(bytes on the wire: headers and encoded bodies, bytes once decoded: bodies only)."""
    wire = decoded = 0
    for request in requests:
        sizes = request.sizes()
        wire += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        response = request.response()
        decoded += len(response.body()) if response is not None and response.status != 304 else 0
    return wire, decoded


def first_load(browser: Browser, url: str, count: int) -> tuple[int, int, float, int]:
    """A fresh context (empty cache): wire bytes, decoded bytes, ms to the table; then the
    same page loaded again (assets from the cache): wire bytes."""
    context = browser.new_context()
    page = context.new_page()
    answers: list[Any] = []
    page.on("requestfinished", lambda request: answers.append(request))
    page.goto(url + "/")
    page.wait_for_selector(f"#instances tbody tr:nth-child({count})")
    table_ms = page.evaluate(
        "performance.getEntriesByName('llamactl:table')[0].startTime")
    page.wait_for_load_state("networkidle")
    wire, decoded = load_sizes(answers)
    answers.clear()
    page.goto(url + "/")
    page.wait_for_selector(f"#instances tbody tr:nth-child({count})")
    page.wait_for_load_state("networkidle")
    again, _ = load_sizes(answers)
    context.close()
    return wire, decoded, float(table_ms), again


def event_delays(browser: Browser, url: str, names: list[str]) -> list[float]:
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_selector(f"#instances tbody tr:nth-child({len(names)})")
    page.evaluate(WATCH)
    events: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=60) as api, \
            api.stream("GET", "/api/events") as feed:
        lines = feed.iter_lines()
        for name in names:
            api.post(f"/api/instances/{name}/start").raise_for_status()
            for line in lines:
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "instance_status_changed" and event["data"]["name"] == name:
                    events.append(event)
                    if event["data"]["status"] in ("failed", "stopped", "running"):
                        break
    page.wait_for_timeout(500)
    seen = page.evaluate("window.benchSeen")
    page.close()
    return match_delays(events, seen)


def match_delays(events: list[dict[str, Any]], seen: list[list[Any]]) -> list[float]:
    from datetime import datetime

    delays = []
    for event in events:
        at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
        name, status = event["data"]["name"], event["data"]["status"]
        shown = [t for n, s, t in seen if n == name and s == status and t >= at - 1]
        if not shown:
            raise BenchError(f"{name} never showed {status}")
        delays.append(min(shown) - at)
    return delays


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model = write_unloadable_model(work / "broken.gguf")
    server, url = serve_llamactl(work, PORTS)
    try:
        names = [f"bench-{i:03d}" for i in range(args.instances)]
        with httpx.Client(base_url=url, timeout=60) as api:
            for name in names:
                api.post("/api/instances", json={"name": name, "model_path": str(model),
                                                 "group": "bench"}).raise_for_status()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            loads = [first_load(browser, url, len(names)) for _ in range(args.loads)]
            delays = event_delays(browser, url, names[:args.starts])
            browser.close()
    finally:
        stop_group(server)
    return {
        "instances": args.instances, "loads": args.loads, "starts": args.starts,
        # percentiles() takes seconds and answers milliseconds.
        "bytes": [load[0] for load in loads], "decoded_bytes": [load[1] for load in loads],
        "repeat_bytes": [load[3] for load in loads],
        "table_ms": percentiles([load[2] / 1000 for load in loads]),
        "event_to_row_ms": percentiles([d / 1000 for d in delays]),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
    }


def report(result: dict[str, Any]) -> None:
    kb = max(result["bytes"]) / 1024
    decoded_kb, repeat_kb = max(result["decoded_bytes"]) / 1024, max(result["repeat_bytes"]) / 1024
    table, row = result["table_ms"], result["event_to_row_ms"]
    print(f"dashboard, {result['instances']} instances ({result['machine']['cpus']} CPUs, "
          f"load {result['machine']['loadavg_1m']:.2f})")
    print(f"first load: {kb:.1f} KB transferred, gzip where accepted ({decoded_kb:.1f} KB "
          f"decoded; largest of {result['loads']}), table shown p50 {table['p50']:.0f} ms, "
          f"max {table['max']:.0f} ms")
    print(f"load again, same browser: {repeat_kb:.1f} KB transferred (assets from its cache)")
    print(f"event to row ({row['n']} status events, {result['starts']} starts): "
          f"p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms, max {row['max']:.1f} ms")
    goals = {"bytes": kb < GOAL_KB, "table": table["p50"] < GOAL_TABLE_MS,
             "row": row["p99"] < GOAL_ROW_MS}
    print(f"{verdict(goals['bytes'])}  first load {kb:.1f} KB < {GOAL_KB} KB")
    print(f"{verdict(goals['table'])}  table shown p50 {table['p50']:.0f} ms < {GOAL_TABLE_MS} ms")
    print(f"{verdict(goals['row'])}  event to row p99 {row['p99']:.1f} ms < {GOAL_ROW_MS} ms")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--loads", type=int, default=5, help="first loads, each a new context")
    parser.add_argument("--starts", type=int, default=20, help="instances started (and failing)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    return run_in_workdir("dashboard", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    sys.exit(main())
