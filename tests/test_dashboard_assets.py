"""The dashboard's vendored chart library (uPlot) is served from the package, under the
page's versioned asset URL, like every other dashboard file: offline, no CDN."""

from __future__ import annotations

import re
from typing import Any

from llamactl.dashboard.page import STATIC_DIR
from tests.conftest import AppHarness


async def test_uplot_is_served_from_the_package(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    html = (await app.client.get("/")).text
    found = re.search(r'/ui/static/([0-9a-f]{12})/main\.js', html)
    assert found, "the page names its versioned assets"
    base = f"/ui/static/{found.group(1)}/uplot/"
    script = await app.client.get(base + "uPlot.iife.min.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["cache-control"].endswith("immutable")
    assert script.content == (STATIC_DIR / "uplot" / "uPlot.iife.min.js").read_bytes()
    style = await app.client.get(base + "uPlot.min.css")
    assert style.status_code == 200
    assert "text/css" in style.headers["content-type"]
    assert ".uplot" in style.text
    assert "MIT" in (await app.client.get(base + "LICENSE")).text  # the licence comes along
    assert "uplot@1.6.32" in (await app.client.get(base + "VERSION")).text
    # Not in the first load: the page loads it only when an instance's page opens.
    assert "uPlot" not in html
    assert (await app.client.get(base + "nothing.js")).status_code == 404
