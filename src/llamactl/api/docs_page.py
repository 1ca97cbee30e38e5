"""``/docs``: Swagger UI for ``/openapi.json``, served from the package.

FastAPI's own page loads Swagger UI from a CDN, so it was blank offline and needed an inline
script that a strict Content-Security-Policy forbids. The assets are vendored at a pinned
version by ``scripts/vendor-assets`` (with their licence) and served under
``/docs/static``; the page has no inline script or style of its own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>llamactl API</title>
<link rel="icon" type="image/png" href="/docs/static/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/docs/static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/docs/static/llamactl-docs.js"></script>
</body>
</html>
"""


def install_docs_page(app: FastAPI) -> None:
    """``GET /docs`` and its assets. The app must be made with ``docs_url=None``."""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(PAGE)

    app.mount("/docs/static", StaticFiles(directory=STATIC_DIR), name="docs-static")
