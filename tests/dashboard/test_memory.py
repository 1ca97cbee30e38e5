"""Memory and nodes in the dashboard: the estimate beside measured memory, the estimate as
the New instance form is typed (the tiny model, the real API), and the System section's
cluster nodes and memory budget."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
MIB = 1024 * 1024


def test_table_shows_the_estimate_beside_measured_memory(dashboard_server: Dashboard,
                                                         page: Page) -> None:
    with dashboard_server.api() as api:
        made = api.post("/api/instances", json={
            "name": "dash-mem", "model_path": str(dashboard_server.models / "tiny.gguf"),
            "options": {"context_size": 256}})
        assert made.status_code == 201, made.text
        estimate = api.get("/api/instances/dash-mem").json()["memory_estimate"]
    assert estimate["ram"] > 0
    sign_in(page, dashboard_server, "view")
    memory = page.locator('tr[data-name="dash-mem"] .memory')
    expect(memory).to_have_text(re.compile(r"^est\. \d+\.\d (KiB|MiB)$"))
    with dashboard_server.api() as api:
        assert api.post("/api/instances/dash-mem/start").status_code == 200
        # Running: what llama-server holds (from the stats events), then the estimate.
        expect(memory).to_have_text(re.compile(r"^\d+\.\d MiB / est\. \d+\.\d (KiB|MiB)$"),
                                    timeout=60_000)
        assert api.post("/api/instances/dash-mem/stop").status_code == 200
    expect(page.locator('tr[data-name="dash-mem"] .status')).to_have_text("stopped",
                                                                        timeout=30_000)


def test_form_shows_the_estimate_as_the_user_types(dashboard_server: Dashboard,
                                                   page: Page) -> None:
    asked: list[dict[str, Any]] = []
    page.on("request", lambda r: asked.append(r.post_data_json)
            if r.url.endswith("/api/backends/llama_cpp/estimate") else None)
    sign_in(page, dashboard_server, "op")
    page.get_by_role("button", name="New instance", exact=True).click()
    estimate = page.locator("#estimate")
    path = str(dashboard_server.models / "tiny.gguf")
    page.get_by_label("Model path", exact=True).press_sequentially(path)
    expect(estimate).to_contain_text("Estimated memory:")
    expect(estimate).to_contain_text("RAM")
    # Debounced: one question for the whole path, not one a key.
    assert 1 <= len(asked) < len(path) / 2
    assert asked[-1] == {"model_path": path, "options": {}}
    small = estimate.text_content()

    page.locator('[data-option="context_size"]').fill("8192")
    expect(estimate).not_to_have_text(small or "")
    assert asked[-1]["options"] == {"context_size": 8192}
    bigger = estimate.text_content() or ""
    with dashboard_server.api() as api:
        truth = api.post("/api/backends/llama_cpp/estimate", json={
            "model_path": path, "options": {"context_size": 8192}}).json()
    assert f"{truth['ram'] / MIB:.1f} MiB RAM" in bigger

    page.get_by_label("Model path", exact=True).fill("/no/such/model.gguf")
    expect(estimate).to_contain_text("No estimate")


NODES = [
    {"id": "a1b2c3", "address": "10.0.0.5", "alive": True,
     "resources": {"total": {"CPU": 8.0, "memory": 16 * 1024 * MIB},
                   "available": {"CPU": 6.0, "memory": 12 * 1024 * MIB}},
     "instances": ["on-ray"]},
    {"id": "d4e5f6", "address": "10.0.0.6", "alive": False,
     "resources": {"total": {"CPU": 4.0}, "available": {"CPU": 0.0}}, "instances": []},
]
MEMORY = {"budget": {"ram": 8 * 1024 * MIB, "vram": None},
          "claimed": {"ram": 512 * MIB, "vram": None},
          "free": {"ram": 7680 * MIB, "vram": None}}


def with_extra(route: Route, change: Any) -> None:
    """The server's real answer, with what a Ray cluster (or a newer server) adds to it."""
    answer = route.fetch()
    if not answer.ok:  # e.g. boot.js's early /api/instances on the sign-in page: a 401
        route.fulfill(response=answer)
        return
    document = answer.json()
    change(document)
    route.fulfill(response=answer, body=json.dumps(document))


def test_system_shows_cluster_nodes_and_memory_budget(dashboard_server: Dashboard,
                                                      page: Page) -> None:
    """Stubbed at the seam between the page and /api (this server has no Ray cluster and no
    memory budget set): the documented shapes, put into real answers. The real ``memory``
    without a budget is the next test's."""
    with dashboard_server.api() as api:
        made = api.post("/api/instances", json={
            "name": "on-ray", "model_path": str(dashboard_server.models / "tiny.gguf")})
        assert made.status_code == 201, made.text
    page.route("**/api/system/status", lambda route: with_extra(
        route, lambda d: d.update(nodes=NODES, memory=MEMORY)))

    def place(document: dict[str, Any]) -> None:
        for instance in document["instances"]:
            if instance["name"] == "on-ray":
                instance["node"] = {"id": "a1b2c3", "address": "10.0.0.5"}

    page.route("**/api/instances", lambda route: with_extra(route, place))
    sign_in(page, dashboard_server, "view")
    node_cell = page.locator('tr[data-name="on-ray"] td.node')
    expect(node_cell).to_be_visible()
    expect(node_cell).to_have_text("10.0.0.5")
    expect(page.get_by_role("columnheader", name="Node")).to_be_visible()
    open_view(page, "System")
    nodes = page.get_by_role("region", name="Nodes")
    expect(nodes).to_be_visible()
    alive = nodes.locator('tr[data-node="a1b2c3"]')
    expect(alive).to_contain_text("10.0.0.5")
    expect(alive).to_contain_text("alive")
    expect(alive).to_contain_text("CPU 6 free of 8")  # plain numbers
    expect(alive).to_contain_text("memory 12.0 GiB free of 16.0 GiB")
    expect(alive).to_contain_text("on-ray")
    expect(nodes.locator('tr[data-node="d4e5f6"]')).to_contain_text("dead")
    facts = page.locator("#system-facts")
    expect(facts).to_contain_text("Memory budgetRAM 8.0 GiB")
    expect(facts).to_contain_text("Memory claimedRAM 512.0 MiB")
    expect(facts).to_contain_text("Memory freeRAM 7.5 GiB")


def test_no_nodes_section_or_column_without_a_cluster(dashboard_server: Dashboard,
                                                      page: Page) -> None:
    sign_in(page, dashboard_server, "view")
    expect(page.get_by_role("columnheader", name="Node")).to_be_hidden()
    open_view(page, "System")
    expect(page.locator("#system-facts")).to_contain_text("CPUs")
    expect(page.locator("#nodes")).to_be_hidden()
    # memory_budget is not set: the budget says so, what instances claim shows, no "free".
    expect(page.locator("#system-facts")).to_contain_text("Memory budgetnot set")
    expect(page.locator("#system-facts")).to_contain_text("Memory claimedRAM 0 B, VRAM 0 B")
    expect(page.locator("#system-facts")).not_to_contain_text("Memory free")
