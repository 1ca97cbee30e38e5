"""``GET /``: the dashboard's page, and its assets under ``/ui/static``.

The page is a static file with no inline script or style (the HTML answers' CSP forbids
both), so it is read once and served as it is; everything it shows comes from ``/api`` with
the signed-in user's token, as for any client. Nothing is fetched from elsewhere.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


@cache
def page_html() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def install_dashboard(app: FastAPI) -> None:
    """``GET /`` and ``/ui/static/*``. Public, like ``/docs``: the page holds no data."""

    @app.get("/", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page_html(), headers={"Cache-Control": "no-cache"})

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
