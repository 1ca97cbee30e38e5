"""The dashboard's views and layout (issue 34, "Dashboard, second round" in the contract):
navigation links with a URL per view (reload and Back keep the place), admins' own views,
no sideways scrolling from 360 pixels up, and rows that stay rows with their actions behind
an Actions menu on narrow screens. A real browser against a real ``llamactl serve``."""

from __future__ import annotations

import itertools

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in
from tests.support.clients import PASSWORDS
from tests.support.helpers import free_port

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
_names = itertools.count()
VIEWS = ("Instances", "Activity", "Playground", "Models", "System")
ACTIONS = ["Start", "Stop", "Restart", "Logs", "Edit", "Delete"]
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


def create(server: Dashboard, model: str = "tiny.gguf") -> str:
    name = f"nav-{next(_names)}"
    with server.api() as api:
        answer = api.post("/api/instances", json={
            "name": name, "model_path": str(server.models / model),
            "options": {"context_size": 256}, "port": free_port()})
        assert answer.status_code == 201, answer.text
    return name


def instance_row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))


def test_each_view_has_its_own_url_kept_by_reload_and_back(dashboard_server: Dashboard,
                                                          page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    for view in (*VIEWS, "Keys", "Audit"):
        open_view(page, view)
        assert page.url.endswith("#/" + view.lower())
        views = page.get_by_role("navigation", name="Views")
        link = views.get_by_role("link", name=view, exact=True)
        expect(link).to_have_attribute("aria-current", "page")
        heading = "API keys" if view == "Keys" else view
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    open_view(page, "Playground")
    open_view(page, "System")
    page.reload()
    expect(page.get_by_role("heading", name="System", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Instances", exact=True)).to_be_hidden()
    expect(page.locator("#system-facts")).to_contain_text("CPUs")
    page.go_back()
    expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="System", exact=True)).to_be_hidden()


def test_keys_and_audit_are_for_admins(dashboard_server: Dashboard, page: Page) -> None:
    sign_in(page, dashboard_server, "op")
    views = page.get_by_role("navigation", name="Views")
    for view in VIEWS:
        expect(views.get_by_role("link", name=view, exact=True)).to_be_visible()
    for view in ("Keys", "Audit"):
        expect(views.get_by_role("link", name=view, exact=True)).to_have_count(0)


@pytest.mark.parametrize("width", [360, 390, 768, 1280])
def test_no_view_scrolls_sideways(dashboard_server: Dashboard, page: Page, width: int) -> None:
    create(dashboard_server)
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, dashboard_server, "admin")
    for view in (*VIEWS, "Keys", "Audit"):
        open_view(page, view)
        assert page.evaluate(NO_SIDEWAYS), f"{view} scrolls sideways at {width} px"
    open_view(page, "Instances")
    page.get_by_role("button", name="New instance", exact=True).click()
    assert page.evaluate(NO_SIDEWAYS), f"the form scrolls sideways at {width} px"


def test_narrow_rows_keep_their_name_and_actions_menu(dashboard_server: Dashboard,
                                                      page: Page) -> None:
    name = create(dashboard_server)
    page.set_viewport_size({"width": 360, "height": 800})
    sign_in(page, dashboard_server, "op")
    line = instance_row(page, name)
    expect(line).to_have_count(1)
    expect(line.get_by_role("button", name="Start", exact=True)).to_be_hidden()
    line.get_by_role("button", name="Actions", exact=True).click()
    menu = line.get_by_role("menu")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem")).to_have_text(ACTIONS)
    expect(menu.get_by_role("menuitem", name="Stop", exact=True)).to_have_attribute(
        "aria-disabled", "true")
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(line.get_by_role("button", name="Actions", exact=True)).to_be_focused()
    line.get_by_role("button", name="Actions", exact=True).click()
    menu.get_by_role("menuitem", name="Start", exact=True).click()
    expect(line.locator(".status")).to_have_text("running", timeout=60_000)
    line.get_by_role("button", name="Actions", exact=True).click()
    menu.get_by_role("menuitem", name="Stop", exact=True).click()
    expect(line.locator(".status")).to_have_text("stopped", timeout=30_000)


def test_why_it_failed_shows_on_a_phone(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server, "broken.gguf")
    with dashboard_server.api() as api:
        assert api.post(f"/api/instances/{name}/start").status_code == 200
    page.set_viewport_size({"width": 360, "height": 800})
    sign_in(page, dashboard_server, "view")
    line = instance_row(page, name)
    expect(line.locator(".status")).to_have_text("failed", timeout=60_000)
    expect(line.locator(".last-error")).to_be_visible(timeout=30_000)
    expect(line.locator(".last-error")).to_contain_text("unknown model architecture")


def test_wide_rows_show_every_action_on_screen(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, dashboard_server, "admin")
    line = instance_row(page, name)
    for action in ACTIONS:
        button = line.get_by_role("button", name=action, exact=True)
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 1280, f"{action} is cut off"
    assert page.evaluate(NO_SIDEWAYS)


def test_signing_out_leaves_only_the_sign_in_form(dashboard_server: Dashboard,
                                                  page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    views = page.get_by_role("navigation", name="Views")
    for view in (*VIEWS, "Keys", "Audit"):
        expect(views.get_by_role("link", name=view, exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(views).to_be_hidden()
    for view in (*VIEWS, "Keys", "Audit"):
        expect(page.get_by_role("link", name=view, exact=True)).to_have_count(0)
    # Nothing that needs a session is left to press: only the form's and the header's own.
    buttons = page.get_by_role("button")
    expect(buttons).to_have_text(["Copy", "Sign in"])
    expect(page.get_by_role("heading", name="Instances")).to_be_hidden()
    page.get_by_label("Username", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill(PASSWORDS["admin"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    for view in (*VIEWS, "Keys", "Audit"):
        expect(views.get_by_role("link", name=view, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
