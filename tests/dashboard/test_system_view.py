"""The System view (issue 34) in a real browser: the replica pools with their members,
following a member's start live; a pool's load and queue kept current by the poll; the memory
budget as a bar; storage and the activity ledger's state; the view on a phone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in
from tests.support.helpers import free_port

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
POOL = "sys-pool"
MEMBERS = ("sys-pool-a", "sys-pool-b")
MIB = 1024 * 1024
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def pool(dashboard_server: Dashboard) -> Iterator[str]:
    """Two stopped members of POOL, deleted after the module's tests."""
    with dashboard_server.api() as api:
        for name in MEMBERS:
            made = api.post("/api/instances", json={
                "name": name, "model_path": str(dashboard_server.models / "tiny.gguf"),
                "pool": POOL, "options": {"context_size": 256}, "port": free_port()})
            assert made.status_code == 201, made.text
    yield POOL
    with dashboard_server.api() as api:
        for name in MEMBERS:
            api.post(f"/api/instances/{name}/stop", json={"force": True})
        for name in MEMBERS:
            for _ in range(100):
                if api.delete(f"/api/instances/{name}").status_code != 409:
                    break
                time.sleep(0.1)  # still stopping


def test_pools_show_their_members_and_follow_a_start(dashboard_server: Dashboard, pool: str,
                                                     page: Page) -> None:
    sign_in(page, dashboard_server, "view")
    open_view(page, "System")
    card = page.get_by_role("region", name=f"Pool {pool}")
    expect(card).to_be_visible()
    expect(card).to_contain_text("0 of 2 running")
    expect(card).to_contain_text("0 requests waiting")
    first = card.get_by_role("row").filter(has=page.get_by_role("cell", name=MEMBERS[0],
                                                                exact=True))
    expect(first).to_contain_text("stopped")
    expect(first).to_contain_text("0 of 4")  # in flight of llama-server's default slots
    expect(first).to_contain_text("local")
    with dashboard_server.api() as api:  # elsewhere: the page learns it from the feed
        assert api.post(f"/api/instances/{MEMBERS[0]}/start?wait=true").status_code == 200
    expect(first).to_contain_text("running")
    expect(card).to_contain_text("1 of 2 running")
    with dashboard_server.api() as api:
        assert api.post(f"/api/instances/{MEMBERS[0]}/stop").status_code == 200
    expect(first).to_contain_text("stopped")


def rewritten(route: Route, change: Any) -> None:
    """The server's real answer, changed as a busier llamactl would answer."""
    answer = route.fetch()
    document = answer.json()
    change(document)
    route.fulfill(response=answer, body=json.dumps(document))


def test_a_pools_load_and_queue_are_polled(dashboard_server: Dashboard, pool: str,
                                           page: Page) -> None:
    """Requests in flight and waiting have no event: the view polls them while a pool exists.
    Stubbed at the seam between the page and /api (a real queue needs saturated members)."""
    load = {"in_flight": 3, "waiting": 2, "sleeping": True}

    def busier(document: dict[str, Any]) -> None:
        for entry in document["pools"]:
            if entry["name"] == pool:
                entry["waiting"] = load["waiting"]
                entry["members"][1].update(in_flight=load["in_flight"],
                                           sleeping=load["sleeping"])

    page.route("**/api/pools", lambda route: rewritten(route, busier))
    sign_in(page, dashboard_server, "admin")
    open_view(page, "System")
    card = page.get_by_role("region", name=f"Pool {pool}")
    second = card.get_by_role("row").filter(has=page.get_by_role("cell", name=MEMBERS[1],
                                                                 exact=True))
    expect(card).to_contain_text("2 requests waiting")
    expect(second).to_contain_text("3 of 4")
    expect(second).to_contain_text("asleep")
    load.update(in_flight=1, waiting=0, sleeping=False)
    expect(card).to_contain_text("0 requests waiting", timeout=6000)
    expect(second).to_contain_text("1 of 4")
    expect(second).to_contain_text("awake")


MEMORY = {"budget": {"ram": 8 * 1024 * MIB, "vram": None},
          "claimed": {"ram": 2 * 1024 * MIB, "vram": 0},
          "free": {"ram": 6 * 1024 * MIB, "vram": None}}


def test_memory_budget_is_a_bar_and_storage_and_ledger_are_shown(
        dashboard_server: Dashboard, page: Page) -> None:
    """The budget stubbed into the real status (this server sets none); storage and the
    ledger as the real server reports them."""
    page.route("**/api/system/status",
               lambda route: rewritten(route, lambda d: d.update(memory=MEMORY)))
    sign_in(page, dashboard_server, "view")
    open_view(page, "System")
    budget = page.get_by_role("region", name="Memory budget")
    ram = budget.get_by_role("meter", name="RAM budget claimed", exact=True)
    expect(ram).to_have_attribute("aria-valuenow", "25")
    expect(budget).to_contain_text("RAM: 2.0 GiB claimed of 8.0 GiB")
    expect(budget.get_by_role("meter")).to_have_count(1)  # VRAM is not limited: no bar
    drawn = ram.evaluate("e => e.firstElementChild.getBoundingClientRect().width"
                         " / e.getBoundingClientRect().width")
    assert 0.2 < drawn < 0.3, f"the bar is drawn at {drawn:.0%}"
    facts = page.locator("#system-facts")
    expect(facts).to_contain_text("Storagewriting (")
    expect(facts).to_contain_text("Activity ledger")
    expect(facts).to_contain_text("written since start")


def test_no_budget_no_bar(dashboard_server: Dashboard, page: Page) -> None:
    sign_in(page, dashboard_server, "view")
    open_view(page, "System")
    expect(page.locator("#system-facts")).to_contain_text("Memory budgetnot set")
    expect(page.get_by_role("region", name="Memory budget")).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_system_on_a_phone(dashboard_server: Dashboard, pool: str, page: Page,
                           scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": 390, "height": 844})
    page.route("**/api/system/status",
               lambda route: rewritten(route, lambda d: d.update(memory=MEMORY)))
    sign_in(page, dashboard_server, "view")
    open_view(page, "System")
    card = page.get_by_role("region", name=f"Pool {pool}")
    expect(card).to_be_visible()
    expect(card.locator("thead")).to_be_hidden()  # a card per member, each value labelled
    status = card.get_by_role("row").filter(has=page.get_by_role(
        "cell", name=MEMBERS[0], exact=True)).get_by_role("cell").nth(1)
    assert status.evaluate("e => getComputedStyle(e, '::before').content") == '"Status: "'
    expect(page.get_by_role("meter", name="RAM budget claimed")).to_be_visible()
    for width in (360, 390, 768):
        page.set_viewport_size({"width": width, "height": 800})
        assert page.evaluate(NO_SIDEWAYS), f"System scrolls sideways at {width} px"
