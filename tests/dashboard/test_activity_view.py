"""The Activity view (issue 34) in a real browser: the ledger newest first, a request made
elsewhere arriving live (request_completed), filters, the filter's totals, and exports."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, open_view, running_instance, sign_in
from tests.support.helpers import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
NAME = "act-tiny"


@pytest.fixture(scope="module")
def running(dashboard_server: Dashboard) -> Iterator[str]:
    yield from running_instance(dashboard_server, NAME)


def ask(server: Dashboard, model: str, tokens: int) -> None:
    with server.api() as api:
        answer = api.post("/v1/completions", json={"model": model, "prompt": "Hi",
                                                   "max_tokens": tokens})
        assert answer.status_code == 200, answer.text


def test_activity_is_live_newest_first_filtered_and_exported(
        dashboard_server: Dashboard, running: str, page: Page) -> None:
    ask(dashboard_server, running, 2)
    # The ledger writes in batches: the first record in the database before the view lists
    # it, or it arrives live after the list and is counted as the second (a fresh clone's CI).
    with dashboard_server.api() as api:
        wait_until(lambda: api.get("/api/activity", params={"instance": running}
                                   ).json()["items"], what="the first record on file")
    sign_in(page, dashboard_server, "admin")
    open_view(page, "Activity")
    rows = page.locator("#activity-list tbody tr")
    expect(rows.first).to_contain_text(running)
    before = rows.count()
    ask(dashboard_server, running, 3)  # elsewhere: arrives by the feed, on top
    expect(rows).to_have_count(before + 1)
    expect(rows.first.get_by_role("cell").nth(5)).to_have_text(re.compile(r"^\d+ → 3$"))
    page.get_by_label("By instance", exact=True).fill(running)
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page.locator("#activity-totals")).to_contain_text(" requests, ")
    with dashboard_server.api() as api:
        groups = api.get("/api/activity/summary", params={"by": "instance",
                                                          "instance": running}).json()["groups"]
    expect(page.locator("#activity-totals")).to_contain_text(f"{groups[0]['requests']} requests")
    page.get_by_label("By instance", exact=True).fill("no-such-instance")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(rows).to_have_count(0)
    expect(page.locator("#activity-empty")).to_be_visible()
    page.get_by_label("By instance", exact=True).fill(running)
    page.get_by_role("button", name="Filter", exact=True).click()
    link = page.get_by_role("link", name="Export CSV", exact=True)
    expect(link).to_have_attribute("href", f"/api/activity/export?instance={running}&format=csv")
    with page.expect_download() as saved:
        link.click()
    text = saved.value.path().read_text(encoding="utf-8")
    assert running in text
    assert text.splitlines()[0].startswith("id,")


def test_both_activity_tables_have_the_one_head(dashboard_server: Dashboard, page: Page) -> None:
    page.goto(dashboard_server.url + "/")
    html = page.evaluate("() => fetch('/').then((r) => r.text())")
    assert html.count(">Tokens/s</th>") == 1, "the Activity table's head is written once"
    sign_in(page, dashboard_server, "view")
    heads = page.evaluate("""() => ["#activity-list", "#instance-activity"].map((table) =>
        [...document.querySelectorAll(table + " thead th")].map((th) => th.textContent))""")
    assert heads[0] == heads[1] == ["Time", "Instance", "Model", "Who", "Status", "Tokens",
                                    "TTFT", "Duration", "Tokens/s"]
