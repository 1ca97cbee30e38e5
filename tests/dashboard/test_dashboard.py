"""The dashboard at ``/`` in a real browser (Debian's chromium), against a real
``llamactl serve`` with real llama-server children."""

from __future__ import annotations

import itertools

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
_names = itertools.count()


def create(server: Dashboard, model: str = "tiny.gguf") -> str:
    name = f"dash-{next(_names)}"
    with server.api() as api:
        answer = api.post("/api/instances", json={
            "name": name, "model_path": str(server.models / model),
            "options": {"context_size": 256}})
        assert answer.status_code == 201, answer.text
    return name


def row(page: Page, name: str) -> Locator:
    return page.locator(f'tr[data-name="{name}"]')


def test_page_is_served_with_its_csp_and_no_inline_script(dashboard_server: Dashboard,
                                                         page: Page) -> None:
    answer = page.goto(dashboard_server.url + "/")
    assert answer is not None
    assert answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert page.locator("script:not([src])").count() == 0


def test_wrong_password_says_so(dashboard_server: Dashboard, page: Page) -> None:
    page.goto(dashboard_server.url + "/")
    page.get_by_label("Username", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")


def test_start_updates_the_row_live_and_stop(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "op")
    line = row(page, name)
    expect(line.locator(".status")).to_have_text("stopped")
    line.get_by_role("button", name="Start", exact=True).click()
    expect(line.locator(".status")).to_have_text("running", timeout=60_000)
    line.get_by_role("button", name="Stop", exact=True).click()
    expect(line.locator(".status")).to_have_text("stopped", timeout=30_000)


def test_status_changed_elsewhere_reaches_the_row(dashboard_server: Dashboard,
                                                  page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "view")
    with dashboard_server.api() as api:
        assert api.post(f"/api/instances/{name}/start").status_code == 200
        expect(row(page, name).locator(".status")).to_have_text("running", timeout=60_000)
        assert api.post(f"/api/instances/{name}/stop").status_code == 200
    expect(row(page, name).locator(".status")).to_have_text("stopped", timeout=30_000)


def test_viewer_sees_no_action_buttons(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "view")
    line = row(page, name)
    expect(line).to_be_visible()
    for action in ("Start", "Stop", "Restart", "Edit", "Delete"):
        expect(line.get_by_role("button", name=action, exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="New instance", exact=True)).to_be_hidden()


def test_logs_follow_what_llama_server_prints(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server)
    sign_in(page, dashboard_server, "admin")
    row(page, name).get_by_role("button", name="Logs", exact=True).click()
    row(page, name).get_by_role("button", name="Start", exact=True).click()
    # llama-server's own start-up lines, as it prints them, without reopening the panel.
    expect(page.locator("#log-lines")).to_contain_text("llama", timeout=60_000)
    expect(row(page, name).locator(".status")).to_have_text("running", timeout=60_000)
    with dashboard_server.api() as api:
        api.post(f"/api/instances/{name}/stop")
    expect(row(page, name).locator(".status")).to_have_text("stopped", timeout=30_000)


def test_bad_model_path_shows_by_the_field_and_keeps_the_input(
        dashboard_server: Dashboard, page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    page.get_by_label("Name", exact=True).fill("dash-bad-path")
    page.get_by_label("Model path", exact=True).fill("/no/such/model.gguf")
    page.get_by_label("Port", exact=True).fill("")
    page.get_by_role("button", name="Create", exact=True).click()
    error = page.locator('.error[data-for="model_path"]')
    expect(error).not_to_be_empty()
    expect(page.get_by_label("Name", exact=True)).to_have_value("dash-bad-path")
    expect(page.get_by_label("Model path", exact=True)).to_have_value("/no/such/model.gguf")
    expect(row(page, "dash-bad-path")).to_have_count(0)
    # Typing in the field the error named takes the message away; the other fields' stay.
    page.get_by_label("Model path", exact=True).press("End")
    page.get_by_label("Model path", exact=True).type("x")
    expect(error).to_be_empty()


def test_create_edit_delete(dashboard_server: Dashboard, page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    page.get_by_label("Name", exact=True).fill("dash-made")
    page.get_by_label("Model path", exact=True).fill(str(dashboard_server.models / "tiny.gguf"))
    page.get_by_role("button", name="Create", exact=True).click()
    line = row(page, "dash-made")
    expect(line.locator(".status")).to_have_text("stopped")

    line.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Group", exact=True).fill("team-a")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(line.locator("td").nth(9)).to_have_text("team-a")

    line.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(row(page, "dash-made")).to_have_count(0)
    with dashboard_server.api() as api:
        assert api.get("/api/instances/dash-made").status_code == 404


def test_import_command_line_fills_the_form(dashboard_server: Dashboard, page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    page.get_by_label("Import command line", exact=True).fill(
        "llama-server -m /models/qwen.gguf --port 8123 --ctx-size 4096 --weird x")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_label("Model path", exact=True)).to_have_value("/models/qwen.gguf")
    expect(page.get_by_label("Port", exact=True)).to_have_value("8123")
    expect(page.get_by_label("Name", exact=True)).to_have_value("qwen")
    expect(page.locator("#instance-form [name=extra_args]")).to_have_value("--weird\nx")
    expect(page.locator('[data-option="context_size"]')).to_have_value("4096")


def test_alert_shows_as_a_toast(dashboard_server: Dashboard, page: Page) -> None:
    name = create(dashboard_server, "broken.gguf")
    sign_in(page, dashboard_server, "op")
    row(page, name).get_by_role("button", name="Start", exact=True).click()
    toast = page.locator("#toasts .toast", has_text=name)
    expect(toast).to_be_visible(timeout=60_000)
    expect(row(page, name).locator(".status")).to_have_text("failed", timeout=30_000)
    # Why, as text in the row (issue 27): llama-server's own first error.
    expect(row(page, name).locator(".last-error")).to_contain_text(
        "unknown model architecture", timeout=30_000)
    expect(row(page, name).locator(".last-error")).to_be_visible()


def test_new_instance_leaves_lifecycle_to_the_server_unless_set(dashboard_server: Dashboard,
                                                               page: Page) -> None:
    """Untouched lifecycle fields are not sent (instances.* defaults apply); a set one is."""
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    page.get_by_label("Name", exact=True).fill("dash-defaults")
    page.get_by_label("Model path", exact=True).fill(str(dashboard_server.models / "tiny.gguf"))
    page.locator("#instance-form [name=on_demand_start]").select_option("true")
    with page.expect_request(lambda r: r.method == "POST"
                             and r.url.endswith("/api/instances")) as sent:
        page.get_by_role("button", name="Create", exact=True).click()
    body = sent.value.post_data_json
    assert "auto_restart" not in body
    assert body["on_demand_start"] is True
    expect(row(page, "dash-defaults")).to_have_count(1)
    with dashboard_server.api() as api:
        assert api.get("/api/instances/dash-defaults").json()["on_demand_start"] is True
        assert api.delete("/api/instances/dash-defaults").status_code == 200


def test_option_fields_come_from_the_api_with_their_types(dashboard_server: Dashboard,
                                                         page: Page) -> None:
    with dashboard_server.api("view") as api:
        table = api.get("/api/backends").json()["backends"][0]["options"]
    kinds = {option["name"]: option["type"] for option in table}
    assert kinds["context_size"] == "int"
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).click()
    fields = page.locator("#instance-form [data-option]")
    expect(fields).to_have_count(len(table))
    expect(page.locator('[data-option="context_size"]')).to_have_attribute("type", "number")
    a_bool = next(name for name, kind in kinds.items() if kind == "bool")
    assert page.locator(f'[data-option="{a_bool}"]').evaluate("e => e.tagName") == "SELECT"
    # An option the API refuses shows by its own field, and the typed value stays.
    page.get_by_label("Name", exact=True).fill("dash-bad-option")
    page.get_by_label("Model path", exact=True).fill(str(dashboard_server.models / "tiny.gguf"))
    page.locator('[data-option="context_size"]').fill("-5")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator('.error[data-for="options.context_size"]')).not_to_be_empty()
    expect(page.locator('[data-option="context_size"]')).to_have_value("-5")


def test_admin_creates_sees_once_and_revokes_a_key(dashboard_server: Dashboard,
                                                   page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    open_view(page, "Keys")
    page.get_by_label("Key name", exact=True).fill("dash-key")
    page.get_by_role("button", name="Create key", exact=True).click()
    shown = page.locator("#new-key-value")
    expect(shown).to_contain_text("llk_")
    key = shown.text_content() or ""
    with httpx.Client(base_url=dashboard_server.url, trust_env=False) as plain:
        answer = plain.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200
    line = page.locator('tr[data-key="dash-key"]')
    expect(line).to_have_count(1)
    with dashboard_server.api() as api:
        assert [k["name"] for k in api.get("/api/keys").json()["keys"]].count("dash-key") == 1
    page.reload()
    page.get_by_role("heading", name="API keys").wait_for()
    expect(page.locator("#new-key")).to_be_hidden()  # shown once
    line.get_by_role("button", name="Revoke", exact=True).click()
    expect(line).to_have_count(0)
    with dashboard_server.api() as api:
        assert "dash-key" not in [k["name"] for k in api.get("/api/keys").json()["keys"]]


def test_operator_has_no_keys_section(dashboard_server: Dashboard, page: Page) -> None:
    sign_in(page, dashboard_server, "op")
    expect(page.get_by_role("link", name="Keys", exact=True)).to_have_count(0)
    page.goto(dashboard_server.url + "/#/keys")  # the Instances view instead
    page.get_by_role("heading", name="Instances").wait_for()
    expect(page.get_by_role("heading", name="API keys")).to_be_hidden()


def test_system_shows_status_and_configuration_without_secrets(dashboard_server: Dashboard,
                                                               page: Page) -> None:
    sign_in(page, dashboard_server, "view")
    open_view(page, "System")
    expect(page.locator("#system-facts")).to_contain_text("CPUs")
    page.get_by_text("Configuration (secrets hidden)").click()
    config = page.locator("#config-text")
    expect(config).to_contain_text('"secret": "***"')
    expect(config).not_to_contain_text("client-tests-secret")
