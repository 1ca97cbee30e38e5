"""Nothing on the page moves while a view loads (issue 34: Lighthouse's cumulative layout
shift, part of its performance score). Each view is loaded fresh, signed in, at a phone's
width (Lighthouse's own, 412 px) and at 1280 px, with real data (a running tiny
llama-server, ledger records); the browser's own layout-shift entries are summed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.dashboard.conftest import COUNT_FETCHES, Dashboard, running_instance, settle, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
NAME = "cls-tiny"
# Lighthouse calls a CLS under 0.1 good (and takes no point off under 0.05): a signed-in
# user's name and Sign out arriving in the header move it by a few pixels at most.
GOOD = 0.05

WATCH_SHIFTS = """window.__shifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    window.__shifts.push({value: entry.value, moved: (entry.sources || []).map((s) =>
      s.node && s.node.nodeType === 1 ? s.node.tagName.toLowerCase() + (s.node.id ? "#" +
        s.node.id : "") + (s.node.className ? "." + s.node.className : "") : "text")});
  }
}).observe({type: "layout-shift", buffered: true});"""


@pytest.fixture(scope="module")
def running(dashboard_server: Dashboard) -> Iterator[str]:
    for name in running_instance(dashboard_server, NAME):
        with dashboard_server.api() as api:
            answer = api.post("/v1/completions", json={"model": name, "prompt": "Hi",
                                                       "max_tokens": 2})
            assert answer.status_code == 200, answer.text
        yield name


@pytest.mark.parametrize("width", [412, 1280])
def test_views_load_without_moving(dashboard_server: Dashboard, running: str,
                                   browser: Browser, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 823})
    context.add_init_script(COUNT_FETCHES)
    context.add_init_script(WATCH_SHIFTS)
    page = context.new_page()
    moved = []
    try:
        sign_in(page, dashboard_server, "admin")  # the token stays in the tab
        for view in ("instances", "activity", "playground"):  # Lighthouse's three
            page.goto(f"{dashboard_server.url}/#/{view}")
            page.reload()  # a first load of the view, not a switch to it
            page.locator(f'#app [data-view="{view}"] h2').first.wait_for()
            settle(page)
            shifts = page.evaluate("window.__shifts")
            total = sum(shift["value"] for shift in shifts)
            if total > GOOD:
                moved.append(f"{view}: {total:.3f} {[s['moved'] for s in shifts]}")
    finally:
        context.close()
    assert not moved, f"layout shifts at {width} px:\n" + "\n".join(moved)
