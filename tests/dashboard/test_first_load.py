"""The first load's critical path (issue 34: the table shown within 300 ms with 100 instances;
bench/dashboard.py times it): counted, not timed. From the page's own Performance API in
Chromium, how many requests stand one after the other before the instances arrive: the page,
then boot.js, then ``/api/instances`` (sent beside ``/api/auth/me``, not after it, and not
after every module has loaded)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

# Per request, how many requests stand before it one after the other: 1 + the most of any
# request that had ended before it started (the page itself is 1).
CHAIN = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const all = [{name: "page", start: 0, end: nav.responseEnd, depth: 1}];
  const resources = performance.getEntriesByType("resource");
  for (const r of resources.sort((a, b) => a.startTime - b.startTime)) {
    const before = all.filter((q) => q.end <= r.startTime).map((q) => q.depth).concat([1]);
    all.push({name: new URL(r.name).pathname, start: r.startTime, end: r.responseEnd,
              depth: 1 + Math.max(...before)});
  }
  return all.map((r) => [r.name, r.depth]);
}"""


def test_the_instances_are_asked_for_in_the_second_round_trip_after_the_page(
        dashboard_server: Dashboard, browser: Browser) -> None:
    # A first load (a new context: nothing cached) of a tab where the admin has signed in.
    context = browser.new_context()
    token = dashboard_server.tokens["admin"]
    context.add_init_script(f"sessionStorage.setItem('llamactl.token', {token!r})")
    try:
        page = context.new_page()
        page.goto(dashboard_server.url + "/")
        page.wait_for_function("performance.getEntriesByName('llamactl:table').length > 0")
        depths = {name.rsplit("/", 1)[-1]: depth for name, depth in page.evaluate(CHAIN)}
    finally:
        context.close()
    # page -> boot.js -> both API calls (before: page -> modules -> /api/auth/me -> instances)
    assert depths["instances"] <= 3, depths
    assert depths["me"] <= 3, depths
    modules = [depth for name, depth in depths.items() if name.endswith(".js")]
    assert max(modules) == 2, f"every module in the page's own round of requests: {depths}"
