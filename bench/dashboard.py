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

- Requests in a row before the table (from the page's resource timing, each request's depth:
  1 + the deepest of those that had ended before it started; the page is 1): the depth of
  ``/api/instances``, the count that no timing changes (issue 34's first-load work: 4 before,
  3 now: the page, boot.js, the instances).
- Activity view: ``--records`` (10,000) records written into the ledger before llamactl starts
  (through the store, as bench/activity.py does); ``--views`` (5) times, from following the
  Activity link on the Instances view to its table's rows in the document (a
  MutationObserver in the page, ``performance.now()``).
- Playground: an instance of the tiny model, ``--answers`` (5) chat answers streamed through
  the view; for each, the time from the arrival at the browser of the data that carried the
  first token (the last CDP ``Network.dataReceived`` of the request before it showed; the
  page's clock and CDP's matched by the request's ``wallTime``) to that token in the
  Conversation log (a MutationObserver, ``performance.timeOrigin + performance.now()``).

Goals (issues 17 and 34): under 150 KB transferred, table in under 300 ms, row within 200 ms,
Activity with 10,000 records within 500 ms, first token on screen within 50 ms of arriving.
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
GOAL_ACTIVITY_MS, GOAL_TOKEN_MS = 500, 50
TINY = "bench-tiny"
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


# Each request's depth on the first load (see the docstring): the instances' is the figure.
CHAIN = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const all = [{name: "page", end: nav.responseEnd, depth: 1}];
  const resources = performance.getEntriesByType("resource");
  for (const r of resources.sort((a, b) => a.startTime - b.startTime)) {
    const before = all.filter((q) => q.end <= r.startTime).map((q) => q.depth).concat([1]);
    all.push({name: new URL(r.name).pathname, end: r.responseEnd, depth: 1 + Math.max(...before)});
  }
  return all.find((r) => r.name === "/api/instances").depth;
}"""

# The Activity view: performance.now() when its table first holds rows after the link is followed.
WATCH_ACTIVITY = """() => new Promise((done) => {
  const body = document.querySelector("#activity-list tbody");
  body.replaceChildren();
  const seen = new MutationObserver(() => {
    if (body.childElementCount) { seen.disconnect(); done(performance.now() - window.benchAt); }
  });
  seen.observe(body, {childList: true});
  window.benchAt = performance.now();
  document.querySelector('#views a[data-view="activity"]').click();
})"""

# The Playground: when the answer's first text shows in the Conversation log (epoch ms).
WATCH_TOKEN = """() => {
  window.benchToken = null;
  const log = document.querySelector("#pg-log");
  const seen = new MutationObserver(() => {
    const text = log.querySelector(".msg-assistant .msg-text");
    if (text && text.textContent) {
      window.benchToken = performance.timeOrigin + performance.now(); seen.disconnect();
    }
  });
  seen.observe(log, {subtree: true, childList: true, characterData: true});
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


def first_load(browser: Browser, url: str, count: int) -> tuple[int, int, float, int, int]:
    """A fresh context (empty cache): wire bytes, decoded bytes, ms to the table; then the
    same page loaded again (assets from the cache): wire bytes; the instances' depth."""
    context = browser.new_context()
    page = context.new_page()
    answers: list[Any] = []
    page.on("requestfinished", lambda request: answers.append(request))
    page.goto(url + "/")
    page.wait_for_selector(f"#instances tbody tr:nth-child({count})")
    table_ms = page.evaluate(
        "performance.getEntriesByName('llamactl:table')[0].startTime")
    depth = int(page.evaluate(CHAIN))
    page.wait_for_load_state("networkidle")
    wire, decoded = load_sizes(answers)
    answers.clear()
    page.goto(url + "/")
    page.wait_for_selector(f"#instances tbody tr:nth-child({count})")
    page.wait_for_load_state("networkidle")
    again, _ = load_sizes(answers)
    context.close()
    return wire, decoded, float(table_ms), again, depth


def activity_times(browser: Browser, url: str, views: int) -> list[float]:
    """ms from following the Activity link (on the Instances view) to its rows shown."""
    page = browser.new_page()
    times = []
    for _ in range(views):
        page.goto(url + "/#/instances")
        page.wait_for_selector("#instances tbody tr")
        times.append(float(page.evaluate(WATCH_ACTIVITY)))
    page.close()
    return times


def token_delays(browser: Browser, url: str, answers: int) -> list[float]:
    """Per answer: ms from the first token's data at the browser to it on screen."""
    page = browser.new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    wall: dict[str, float] = {}  # requestId -> wallTime - timestamp (s)
    received: dict[str, list[float]] = {}  # requestId -> arrivals, epoch ms
    cdp.on("Network.requestWillBeSent", lambda e: wall.__setitem__(
        e["requestId"], e["wallTime"] - e["timestamp"]) if e["request"]["url"].endswith(
        "/v1/chat/completions") else None)
    cdp.on("Network.dataReceived", lambda e: received.setdefault(e["requestId"], []).append(
        (e["timestamp"] + wall[e["requestId"]]) * 1000) if e["requestId"] in wall else None)
    page.goto(url + "/#/playground")
    page.locator(f'#pg-model option[value="{TINY}"]').wait_for(state="attached")
    delays = []
    for n in range(answers):
        page.click("#pg-clear")
        page.select_option("#pg-model", TINY)
        page.fill("#pg-message", f"Tell me a story, number {n}")
        # short answers (the Parameters group stays folded)
        page.evaluate("document.querySelector('#pg-form [name=max_tokens]').value = '32'")
        page.evaluate(WATCH_TOKEN)
        wall.clear()
        received.clear()
        page.click("#pg-send")
        page.wait_for_function(
            "() => document.querySelector('#pg-stats').textContent.includes('tokens/s')",
            timeout=120_000)
        shown = page.evaluate("window.benchToken")
        arrivals = [t for times in received.values() for t in times if t <= shown]
        if shown is None or not arrivals:
            raise BenchError("the first token never showed, or no data arrived before it")
        delays.append(shown - max(arrivals))
    page.close()
    return delays


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


def start_tiny(api: httpx.Client, work: Path) -> None:
    """The Playground's model: an instance of the tiny model, running."""
    from llamactl.devtools.tiny_model import write_tiny_model

    model = write_tiny_model(work / "models" / "tiny.gguf")
    api.post("/api/instances", json={"name": TINY, "model_path": str(model),
                                     "options": {"context_size": 512}}).raise_for_status()
    api.post(f"/api/instances/{TINY}/start", params={"wait": "true"}).raise_for_status()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from activity import fill  # the ledger's records, through the store

    model = write_unloadable_model(work / "broken.gguf")
    fill(work / "data" / "llamactl.db", args.records)
    server, url = serve_llamactl(work, PORTS)
    try:
        names = [f"bench-{i:03d}" for i in range(args.instances)]
        with httpx.Client(base_url=url, timeout=120) as api:
            for name in names:
                api.post("/api/instances", json={"name": name, "model_path": str(model),
                                                 "group": "bench"}).raise_for_status()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                loads = [first_load(browser, url, len(names)) for _ in range(args.loads)]
                delays = event_delays(browser, url, names[:args.starts])
                activity = activity_times(browser, url, args.views)
                start_tiny(api, work)
                tokens = token_delays(browser, url, args.answers)
                browser.close()
    finally:
        stop_group(server)
    return {
        "instances": args.instances, "loads": args.loads, "starts": args.starts,
        "records": args.records, "views": args.views, "answers": args.answers,
        # percentiles() takes seconds and answers milliseconds.
        "bytes": [load[0] for load in loads], "decoded_bytes": [load[1] for load in loads],
        "repeat_bytes": [load[3] for load in loads], "depths": [load[4] for load in loads],
        "table_ms": percentiles([load[2] / 1000 for load in loads]),
        "event_to_row_ms": percentiles([d / 1000 for d in delays]),
        "activity_ms": percentiles([t / 1000 for t in activity]),
        "token_ms": percentiles([t / 1000 for t in tokens]),
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
    print(f"requests in a row before the table (the instances' depth): "
          f"{max(result['depths'])} (largest of {result['loads']})")
    print(f"load again, same browser: {repeat_kb:.1f} KB transferred (assets from its cache)")
    print(f"event to row ({row['n']} status events, {result['starts']} starts): "
          f"p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms, max {row['max']:.1f} ms")
    activity, token = result["activity_ms"], result["token_ms"]
    print(f"Activity view, {result['records']:,} records ({result['views']} times): "
          f"p50 {activity['p50']:.0f} ms, max {activity['max']:.0f} ms")
    print(f"Playground, first token arrived to shown ({result['answers']} answers): "
          f"p50 {token['p50']:.1f} ms, max {token['max']:.1f} ms")
    goals = {"bytes": kb < GOAL_KB, "table": table["p50"] < GOAL_TABLE_MS,
             "row": row["p99"] < GOAL_ROW_MS, "activity": activity["max"] <= GOAL_ACTIVITY_MS,
             "token": token["max"] <= GOAL_TOKEN_MS}
    print(f"{verdict(goals['bytes'])}  first load {kb:.1f} KB < {GOAL_KB} KB")
    print(f"{verdict(goals['table'])}  table shown p50 {table['p50']:.0f} ms < {GOAL_TABLE_MS} ms")
    print(f"{verdict(goals['row'])}  event to row p99 {row['p99']:.1f} ms < {GOAL_ROW_MS} ms")
    print(f"{verdict(goals['activity'])}  Activity view, {result['records']:,} records, max "
          f"{activity['max']:.0f} ms <= {GOAL_ACTIVITY_MS} ms")
    print(f"{verdict(goals['token'])}  first token on screen, max {token['max']:.1f} ms after "
          f"its arrival <= {GOAL_TOKEN_MS} ms")
    result["goals"] = goals
    print("RESULT " + json.dumps(result, sort_keys=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--loads", type=int, default=5, help="first loads, each a new context")
    parser.add_argument("--starts", type=int, default=20, help="instances started (and failing)")
    parser.add_argument("--records", type=int, default=10_000, help="ledger records")
    parser.add_argument("--views", type=int, default=5, help="times the Activity view is shown")
    parser.add_argument("--answers", type=int, default=5, help="Playground answers streamed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    return run_in_workdir("dashboard", args.keep, lambda work: run(args, work), report,
                          (BenchError, httpx.HTTPError, OSError))


if __name__ == "__main__":
    sys.exit(main())
