"""axe-core (issue 34, "Figures") on every view of the dashboard, light and dark, at 1280 and
390 pixels: no violation of impact serious or critical.

The views are the navigation's links as the page shows them to an admin, found at run time
(a view added later is covered without touching this file); within each, every tab and every
collapsed ``<details>`` is opened. Beside the views: the sign-in page, an instance's page
(when its name links to one), the New-instance form, the Edit form, the Logs panel, the
Delete dialog, a row's Actions menu (where the row shows one) and the Playground after an
answer. Real data: a running tiny llama-server, a failed instance with its error, ledger
records, a key. axe is vendored under tests/dashboard/vendor (``scripts/vendor-axe``): the
test downloads nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, Locator, Page

from tests.dashboard.conftest import (
    COUNT_FETCHES,
    Dashboard,
    open_view,
    running_instance,
    settle,
    sign_in,
)
from tests.support.helpers import free_port

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
NAME = "axe-tiny"
FAILED = "axe-broken"
BLOCKING = ("serious", "critical")
Scheme = Literal["light", "dark"]

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(" ")),
    summary: v.nodes[0] ? v.nodes[0].failureSummary : ""}));
}"""


@pytest.fixture(scope="module")
def running(dashboard_server: Dashboard) -> Iterator[str]:
    yield from running_instance(dashboard_server, NAME)


@pytest.fixture(scope="module")
def real_data(dashboard_server: Dashboard, running: str) -> str:
    """Ledger records, a key, and an instance that failed (its error shows in its row)."""
    with dashboard_server.api() as api:
        for tokens in (2, 3):
            answer = api.post("/v1/completions", json={"model": running, "prompt": "Hi",
                                                       "max_tokens": tokens})
            assert answer.status_code == 200, answer.text
        assert api.post("/v1/completions", json={"model": "no-such-model", "prompt": "Hi"}
                        ).status_code == 404  # an error in the ledger too
        if api.get("/api/keys").json().get("keys", []) == []:
            assert api.post("/api/keys", json={"name": "axe-key"}).status_code == 201
        made = api.post("/api/instances", json={
            "name": FAILED, "model_path": str(dashboard_server.models / "broken.gguf"),
            "port": free_port()})
        assert made.status_code in (201, 409), made.text
        api.post(f"/api/instances/{FAILED}/start")
    return running


class Audit:
    """One browser page in one colour scheme and width; collects what axe finds."""

    def __init__(self, page: Page, label: str) -> None:
        self.page, self.label = page, label
        self.found: list[str] = []
        self.audited: list[str] = []

    def check(self, state: str) -> None:
        settle(self.page)
        if not self.page.evaluate("typeof axe !== 'undefined'"):
            self.page.evaluate(AXE)  # CDP's evaluate: the page's CSP does not apply
        self.audited.append(state)
        for v in self.page.evaluate(RUN_AXE):
            if v["impact"] in BLOCKING:
                self.found.append(f"[{self.label}] {state}: {v['id']} ({v['impact']}): "
                                  f"{v['help']}; targets {v['targets']}; {v['summary']}")

    def open_details_and_tabs(self, view: str) -> None:
        """A view's collapsed parts and tabs, each audited once shown."""
        section = self.page.locator("#app [data-view]:visible")
        if section.locator("details:not([open])").count():
            section.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
            self.check(f"{view} (details open)")
        tabs = self.page.get_by_role("tab")
        for i in range(tabs.count()):
            tab = tabs.nth(i)
            if tab.is_visible():
                tab.click()
                self.check(f"{view}, tab {tab.inner_text().strip()}")


def view_names(page: Page) -> list[str]:
    links = page.get_by_role("navigation", name="Views").get_by_role("link")
    return [name.strip() for name in links.all_inner_texts() if name.strip()]


def instance_row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))


def row_action(page: Page, name: str, action: str) -> None:
    """A row's action: its own button on wide screens, an Actions menu entry on narrow."""
    row = instance_row(page, name)
    direct = row.get_by_role("button", name=action, exact=True)
    if direct.is_visible():
        direct.click()
        return
    row.get_by_role("button", name="Actions", exact=True).click()
    row.get_by_role("menuitem", name=action, exact=True).click()


def audit_instances_states(audit: Audit, name: str) -> None:
    page = audit.page
    open_view(page, "Instances")
    instance_row(page, FAILED).locator(".last-error").wait_for(timeout=60_000)
    menu = instance_row(page, name).get_by_role("button", name="Actions", exact=True)
    if menu.is_visible():
        menu.click()
        audit.check("Instances, Actions menu open")
        page.keyboard.press("Escape")
    page.get_by_role("button", name="New instance", exact=True).click()
    audit.check("New-instance form")
    page.keyboard.press("Escape")
    row_action(page, name, "Edit")
    audit.check("Edit form")
    page.keyboard.press("Escape")
    row_action(page, name, "Logs")
    page.locator("#log-lines").filter(has_text="llama").first.wait_for(timeout=30_000)
    audit.check("Logs panel")
    row_action(page, name, "Delete")
    page.get_by_role("dialog").wait_for()
    audit.check("Delete dialog")
    page.keyboard.press("Escape")


def audit_instance_page(audit: Audit, name: str) -> None:
    page = audit.page
    open_view(page, "Instances")
    link = instance_row(page, name).get_by_role("link", name=name, exact=True)
    if link.count() == 0:
        return  # no instance page in this version of the dashboard
    link.click()
    page.get_by_role("heading", name=name).first.wait_for()
    audit.check("instance page")
    audit.open_details_and_tabs("instance page")


def audit_playground_answer(audit: Audit, name: str) -> None:
    page = audit.page
    open_view(page, "Playground")
    settle(page)
    page.get_by_label("Model", exact=True).select_option(name)
    if not page.get_by_label("Max tokens", exact=True).is_visible():
        page.get_by_text("Parameters", exact=True).click()
    page.get_by_label("Message", exact=True).fill("Say hello")
    page.get_by_label("Max tokens", exact=True).fill("4")
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator("#pg-stats").filter(has_text="tok").wait_for(timeout=60_000)
    audit.check("Playground after an answer")


def audit_everything(browser: Browser, server: Dashboard, name: str, scheme: Scheme,
                     width: int) -> Audit:
    context = browser.new_context(color_scheme=scheme,
                                  viewport={"width": width, "height": 900})
    context.add_init_script(COUNT_FETCHES)
    page = context.new_page()
    audit = Audit(page, f"{scheme}, {width} px")
    try:
        page.goto(server.url + "/")
        page.get_by_role("button", name="Sign in", exact=True).wait_for()
        audit.check("sign-in page")
        sign_in(page, server, "admin")
        for view in view_names(page):
            open_view(page, view)
            audit.check(view)
            audit.open_details_and_tabs(view)
        audit_instances_states(audit, name)
        audit_instance_page(audit, name)
        audit_playground_answer(audit, name)
    finally:
        context.close()
    return audit


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_or_critical_axe_violation(dashboard_server: Dashboard, real_data: str,
                                              browser: Browser, scheme: Scheme,
                                              width: int) -> None:
    audit = audit_everything(browser, dashboard_server, real_data, scheme, width)
    assert {"Instances", "Activity", "Playground", "Keys", "Audit"} <= set(audit.audited)
    assert not audit.found, "axe found:\n" + "\n".join(audit.found)
