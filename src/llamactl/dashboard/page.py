"""``GET /``: the dashboard's page, and its assets under ``/ui/static/<version>/``.

The page is a static file with no inline script or style (the HTML answers' CSP forbids
both); everything it shows comes from ``/api`` with the signed-in user's token, as for any
client. Nothing is fetched from elsewhere.

Caching: ``<version>`` is a hash of every asset, so an asset's URL changes whenever any of
them does and the browser may keep it for a year (``immutable``); the page itself is
revalidated each time (``no-cache``, with an ETag). The modules import one another by
relative URL, so they all resolve under the same version. A page from before an upgrade asks
for an old version: it gets today's files, not to be kept. Compression is the app's
(api/compression.py).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request, Response

from llamactl.api.compression import LEVEL, accepts_gzip
from llamactl.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/ui/static/"
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _asset(body: bytes, name: str) -> Asset:
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return Asset(body, gzip.compress(body, compresslevel=LEVEL, mtime=0), media_type,
                 '"' + hashlib.sha256(body).hexdigest()[:16] + '"')


@cache
def assets() -> dict[str, Asset]:
    """Read once: the files ship in the package and do not change while it runs."""
    # Vendored libraries sit in a folder each (uplot/), under their relative path.
    return {name: _asset(path.read_bytes(), path.name)
            for path in sorted(STATIC_DIR.rglob("*"))
            if path.is_file() and (name := path.relative_to(STATIC_DIR).as_posix()) != "index.html"}


@cache
def asset_version() -> str:
    digest = hashlib.sha256()
    for name, asset in assets().items():
        digest.update(name.encode() + b"\0" + asset.etag.encode())
    return digest.hexdigest()[:12]


@cache
def page() -> Asset:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return _asset(html.replace(STATIC_URL, f"{STATIC_URL}{asset_version()}/").encode(), "x.html")


def _answer(request: Request, asset: Asset, cache_control: str) -> Response:
    gzipped = accepts_gzip(request.headers.raw)
    # Each encoding is its own representation, with its own ETag (RFC 9110, 8.8.3).
    etag = asset.etag[:-1] + '-gz"' if gzipped else asset.etag
    headers = {"Cache-Control": cache_control, "ETag": etag, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", "").replace("W/", "").split(", "):
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(asset.gzipped if gzipped else asset.body, media_type=asset.media_type,
                    headers=headers)


def install_dashboard(app: FastAPI) -> None:
    """``GET /``, ``/favicon.ico`` and ``/ui/static/<version>/*``. Public, like ``/docs``:
    the page holds no data."""

    @app.get("/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        return _answer(request, page(), REVALIDATE)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon(request: Request) -> Response:
        # Asked for by browsers and tools that never read the page's <link rel="icon">.
        return _answer(request, assets()["favicon.svg"], REVALIDATE)

    @app.get(STATIC_URL + "{version}/{name:path}", include_in_schema=False)
    async def dashboard_asset(version: str, name: str, request: Request) -> Response:
        asset = assets().get(name)
        if asset is None:
            raise NotFound(f"No dashboard file '{name}'", None)
        return _answer(request, asset, FOREVER if version == asset_version() else REVALIDATE)
