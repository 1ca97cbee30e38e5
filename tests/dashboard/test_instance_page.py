"""An instance's own page (issue 34): the name in the Instances table links to it; its heading
holds the name, status and node; tabs Overview (charts), Logs, Activity, Options, and Pool
when the instance is in one. A real llamactl with a real tiny llama-server, in Chromium, at a
desktop's and a phone's width, light and dark."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Dashboard, sign_in
from tests.support.helpers import free_port, wait_until

NAME = "page-tiny"
MEMBER = "page-tiny-2"  # the pool's other member, never started
POOL = "page-pool"
LONE = "page-lone"  # in no pool
SIZES = {"wide": (1280, 800), "phone": (390, 844)}
CHARTS = ("generation tokens per second, last hour", "requests and errors, last hour",
          "time to first token, last hour", "memory against estimate, last hour",
          "CPU, last hour")


@pytest.fixture(scope="module")
def running(dashboard_server: Dashboard) -> Iterator[str]:
    model = str(dashboard_server.models / "tiny.gguf")
    with dashboard_server.api() as api:
        for name, pool in ((NAME, POOL), (MEMBER, POOL), (LONE, None)):
            made = api.post("/api/instances", json={
                "name": name, "model_path": model, "pool": pool, "port": free_port(),
                "options": {"context_size": 256}})
            assert made.status_code == 201, made.text
        assert api.post(f"/api/instances/{NAME}/start?wait=true").status_code == 200
    yield NAME
    with dashboard_server.api() as api:
        api.post(f"/api/instances/{NAME}/stop")  # answers "stopping": deleted once stopped
        wait_until(lambda: api.get(f"/api/instances/{NAME}").json()["status"] == "stopped",
                 timeout=60, what=f"{NAME} stopped")
        for name in (NAME, MEMBER, LONE):
            assert api.delete(f"/api/instances/{name}").status_code == 200


def ask(server: Dashboard, count: int) -> None:
    with httpx.Client(base_url=server.url, timeout=120, trust_env=False,
                      headers={"Authorization": f"Bearer {server.tokens['admin']}"}) as api:
        for _ in range(count):
            answer = api.post("/v1/chat/completions", json={
                "model": NAME, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]})
            assert answer.status_code == 200, answer.text


def fits_sideways(page: Page) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def tab(page: Page, name: str) -> Locator:
    return page.get_by_role("tablist", name="Instance").get_by_role("tab", name=name, exact=True)


def open_page(page: Page, server: Dashboard, size: str, scheme: str) -> None:
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    sign_in(page, server, "admin")
    row = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name=NAME, exact=True))
    expect(row).to_have_count(1)
    row.get_by_role("link", name=NAME, exact=True).click()
    expect(page).to_have_url(re.compile(f"#/instances/{NAME}$"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "phone"])
def test_the_name_opens_the_instance_page_and_its_tabs(
        page: Page, dashboard_server: Dashboard, running: str, size: str, scheme: str) -> None:
    open_page(page, dashboard_server, size, scheme)
    errors: list[str] = []  # signed in: a CSP refusal of uPlot's script or styles shows here
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    heading = page.get_by_role("heading", level=2).filter(has_text=NAME)
    expect(heading).to_contain_text(NAME)
    expect(heading).to_contain_text("running")
    expect(heading).to_contain_text("local node")
    expect(page).to_have_title(f"{NAME} · llamactl")
    tabs = page.get_by_role("tablist", name="Instance").get_by_role("tab")
    expect(tabs).to_have_text(["Overview", "Logs", "Activity", "Options", "Pool"])
    expect(tab(page, "Overview")).to_have_attribute("aria-selected", "true")
    overview = page.get_by_role("tabpanel", name="Overview")
    expect(overview).to_contain_text("tiny.gguf")
    for chart in CHARTS:  # named images, drawn by uPlot on a canvas
        image = overview.get_by_role("img", name=chart, exact=True)
        expect(image.locator("canvas")).to_be_attached()
    assert fits_sideways(page)

    # Logs: the keyboard moves along the tabs; the log follows, filtered by its search box.
    tab(page, "Overview").focus()
    page.keyboard.press("ArrowRight")
    expect(tab(page, "Logs")).to_be_focused()
    expect(tab(page, "Logs")).to_have_attribute("aria-selected", "true")
    logs = page.get_by_role("tabpanel", name="Logs")
    expect(logs.locator("#log-lines")).to_contain_text("llama", timeout=60_000)
    logs.get_by_label("Search", exact=True).fill("no line says this")
    expect(logs.locator("#log-lines span:visible")).to_have_count(0)
    logs.get_by_label("Search", exact=True).fill("")
    expect(logs.get_by_role("combobox", name="Level")).to_be_visible()
    assert fits_sideways(page)

    # Activity: this instance's requests, the new one live at the top.
    tab(page, "Logs").focus()
    page.keyboard.press("ArrowRight")
    expect(tab(page, "Activity")).to_have_attribute("aria-selected", "true")
    ask(dashboard_server, 1)
    activity = page.get_by_role("tabpanel", name="Activity")
    expect(activity.get_by_role("row").filter(has_text="200").first).to_be_visible(timeout=30_000)
    assert fits_sideways(page)

    # Options: the edit form, its Save; reload keeps the tab, and Back the Instances view.
    tab(page, "Options").click()
    options = page.get_by_role("tabpanel", name="Options")
    expect(options.get_by_role("button", name="Save", exact=True)).to_be_visible()
    expect(options.get_by_label("Model path", exact=True)).to_have_value(re.compile("tiny.gguf$"))
    assert fits_sideways(page)
    page.reload()
    expect(tab(page, "Options")).to_have_attribute("aria-selected", "true")
    # Opened before the option fields arrived, the form would show (and save) them cleared.
    expect(options.locator('[data-option="context_size"]')).to_have_value("256")
    expect(page).to_have_url(re.compile(f"#/instances/{NAME}/options$"))

    # Pool: the pool's members, their load and slots.
    tab(page, "Pool").click()
    pool = page.get_by_role("tabpanel", name="Pool")
    expect(pool.get_by_role("status")).to_contain_text(POOL)
    member = pool.get_by_role("row").filter(has=page.get_by_role("cell", name=MEMBER, exact=True))
    expect(member).to_contain_text("stopped")
    expect(member.get_by_role("cell").nth(2)).to_have_text("0")  # in flight
    expect(member.get_by_role("cell").nth(3)).to_have_text("4")  # slots: parallel's default
    assert fits_sideways(page)

    # Back on Overview, the requests made meanwhile (and the samples since) are drawn.
    tab(page, "Overview").click()
    for chart in CHARTS:
        drawn = overview.get_by_role("img", name=chart, exact=True)
        expect(drawn).not_to_have_attribute("data-points", "0", timeout=20_000)
    expect(overview.get_by_text("No requests in the last hour.")).to_be_hidden()
    assert fits_sideways(page)

    page.go_back()
    expect(page.get_by_role("heading", name="Instances", exact=True)).to_be_visible()
    assert errors == []


def test_an_instance_in_no_pool_has_no_pool_tab_and_a_missing_one_says_so(
        page: Page, dashboard_server: Dashboard, running: str) -> None:
    sign_in(page, dashboard_server, "view")
    page.get_by_role("link", name=LONE, exact=True).click()
    expect(page.get_by_role("heading", level=2).filter(has_text=LONE)).to_contain_text("stopped")
    expect(page.get_by_role("tablist", name="Instance").get_by_role("tab")).to_have_text(
        ["Overview", "Logs", "Activity", "Options"])
    overview = page.get_by_role("tabpanel", name="Overview")  # never ran: empty states
    expect(overview.get_by_role("img", name="CPU, last hour", exact=True)).to_have_attribute(
        "data-points", "0")
    expect(overview.get_by_text("No requests in the last hour.")).to_be_visible()
    tab(page, "Options").click()  # a viewer reads the options, with no form
    options = page.get_by_role("tabpanel", name="Options")
    expect(options).to_contain_text("context_size")
    expect(options.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    page.goto(dashboard_server.url + "/#/instances/no-such-one")
    expect(page.get_by_text("No instance named no-such-one.")).to_be_visible()
