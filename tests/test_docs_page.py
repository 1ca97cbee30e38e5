"""``/docs`` works offline: Swagger UI from the package, no CDN, no inline script."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import AppHarness


async def test_docs_are_served_from_the_package(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    page = await app.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert not re.search(r'(?:src|href)="(?:[a-z]+:)?//', html), "an asset from elsewhere"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "an inline script"
    assert "<style" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/docs/static/swagger-ui/swagger-ui-bundle.js" in assets
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        answer = await app.client.get(asset)
        assert answer.status_code == 200, asset
        assert kinds[asset[asset.rindex("."):]] in answer.headers["content-type"], asset
    init = (await app.client.get("/docs/static/llamactl-docs.js")).text
    assert '"/openapi.json"' in init
    assert (await app.client.get("/openapi.json")).status_code == 200
    # The licence travels with the vendored code; FastAPI's CDN-backed ReDoc page is gone.
    assert "Apache License" in (await app.client.get("/docs/static/swagger-ui/LICENSE")).text
    assert (await app.client.get("/redoc")).status_code == 404
    assert "/docs" not in (await app.client.get("/openapi.json")).json()["paths"]
