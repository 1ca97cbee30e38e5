"""The New instance form (issue 34) in a real browser: the essentials first, the backend's
other options in collapsed groups with a Filter options box, each field with its description
and default from GET /api/backends; Edit opens the groups that hold a value, and an error in
a collapsed group opens it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, sign_in
from tests.support.helpers import free_port

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
GROUPS = ["Performance", "Sampling", "Context", "Speculative decoding", "Multimodal", "Server"]


def open_form(page: Page, server: Dashboard, user: str = "op") -> None:
    sign_in(page, server, user)
    page.get_by_role("button", name="New instance", exact=True).click()


def test_essentials_first_then_collapsed_groups_with_descriptions_and_defaults(
        dashboard_server: Dashboard, page: Page) -> None:
    with dashboard_server.api("view") as api:
        table = api.get("/api/backends").json()["backends"][0]["options"]
    batch = next(o for o in table if o["name"] == "batch_size")
    assert batch["group"] == "performance"
    assert batch["default"] == 2048
    open_form(page, dashboard_server)
    form = page.locator("#instance-form")
    fields = [form.get_by_role("textbox", name="Name", exact=True),
              form.get_by_role("textbox", name="Model path", exact=True),
              *[form.get_by_role("spinbutton", name=label, exact=True)
                for label in ("Port", "Context size", "GPU layers")],
              form.get_by_role("combobox", name="Backend", exact=True)]
    tops = []
    for field in fields:
        expect(field).to_be_visible()
        box = field.bounding_box()
        assert box is not None
        tops.append(box["y"])
    first_group = page.locator("#option-groups summary").first.bounding_box()
    assert first_group is not None
    assert max(tops) < first_group["y"], "the essentials come first"
    summaries = page.locator("#option-groups summary")
    expect(summaries).to_have_count(len(GROUPS))
    for i, title in enumerate(GROUPS):
        expect(summaries.nth(i)).to_contain_text(title)
    for details in page.locator("#option-groups details").all():
        expect(details).not_to_have_attribute("open", "")
    batch_size = page.locator('[data-option="batch_size"]')
    expect(batch_size).to_be_hidden()  # collapsed
    page.locator("#option-groups summary", has_text="Performance").click()
    expect(batch_size).to_be_visible()
    expect(page.get_by_label("batch_size", exact=True)).to_have_attribute("placeholder", "2048")
    described = batch_size.get_attribute("aria-describedby")
    about = page.locator(f"#{described}")
    expect(about).to_contain_text("logical maximum batch size")
    expect(about).to_contain_text("default: 2048")
    expect(about).to_contain_text("--batch-size")
    flash = page.get_by_label("flash_attn", exact=True)
    expect(flash.locator("option").first).to_have_text("default (auto)")
    gpu = page.get_by_label("GPU layers", exact=True)
    expect(gpu).to_have_attribute("placeholder", "auto")


def test_filter_options_shows_only_what_matches(dashboard_server: Dashboard,
                                                page: Page) -> None:
    open_form(page, dashboard_server)
    box = page.get_by_label("Filter options", exact=True)
    box.fill("draft")
    speculative = page.locator('#option-groups details[data-group="speculative"]')
    expect(speculative).to_have_attribute("open", "")
    expect(page.locator('[data-option="draft_max"]')).to_be_visible()
    expect(page.locator('#option-groups details[data-group="sampling"]')).to_be_hidden()
    expect(page.locator('[data-option="batch_size"]')).to_be_hidden()
    box.fill("--top-k")  # by flag too
    expect(page.locator('[data-option="top_k"]')).to_be_visible()
    expect(page.locator('[data-option="top_p"]')).to_be_hidden()
    box.press("Enter")  # filters, never submits the form
    expect(page.locator("#editor")).to_be_visible()
    box.fill("no such option at all")
    expect(page.get_by_text("No option matches.")).to_be_visible()
    box.fill("")
    expect(page.get_by_text("No option matches.")).to_be_hidden()
    for details in page.locator("#option-groups details").all():
        expect(details).to_be_visible()
        expect(details).not_to_have_attribute("open", "")


def test_edit_opens_the_groups_that_hold_a_value(dashboard_server: Dashboard,
                                                 page: Page) -> None:
    with dashboard_server.api() as api:
        made = api.post("/api/instances", json={
            "name": "form-groups", "model_path": str(dashboard_server.models / "tiny.gguf"),
            "port": free_port(), "options": {"batch_size": 256, "context_size": 512}})
        assert made.status_code == 201, made.text
    try:
        sign_in(page, dashboard_server, "op")
        page.locator('tr[data-name="form-groups"]').get_by_role(
            "button", name="Edit", exact=True).click()
        expect(page.get_by_label("Context size", exact=True)).to_have_value("512")
        performance = page.locator('#option-groups details[data-group="performance"]')
        expect(performance).to_have_attribute("open", "")
        expect(page.get_by_label("batch_size", exact=True)).to_have_value("256")
        expect(page.locator('#option-groups details[data-group="sampling"]')).not_to_have_attribute(
            "open", "")
    finally:
        with dashboard_server.api() as api:
            api.delete("/api/instances/form-groups")


def test_an_error_in_a_collapsed_group_opens_it(dashboard_server: Dashboard,
                                                page: Page) -> None:
    open_form(page, dashboard_server)
    page.get_by_label("Name", exact=True).fill("form-bad-sampling")
    page.get_by_label("Model path", exact=True).fill(str(dashboard_server.models / "tiny.gguf"))
    page.locator("#option-groups summary", has_text="Sampling").click()
    page.get_by_label("top_k", exact=True).fill("-3")
    page.locator("#option-groups summary", has_text="Sampling").click()  # closed again
    expect(page.get_by_label("top_k", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Create", exact=True).click()
    top_k = page.get_by_label("top_k", exact=True)
    expect(top_k).to_be_visible()
    expect(top_k).to_be_focused()
    expect(page.locator('.error[data-for="options.top_k"]')).not_to_be_empty()
    expect(top_k).to_have_value("-3")
