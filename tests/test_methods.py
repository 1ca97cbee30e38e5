"""Which methods each path answers, and the ``Allow`` header of a 405 saying so: what
schemathesis found wrong (test_openapi_contract.py), each as a plain regression test."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppHarness


@pytest.fixture
async def app(make_settings: Any, make_app: Any) -> AppHarness:
    harness: AppHarness = await make_app(make_settings(fake=True))
    return harness


@pytest.mark.parametrize(("path", "allowed"), [
    ("/api/instances", "GET, POST"),  # said "GET"
    ("/api/config", "GET, PUT"),  # said "GET"
    ("/api/instances/x", "GET, PUT, DELETE"),
    ("/api/instances/start-all", "POST"),  # said "GET, POST, PUT, DELETE"
])
async def test_a_405_allows_every_method_of_its_path(
    app: AppHarness, path: str, allowed: str
) -> None:
    answer = await app.client.request("PATCH", path)
    assert answer.status_code == 405
    assert answer.json()["code"] == "METHOD_NOT_ALLOWED"
    assert answer.headers["allow"] == allowed


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("TRACE", "/v1/models", "GET"),  # was 400 model_required
    ("POST", "/v1/models", "GET"),
    ("TRACE", "/v1/chat/completions", "POST"),  # was 404 model_not_found
    ("GET", "/v1/completions", "POST"),
    ("DELETE", "/v1/anything/else", "POST"),
])
async def test_the_gateway_answers_405_to_methods_it_does_not_serve(
    app: AppHarness, method: str, path: str, allowed: str
) -> None:
    answer = await app.client.request(method, path, json={"model": "m"})
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["error"]["code"] == "method_not_allowed"


async def test_a_head_to_the_gateway_gets_headers_and_no_body(app: AppHarness) -> None:
    """A body after a HEAD's answer is read as the start of the next answer."""
    port = app.client.base_url.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"HEAD /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
                 b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert second.startswith(b"HTTP/1.1 200 "), second
    writer.close()


async def test_batch_paths_are_not_instance_names(app: AppHarness, fake_model: Path) -> None:
    for name in ("start-all", "stop-all"):
        answer = await app.client.post("/api/instances",
                                       json={"name": name, "model_path": str(fake_model)})
        assert answer.status_code == 400
        assert answer.json()["code"] == "VALIDATION_ERROR"
    assert (await app.client.get("/api/instances")).json()["instances"] == []


async def test_the_openapi_document_declares_the_gateway_path_parameter(
    app: AppHarness,
) -> None:
    paths = (await app.client.get("/openapi.json")).json()["paths"]
    assert [p["name"] for p in paths["/v1/{path}"]["post"]["parameters"]] == ["path"]
    assert "/v1/models/{model}" in paths
    for status in ("401", "403", "404", "429", "503"):
        assert status in paths["/api/instances/{name}"]["get"]["responses"], status
