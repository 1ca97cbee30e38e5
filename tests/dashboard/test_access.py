"""The dashboard from the keyboard alone, its visible focus, and its contrast (WCAG AA) in
light and dark, in a real browser against a real ``llamactl serve``."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in
from tests.support.clients import PASSWORDS

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
MAX_TABS = 400  # every field of the form and every row's buttons, with room to spare

# What has focus, as a test can name it: a field's name, or a button's text and its row.
FOCUSED = """() => {
  const el = document.activeElement;
  return {tag: el.tagName, name: el.name || "", text: (el.textContent || "").trim(),
          row: el.closest("tr")?.dataset.name || "", inDialog: !!el.closest("dialog")};
}"""


def focused(page: Page) -> dict[str, Any]:
    answer: dict[str, Any] = page.evaluate(FOCUSED)
    return answer


def tab_to(page: Page, **wanted: object) -> None:
    """Tab until the focused element has every property in ``wanted``."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        now = focused(page)
        if all(now[key] == value for key, value in wanted.items()):
            return
    raise AssertionError(f"Tab never reached {wanted}")


def test_main_flow_with_the_keyboard_only(dashboard_server: Dashboard, page: Page) -> None:
    page.goto(dashboard_server.url + "/")
    expect(page.get_by_label("Username", exact=True)).to_be_focused()
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS["admin"])
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Instances").wait_for()

    tab_to(page, tag="BUTTON", text="New instance")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.type("dash-keys")
    tab_to(page, name="model_path")
    page.keyboard.type(str(dashboard_server.models / "tiny.gguf"))
    tab_to(page, tag="BUTTON", text="Create")
    page.keyboard.press("Enter")
    expect(page.locator('tr[data-name="dash-keys"]')).to_have_count(1)
    expect(page.locator("#editor")).to_be_hidden()

    tab_to(page, tag="BUTTON", text="Delete", row="dash-keys")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    for key in ["Tab"] * 5 + ["Shift+Tab"] * 5:  # focus stays in the dialog
        page.keyboard.press(key)
        assert focused(page)["inDialog"], key
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused(page) == {"tag": "BUTTON", "name": "", "text": "Delete", "row": "dash-keys",
                             "inDialog": False}

    page.keyboard.press("Enter")  # the same Delete button, again
    expect(dialog).to_be_visible()
    tab_to(page, tag="BUTTON", text="Delete", inDialog=True)
    page.keyboard.press("Enter")
    expect(page.locator('tr[data-name="dash-keys"]')).to_have_count(0)
    with dashboard_server.api() as api:
        assert api.get("/api/instances/dash-keys").status_code == 404


def test_escape_closes_the_form_and_focus_returns(dashboard_server: Dashboard,
                                                  page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    page.get_by_role("button", name="New instance", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#editor")).to_be_hidden()
    expect(page.get_by_role("button", name="New instance", exact=True)).to_be_focused()


FOCUS_RING = """(el) => {
  const style = getComputedStyle(el);
  return {outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
          shadow: style.boxShadow};
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_is_visible(dashboard_server: Dashboard, page: Page, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    sign_in(page, dashboard_server, "admin")
    tab_to(page, tag="BUTTON", text="New instance")
    ring = page.get_by_role("button", name="New instance", exact=True).evaluate(FOCUS_RING)
    assert (ring["outline"] != "none" and ring["width"] >= 2) or ring["shadow"] != "none", ring


# WCAG 2.x: relative luminance of sRGB colours, and the ratio of the lighter to the darker.
# The background is the first opaque one up the ancestors (the page's otherwise).
CONTRAST = """(el, pseudo) => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const channel = (v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  let node = el, bg = null;
  while (node && node.nodeType === 1) {
    const c = parse(getComputedStyle(node).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) { bg = c; break; }
    node = node.parentElement;
  }
  bg = bg || parse(getComputedStyle(document.documentElement).backgroundColor);
  if (bg.length < 3) bg = [255, 255, 255];
  const style = getComputedStyle(el, pseudo);
  const fg = parse(style.color);
  const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  return {ratio: (a + 0.05) / (b + 0.05), large: size >= 24 || (bold && size >= 18.66),
          fg: style.color, bg: "rgb(" + bg.slice(0, 3).join(",") + ")"};
}"""

# Probes for what may not be on the page at the moment: a status cell of each kind in a
# real row, an error, a toast and the feed's notice, all styled by the page's own CSS.
PROBES = """() => {
  const row = document.querySelector("#instances tbody tr");
  for (const status of ["running", "starting", "stopping", "restarting", "failed", "stopped"]) {
    const td = document.createElement("td");
    td.className = "probe status status-" + status; td.textContent = status;
    row.append(td);
  }
  const feed = document.querySelector("#feed-state");
  feed.hidden = false; feed.textContent = "Live updates lost: reconnecting";
  for (const level of ["error", "warning", "info"]) {
    const toast = document.createElement("div");
    toast.className = "probe toast " + level; toast.textContent = level;
    document.querySelector("#toasts").append(toast);
  }
}"""

ELEMENTS = {
    "body text": "#instances tbody td:first-child",
    "table header": "#instances th",
    "heading": "#instances-title",
    "button": "#new-instance",
    "row button": "#instances tbody button",
    "link": "nav a",
    "code": "#v1-url",
    "muted text (dt)": "#system-facts dt",
    "status badges": "td.probe",
    "feed notice": "#feed-state",
    "toasts": ".toast.probe",
    "input": "#key-form input",
    "summary": "#config summary",
    "placeholder": "#import-cmd::placeholder",
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(dashboard_server: Dashboard, page: Page,
                                     scheme: str) -> None:
    with dashboard_server.api() as api:
        api.post("/api/instances", json={"name": f"dash-contrast-{scheme}",
                                         "model_path": str(dashboard_server.models / "tiny.gguf")})
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    sign_in(page, dashboard_server, "admin")
    open_view(page, "System")
    expect(page.locator("#system-facts dt").first).to_be_visible()
    open_view(page, "Instances")
    page.evaluate(PROBES)
    failures = []
    for what, selector in ELEMENTS.items():
        selector, _, pseudo = selector.partition("::")
        found = page.locator(selector)
        assert found.count() > 0, f"{what}: nothing matches {selector}"
        for index in range(found.count()):
            seen = found.nth(index).evaluate(CONTRAST, f"::{pseudo}" if pseudo else None)
            least = 3.0 if seen["large"] else 4.5
            if seen["ratio"] < least:
                failures.append(f"{what} ({selector} #{index}): {seen['fg']} on {seen['bg']} "
                                f"= {seen['ratio']:.2f} < {least}")
    assert not failures, "\n".join(failures)
