"""gzip for fixed bodies (api/compression.py) and the dashboard's cache headers
(dashboard/page.py), against the real app served in-process as ``llamactl serve`` serves it."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import llamactl.api
from llamactl.api.compression import accepts_gzip
from llamactl.config import Settings
from llamactl.dashboard.page import STATIC_DIR
from tests.conftest import AppHarness
from tests.support.helpers import wait_status

GZIP = {"Accept-Encoding": "gzip"}


@pytest.fixture
async def app(make_settings: Callable[..., Settings], make_app: Any) -> AppHarness:
    harness: AppHarness = await make_app(make_settings(fake=True))
    return harness


async def raw_get(app: AppHarness, path: str, **headers: str) -> httpx.Response:
    """The bytes as sent (httpx would decode gzip and hide it)."""
    request = app.client.build_request("GET", path, headers=headers)
    answer = await app.client.send(request, stream=True)
    answer._content = b"".join([chunk async for chunk in answer.aiter_raw()])
    await answer.aclose()
    return answer


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', html)


async def test_page_and_assets_are_gzipped_for_a_client_that_accepts_it(app: AppHarness) -> None:
    page = await raw_get(app, "/", **GZIP)
    assert page.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in page.headers["vary"].lower()
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = gzip.decompress(page.content).decode()
    assert int(page.headers["content-length"]) == len(page.content) < len(html.encode())
    for url in asset_urls(html):
        asset = await raw_get(app, url, **GZIP)
        assert asset.status_code == 200, url
        assert asset.headers["content-encoding"] == "gzip", url
        assert len(gzip.decompress(asset.content)) > len(asset.content)


def test_every_module_is_preloaded_with_the_page() -> None:
    """Else the browser finds the imports only as it reads each module (three round trips)."""
    html = (STATIC_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/ui/static/([\w.-]+)">', html))
    # charts.js (and the uPlot it brings) is imported when an instance's page first shows
    # its charts: not on the first load (bench/dashboard.py's budget). main.js and boot.js are
    # the page's own module scripts, loaded by their <script> tags.
    page_scripts = {"main.js", "charts.js", "boot.js"}
    modules = {path.name for path in STATIC_DIR.glob("*.js")} - page_scripts
    assert preloaded == modules


async def test_no_gzip_unless_asked(app: AppHarness) -> None:
    for headers in ({"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0"}):
        page = await raw_get(app, "/", **headers)
        assert "content-encoding" not in page.headers
        assert page.content.startswith(b"<!doctype html>")


async def test_assets_have_versioned_urls_cached_for_a_year_and_etags(app: AppHarness) -> None:
    page = await app.client.get("/")
    assert page.headers["cache-control"] == "no-cache"
    urls = asset_urls(page.text)
    assert urls
    assert all(re.fullmatch(r"/ui/static/[0-9a-f]{12}/[\w.-]+", url) for url in urls)
    asset = await app.client.get(urls[0])
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = await app.client.get(urls[0], headers={"If-None-Match": asset.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    # A page from before an upgrade asks for an old version: today's file, not to be kept.
    old = await app.client.get(re.sub(r"/[0-9a-f]{12}/", "/000000000000/", urls[0]))
    assert old.status_code == 200
    assert old.headers["cache-control"] == "no-cache"
    missing = await app.client.get(urls[0].rsplit("/", 1)[0] + "/nothing.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"


async def test_large_json_is_gzipped_small_json_is_not(app: AppHarness) -> None:
    large = await raw_get(app, "/openapi.json", **GZIP)
    assert large.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(large.content))["openapi"]
    small = await raw_get(app, "/api/instances", **GZIP)
    assert "content-encoding" not in small.headers
    assert json.loads(small.content) == {"instances": []}


async def test_a_large_file_is_compressed_whole(app: AppHarness) -> None:
    """Swagger UI's bundle (1.7 MB, sent by the file in chunks; compressed off the loop)."""
    bundle = Path(llamactl.api.__file__).parent / "static" / "swagger-ui" / "swagger-ui-bundle.js"
    answer = await raw_get(app, "/docs/static/swagger-ui/swagger-ui-bundle.js", **GZIP)
    assert answer.headers["content-encoding"] == "gzip"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert gzip.decompress(answer.content) == bundle.read_bytes()


async def test_event_stream_is_never_compressed_and_still_streams(app: AppHarness,
                                                                 fake_model: Path) -> None:
    async with app.client.stream("GET", "/api/events", headers=GZIP) as feed:
        assert feed.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in feed.headers
        made = await app.client.post("/api/instances", json={
            "name": "sse-gzip", "model_path": str(fake_model)})
        assert made.status_code == 201, made.text
        assert (await app.client.post("/api/instances/sse-gzip/start")).status_code == 200
        async for line in feed.aiter_lines():
            if line.startswith("data: "):
                break  # an event arrived while the stream is open: not held back


@pytest.mark.parametrize(("header", "accepted"), [
    (b"gzip", True), (b"deflate, gzip;q=0.5", True), (b"*", True), (b"br", False),
    (b"gzip;q=0", False), (b"gzip; q=0.0", False), (b"identity", False),
])
def test_accept_encoding_is_read_as_rfc_9110_says(header: bytes, accepted: bool) -> None:
    assert accepts_gzip([(b"accept-encoding", header)]) is accepted


async def test_the_favicon_is_served_where_browsers_ask_for_it(app: AppHarness) -> None:
    html = (await app.client.get("/")).text
    linked = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html)
    assert linked is not None
    for url in (linked.group(1), "/favicon.ico"):
        answer = await app.client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["content-type"] == "image/svg+xml"
        assert answer.content.startswith(b"<svg")


async def test_the_instance_list_kept_between_answers_follows_every_change(
    app: AppHarness, fake_model: Path
) -> None:
    """The list's bytes and its gzip are kept until something in them changes
    (api/views.py): each answer must still be what the instances are now."""
    async def listed(**headers: str) -> list[dict[str, Any]]:
        answer = await raw_get(app, "/api/instances", **headers)
        body = (gzip.decompress(answer.content)
                if answer.headers.get("content-encoding") == "gzip" else answer.content)
        instances: list[dict[str, Any]] = json.loads(body)["instances"]
        return instances

    for index in range(8):  # over MINIMUM_SIZE: compressed
        made = await app.client.post("/api/instances", json={
            "name": f"kept-{index}", "model_path": str(fake_model),
            "environment": {"TOKEN": "s3cret"}})
        assert made.status_code == 201, made.text
    first = await listed(**GZIP)
    assert [i["name"] for i in first] == [f"kept-{i}" for i in range(8)]
    assert first == await listed()  # the same, plain
    assert first == await listed(**GZIP)  # and from what was kept

    assert (await app.client.put("/api/instances/kept-1", json={
        "options": {"context_size": 512}})).status_code == 200
    assert (await app.client.delete("/api/instances/kept-2")).status_code == 200
    assert (await app.client.put("/api/instances/kept-3", json={
        "extra_args": ["--fake-load-seconds", "1"]})).status_code == 200
    assert (await app.client.post("/api/instances/kept-3/start")).status_code == 200
    starting = {i["name"]: i for i in await listed(**GZIP)}["kept-3"]
    assert (starting["status"], starting["pid"] is not None) == ("starting", True)
    await wait_status(app.client, "kept-3", "running")  # the same process: only status moved
    for headers in (GZIP, {}):
        now = {i["name"]: i for i in await listed(**headers)}
        assert "kept-2" not in now
        assert now["kept-1"]["options"] == {"context_size": 512}
        assert now["kept-3"]["status"] == "running"
        assert now["kept-3"]["pid"] is not None
        for name, instance in now.items():
            one = (await app.client.get(f"/api/instances/{name}")).json()
            assert instance == one | {"stats": instance["stats"]}  # uptime may tick between
    assert (await app.client.post("/api/instances/kept-3/stop")).status_code == 200
    await wait_status(app.client, "kept-3", "stopped")
    assert {i["name"]: i["status"] for i in await listed(**GZIP)}["kept-3"] == "stopped"
