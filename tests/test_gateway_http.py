"""The /v1 gateway at the HTTP layer (gateway/http_protocol.py): keep-alive and pipelining
shared with /api, HTTP/1.0 clients, Expect: 100-continue, oversized bodies, and a backend that
dies in the middle of a streamed answer. Real llama-servers, raw sockets where the wire matters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools
import pytest

from llamactl.backends.llama_cpp.command import slots_in
from llamactl.gateway import http_protocol
from tests.conftest import AppHarness
from tests.test_gateway import COMPLETION, LONG_STREAM, LONG_STREAM_OPTIONS, create


class _Answers:
    """HTTP/1.x answers read off a raw connection, in order."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self._headers: dict[bytes, bytes] = {}
        self._body = bytearray()
        self._begun = False

    def on_message_begin(self) -> None:
        self._begun = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, bytes(self._body)))
        self._headers, self._body, self._begun = {}, bytearray(), False

    def closed(self) -> None:
        """The connection ended: that ends an answer without a length (httptools has no
        call for it)."""
        if self._begun:
            self.on_message_complete()


async def exchange(app: AppHarness, data: bytes, answers: int,
                   until_closed: bool = False) -> tuple[list[tuple[int, dict[bytes, bytes],
                                                                   bytes]], bool]:
    """Write ``data`` on one new connection; read ``answers`` answers (and, if asked, on to
    the connection's end). Returns them and whether llamactl closed the connection."""
    address = urlsplit(str(app.client.base_url))
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(data)
    parsed = _Answers()
    closed = False
    try:
        while len(parsed.done) < answers or until_closed:
            chunk = await asyncio.wait_for(reader.read(65536), 60)
            if not chunk:
                closed = True
                parsed.closed()
                break
            parsed.parser.feed_data(chunk)
    finally:
        writer.close()
    return parsed.done, closed


def request(method: str, path: str, body: bytes = b"", version: str = "1.1",
            headers: str = "") -> bytes:
    return (f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def test_v1_and_api_requests_share_a_pipelined_keep_alive_connection(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "p", model)
    completion = json.dumps({"model": "p", **COMPLETION}).encode()
    answers, closed = await exchange(app, b"".join([
        request("POST", "/v1/completions", completion),  # starts the instance on demand
        request("GET", "/api/instances/p"),
        request("GET", "/v1/models"),
        request("POST", "/v1/completions", b'{"model": "nope"}'),
        request("POST", "/v1/completions", completion),
    ]), answers=5)
    assert not closed
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 200]
    assert json.loads(answers[0][2])["object"] == "text_completion"
    assert json.loads(answers[1][2])["status"] == "running"
    assert [m["id"] for m in json.loads(answers[2][2])["data"]] == ["p"]
    assert json.loads(answers[3][2])["error"]["code"] == "model_not_found"
    assert json.loads(answers[4][2])["choices"]


async def test_an_http_1_0_client_gets_a_stream_ended_by_closing(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "old", model)
    body = json.dumps({"model": "old", **COMPLETION, "stream": True}).encode()
    answers, closed = await exchange(app, request("POST", "/v1/completions", body, "1.0"),
                                     answers=1, until_closed=True)
    assert closed
    status, headers, text = answers[0]
    assert status == 200
    assert b"transfer-encoding" not in headers  # HTTP/1.0 has no chunks
    assert text.rstrip().endswith(b"data: [DONE]")


async def test_expect_100_continue_is_answered(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "e", model)
    address = urlsplit(str(app.client.base_url))
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        body = json.dumps({"model": "e", **COMPLETION}).encode()
        head = request("POST", "/v1/completions", body, headers="Expect: 100-continue\r\n")
        writer.write(head[:-len(body)])
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        writer.write(body)
        parsed = _Answers()
        while not parsed.done:
            parsed.parser.feed_data(await asyncio.wait_for(reader.read(65536), 60))
        assert parsed.done[0][0] == 200
    finally:
        writer.close()


async def test_a_body_over_the_limit_is_refused_and_the_connection_closed(
    make_settings: Any, make_app: Any, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_protocol, "MAX_BODY_BYTES", 1000)
    app: AppHarness = await make_app(make_settings())
    await create(app, "big", model)
    body = json.dumps({"model": "big", "prompt": "x" * 5000}).encode()
    answers, closed = await exchange(app, request("POST", "/v1/completions", body), answers=1,
                                     until_closed=True)
    assert closed
    assert answers[0][0] == 413
    assert json.loads(answers[0][2])["error"]["code"] == "body_too_large"
    assert (await app.client.get("/api/instances/big")).json()["status"] == "stopped"


async def test_a_backend_that_dies_mid_stream_ends_the_stream_cleanly_and_is_logged(
    make_settings: Any, make_app: Any, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "dies", model, auto_restart=False, options=LONG_STREAM_OPTIONS)
    await app.client.post("/api/instances/dies/start?wait=true")
    pid = (await app.client.get("/api/instances/dies")).json()["pid"]
    events = 0
    with caplog.at_level(logging.WARNING, logger="llamactl.gateway.exchange"):
        async with app.client.stream("POST", "/v1/completions",
                                     json={"model": "dies", **LONG_STREAM}) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():  # ends without an error
                if line.startswith("data: "):
                    events += 1
                    if events == 5:
                        os.kill(pid, signal.SIGKILL)
    assert events >= 5
    assert any("dies ended its answer early" in r.getMessage() for r in caplog.records)
    assert (await app.client.get("/v1/models")).status_code == 200  # llamactl carries on


async def test_an_instance_with_more_slots_gets_as_many_connections(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    # Four connections per backend by default; an instance launched with --parallel 6 must
    # have six requests processed at once, not four with two waiting in llamactl.
    app: AppHarness = await make_app(make_settings())
    await create(app, "wide", model, options={"parallel": 6, "context_size": 6 * 2048})
    await app.client.post("/api/instances/wide/start?wait=true")
    body = {"model": "wide", "prompt": "hi", "max_tokens": 1900, "ignore_eos": True,
            "stream": True}
    busiest = 0

    async def stream() -> None:
        async with app.client.stream("POST", "/v1/completions", json=body) as response:
            assert response.status_code == 200
            async for _ in response.aiter_bytes():
                pass

    streams = [asyncio.create_task(stream()) for _ in range(6)]
    try:
        while not all(task.done() for task in streams) and busiest < 6:
            slots = (await app.client.get("/api/instances/wide/proxy/slots")).json()
            busiest = max(busiest, sum(1 for slot in slots if slot["is_processing"]))
            await asyncio.sleep(0.02)
    finally:
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    assert busiest == 6


def test_the_slot_count_is_read_from_the_launched_command() -> None:
    assert slots_in(None) is None
    assert slots_in(["llama-server", "--model", "m"]) is None
    assert slots_in(["llama-server", "--parallel", "8", "--port", "1"]) == 8
    assert slots_in(["llama-server", "-np", "2", "--parallel", "6"]) == 6  # the last one
    assert slots_in(["llama-server", "--parallel", "-1"]) is None  # auto


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    make_settings: Any, make_app: Any
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    address = urlsplit(str(app.client.base_url))
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        began = asyncio.get_running_loop().time()
        for _ in range(3):  # each answer starts the idle time again
            writer.write(request("GET", "/v1/models"))
            parsed = _Answers()
            while not parsed.done:
                parsed.parser.feed_data(await asyncio.wait_for(reader.read(65536), 10))
            await asyncio.sleep(1)
        last = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(65536), 15) == b""  # closed by llamactl
        closed = asyncio.get_running_loop().time()
        # uvicorn's keep-alive timeout is 5 s, counted from the last answer, not the first.
        assert closed - last >= 3.5
        assert closed - began >= 6.5
    finally:
        writer.close()


async def test_an_absolute_form_target_reaches_the_gateway(
    make_settings: Any, make_app: Any
) -> None:
    # A proxy in front may send the whole URL as the target (RFC 9112, 3.2.2).
    app: AppHarness = await make_app(make_settings(fake=True))
    answers, closed = await exchange(app, request("GET", "http://llamactl/v1/models"),
                                     answers=1)
    assert not closed
    assert answers[0][0] == 200
    assert json.loads(answers[0][2])["object"] == "list"


async def test_a_stream_in_flight_ends_cleanly_when_the_gateway_closes(
    make_settings: Any, make_app: Any, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What the lifespan's shutdown does once uvicorn's grace period is over: the answers
    # still being relayed end (a stream with its last chunk) rather than outlive llamactl.
    app: AppHarness = await make_app(make_settings())
    await create(app, "long", model, options=LONG_STREAM_OPTIONS)
    await app.client.post("/api/instances/long/start?wait=true")
    events = 0
    with caplog.at_level(logging.WARNING, logger="llamactl.gateway.exchange"):
        async with app.client.stream("POST", "/v1/completions",
                                     json={"model": "long", **LONG_STREAM}) as response:
            async for line in response.aiter_lines():  # ends without an error
                if line.startswith("data: "):
                    events += 1
                    if events == 5:
                        await app.app.state.services.gateway.close()
    assert 5 <= events < LONG_STREAM["max_tokens"]
    assert any("shutting down" in r.getMessage() for r in caplog.records)


async def test_a_connection_is_ready_for_the_next_stream_after_one_ends(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    # llama-server closes its connection after a stream; the gateway opens the next one
    # ahead of need, so a chat's next turn does not wait for a connection.
    app: AppHarness = await make_app(make_settings())
    await create(app, "chat", model)
    await app.client.post("/api/instances/chat/start?wait=true")
    port = (await app.client.get("/api/instances/chat")).json()["port"]
    pool = app.app.state.services.gateway.pool
    body = {"model": "chat", **COMPLETION, "stream": True}
    for _ in range(3):
        async with app.client.stream("POST", "/v1/completions", json=body) as response:
            assert [line async for line in response.aiter_lines() if line][-1] == "data: [DONE]"
        deadline = asyncio.get_running_loop().time() + 2
        while pool.idle_connections(port) != 1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
