"""What a newcomer met on the dashboard (issue 34), in a real browser against a real
``llamactl serve``: Import reads the command line with the server's parser, the System panel
keeps current, Create shows every error and focuses the first, Edit sends only what changed
(null for what was cleared), Start and Stop follow the status, logs are coloured and wrapped,
and Delete looks destructive."""

from __future__ import annotations

import itertools

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in
from tests.support.helpers import free_port

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
_names = itertools.count()


def create(server: Dashboard, model: str = "tiny.gguf", **fields: object) -> str:
    name = f"newc-{next(_names)}"
    with server.api() as api:
        answer = api.post("/api/instances", json={
            "name": name, "model_path": str(server.models / model),
            "options": {"context_size": 256}, "port": free_port(), **fields})
        assert answer.status_code == 201, answer.text
    return name


def row(page: Page, name: str) -> Locator:
    return page.locator(f'tr[data-name="{name}"]')


def test_import_reads_the_command_line_with_the_servers_parser(dashboard_server: Dashboard,
                                                                page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    page.get_by_label("Import command line", exact=True).fill(
        "llama-server -m /models/gemma.gguf -c 2048 -ngl 99 --temp 0.7 --host 0.0.0.0")
    with page.expect_request(lambda r: r.url.endswith("/parse-command")) as asked:
        page.get_by_role("button", name="Import", exact=True).click()
    assert asked.value.post_data_json == {
        "command": "llama-server -m /models/gemma.gguf -c 2048 -ngl 99 --temp 0.7 --host 0.0.0.0"}
    expect(page.get_by_label("Model path", exact=True)).to_have_value("/models/gemma.gguf")
    expect(page.get_by_label("Name", exact=True)).to_have_value("gemma")
    expect(page.locator('[data-option="context_size"]')).to_have_value("2048")
    expect(page.locator('[data-option="gpu_layers"]')).to_have_value("99")
    expect(page.locator('[data-option="temperature"], [data-option="temp"]')).to_have_value("0.7")
    expect(page.locator("#instance-form [name=extra_args]")).to_have_value("")
    expect(page.locator("#import-note")).to_contain_text("--host")


def test_system_panel_follows_the_instances(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "view")
    open_view(page, "System")
    facts = page.locator("#system-facts")
    expect(facts).to_contain_text("running of")
    with dashboard_server.api() as api:
        assert api.post(f"/api/instances/{name}/start").status_code == 200
        expect(row(page, name).locator(".status")).to_have_text("running", timeout=60_000)
        counts = api.get("/api/system/status").json()["instances"]
        expect(facts).to_contain_text(f"{counts['running']} running of {counts['total']}")
        assert api.post(f"/api/instances/{name}/stop").status_code == 200
        expect(row(page, name).locator(".status")).to_have_text("stopped", timeout=30_000)
        counts = api.get("/api/system/status").json()["instances"]
        expect(facts).to_contain_text(f"{counts['running']} running of {counts['total']}")


def test_create_shows_every_error_and_focuses_the_first(dashboard_server: Dashboard,
                                                        page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    page.get_by_label("Port", exact=True).fill("80")
    page.get_by_role("button", name="Create", exact=True).click()
    for field in ("name", "model_path", "port"):
        expect(page.locator(f'#instance-form .error[data-for="{field}"]')).not_to_be_empty()
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    # The server's own errors: by their fields too, and the first one focused.
    page.get_by_label("Name", exact=True).fill("newc-bad-option")
    page.get_by_label("Model path", exact=True).fill(str(dashboard_server.models / "tiny.gguf"))
    page.get_by_label("Port", exact=True).fill("")
    page.locator('[data-option="context_size"]').fill("-5")
    page.get_by_label("Name", exact=True).focus()
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator('.error[data-for="options.context_size"]')).not_to_be_empty()
    expect(page.locator('[data-option="context_size"]')).to_be_focused()


def test_edit_sends_only_what_changed_and_null_for_what_was_cleared(
        dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server, group="team-b")
    with dashboard_server.api() as api:
        assert api.put(f"/api/instances/{name}",
                       json={"options": {"threads": 2}}).status_code == 200
    sign_in(page, dashboard_server, "admin")
    row(page, name).get_by_role("button", name="Edit", exact=True).click()
    expect(page.locator('[data-option="threads"]')).to_have_value("2")
    page.get_by_label("Group", exact=True).fill("")
    page.locator('[data-option="threads"]').fill("")
    with page.expect_request(lambda r: r.method == "PUT") as sent:
        page.get_by_role("button", name="Save", exact=True).click()
    # Inherited defaults (auto_restart, idle_timeout ...) read back are not saved as values.
    assert sent.value.post_data_json == {"group": None, "options": {"threads": None}}
    expect(page.locator("#editor")).to_be_hidden()
    with dashboard_server.api() as api:
        saved = api.get(f"/api/instances/{name}").json()
    assert saved["group"] is None
    assert "threads" not in saved["options"]
    assert saved["options"]["context_size"] == 256


def test_start_and_stop_follow_the_status(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "op")
    line = row(page, name)
    start = line.get_by_role("button", name="Start", exact=True)
    stop = line.get_by_role("button", name="Stop", exact=True)
    expect(start).to_be_enabled()
    expect(stop).to_be_disabled()
    start.click()
    expect(line.locator(".status")).to_have_text("running", timeout=60_000)
    expect(start).to_be_disabled()
    expect(stop).to_be_enabled()
    stop.click()
    expect(line.locator(".status")).to_have_text("stopped", timeout=30_000)
    expect(start).to_be_enabled()
    expect(stop).to_be_disabled()


def test_logs_are_coloured_by_level_and_wrapped(dashboard_server: Dashboard,
                                                page: Page) -> None:
    name = create(dashboard_server, "broken.gguf")
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, dashboard_server, "op")
    for action in ("Logs", "Start"):  # a phone's width: behind the row's Actions menu
        row(page, name).get_by_role("button", name="Actions", exact=True).click()
        row(page, name).get_by_role("menuitem", name=action, exact=True).click()
    lines = page.locator("#log-lines")
    expect(lines.locator(".log-error").first).to_be_attached(timeout=60_000)
    expect(lines.locator(".log-info").first).to_be_attached()
    colour = "e => getComputedStyle(e).color"
    assert (lines.locator(".log-error").first.evaluate(colour)
            != lines.locator(".log-info").first.evaluate(colour))
    assert lines.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    assert lines.evaluate("e => e.scrollWidth <= e.clientWidth")
    expect(row(page, name).locator(".status")).to_have_text("failed", timeout=30_000)


def test_delete_looks_destructive(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "admin")
    background = "e => getComputedStyle(e).backgroundColor"
    delete = row(page, name).get_by_role("button", name="Delete", exact=True)
    edit = row(page, name).get_by_role("button", name="Edit", exact=True)
    danger = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--bad').trim()")
    assert delete.evaluate(background) != edit.evaluate(background)
    assert delete.evaluate(background) == page.evaluate(
        "c => { const e = document.createElement('i'); e.style.color = c;"
        " document.body.append(e); const v = getComputedStyle(e).color; e.remove(); return v }",
        danger)
    delete.click()
    confirm = page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True)
    assert confirm.evaluate(background) == delete.evaluate(background)
