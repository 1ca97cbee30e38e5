"""The operator proxy (``/api/instances/{name}/proxy/...``) at the backend-HTTP edge it shares
with ``/v1`` (gateway/edge.py): it holds a lease like ``/v1``, counts as use, and relays a
compressed body with the header that says so."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from tests.conftest import AppHarness
from tests.support.helpers import wait_until


async def _running(app: AppHarness, name: str, model: Path) -> None:
    created = await app.client.post("/api/instances",
                                    json={"name": name, "model_path": str(model)})
    assert created.status_code == 201, created.text
    started = await app.client.post(f"/api/instances/{name}/start?wait=true")
    assert started.status_code == 200, started.text


async def test_a_proxied_stream_holds_a_lease_until_it_ends(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    """While the lease is out, neither an idle stop nor an eviction touches the instance
    (supervisor/leases.py); before, the proxy took none and a stream could be killed."""
    app: AppHarness = await make_app(make_settings())
    await _running(app, "px", model)
    owner = app.manager.owner("px")
    body = {"prompt": "hello", "n_predict": 32, "ignore_eos": True, "stream": True}
    async with app.client.stream("POST", "/api/instances/px/proxy/completion",
                                 json=body) as answer:
        assert answer.status_code == 200
        assert answer.headers["x-accel-buffering"] == "no"
        chunks = answer.aiter_raw()
        assert await chunks.__anext__()
        assert owner.leases.inflight == 1
        async for _ in chunks:
            pass
    wait_until(lambda: owner.leases.inflight == 0, what="the lease given back")


async def test_proxy_use_counts_as_use(make_settings: Any, make_app: Any, model: Path) -> None:
    app: AppHarness = await make_app(make_settings())
    await _running(app, "used", model)
    owner = app.manager.owner("used")
    before = owner.leases.last_used
    time.sleep(0.01)
    assert (await app.client.get("/api/instances/used/proxy/props")).status_code == 200
    assert owner.leases.last_used > before
    assert owner.leases.inflight == 0


async def test_a_compressed_answer_reaches_the_client_readable(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    """The fake backend compresses whatever it is asked (this llama-server never does): the
    body and its Content-Encoding go together; before, the header was dropped and the
    client got gzip bytes it took for JSON."""
    app: AppHarness = await make_app(make_settings(fake=True))
    await _running(app, "gz", fake_model)
    answer = await app.client.get("/api/instances/gz/proxy/gzip",
                                  headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    document = answer.json()
    assert document["compressed"] is True
    assert document["authorization"] is True  # the backend's key, added
    assert document["accept_encoding"] == "identity"  # the client's is not passed on


async def test_the_proxy_shares_the_gateways_client_and_is_not_queued_behind_generations(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    """One upstream client for /v1 and the proxy (gateway/pool.py), with an operator lane: while
    every /v1 connection to the instance carries a generation, ``proxy/slots`` still answers,
    and shows them. Before, the proxy had an httpx client of its own; put on the /v1 pool
    without a lane, it waited for the generations it was meant to watch. (The stand-in backend
    holds its streams open for as long as the test needs; the tiny model's context ends a real
    llama-server's in a fraction of a second.)"""
    app: AppHarness = await make_app(make_settings(fake=True))
    created = await app.client.post("/api/instances", json={
        "name": "busy", "model_path": str(fake_model),
        "extra_args": ["--fake-stream-chunks", "300", "--fake-chunk-interval", "0.1"]})
    assert created.status_code == 201, created.text
    assert (await app.client.post("/api/instances/busy/start?wait=true")).status_code == 200
    port = app.manager.owner("busy").port
    pool = app.app.state.services.gateway.pool
    body = {"model": "busy", "prompt": "hi", "stream": True}
    readers = []  # kept: an abandoned line iterator closes its stream when collected
    async with contextlib.AsyncExitStack() as streams:
        for _ in range(4):  # the work lane's cap (a backend without --parallel: 4)
            answer = await streams.enter_async_context(
                app.client.stream("POST", "/v1/completions", json=body, timeout=120))
            assert answer.status_code == 200
            readers.append(answer.aiter_lines())
            assert (await readers[-1].__anext__()).startswith("data: ")
        assert pool.idle_connections(port) == 0
        slots = await asyncio.wait_for(app.client.get("/api/instances/busy/proxy/slots"), 20)
        assert slots.status_code == 200, slots.text
        # Answered while all four streams were still being written.
        assert sum(slot["is_processing"] for slot in slots.json()) == 4
        # It went through the pool, on its own lane, and left its connection there.
        assert pool.idle_connections(port, "operator") == 1
        for reader in readers:  # and the generations went on meanwhile
            line = ""
            while not line:
                line = await reader.__anext__()
            assert line.startswith("data: ")


async def _busy_streams(app: AppHarness, fake_model: Path, streams: contextlib.AsyncExitStack,
                        count: int, path: str, body: dict[str, Any]) -> list[Any]:
    """``count`` long streams open on instance "busy" (the stand-in backend), each past its
    first line: the readers, kept (an abandoned one closes its stream when collected)."""
    readers = []
    for _ in range(count):
        answer = await streams.enter_async_context(
            app.client.stream("POST", path, json=body, timeout=120))
        assert answer.status_code == 200
        readers.append(answer.aiter_lines())
        assert await readers[-1].__anext__()
    return readers


async def _busy_instance(app: AppHarness, fake_model: Path) -> Any:
    created = await app.client.post("/api/instances", json={
        "name": "busy", "model_path": str(fake_model),
        "extra_args": ["--fake-stream-chunks", "300", "--fake-chunk-interval", "0.1"]})
    assert created.status_code == 201, created.text
    assert (await app.client.post("/api/instances/busy/start?wait=true")).status_code == 200
    return app.manager.owner("busy").leases


async def _leaves_while_queued(app: AppHarness, leases: Any, held: int, path: str,
                               body: dict[str, Any]) -> None:
    """A request queued behind ``held`` streams takes a lease; its client leaving gives it
    back while the streams still run (before, both outlived the client until a connection
    freed, and the request was then sent for nobody)."""
    queued = asyncio.create_task(app.client.post(path, json=body, timeout=120))
    for _ in range(500):  # a bound, not a timing goal
        if leases.inflight == held + 1:
            break
        await asyncio.sleep(0.02)
    assert leases.inflight == held + 1, "the queued request took no lease"
    queued.cancel()  # the client goes away
    await asyncio.gather(queued, return_exceptions=True)
    for _ in range(500):
        if leases.inflight == held:
            break
        await asyncio.sleep(0.02)
    assert leases.inflight == held, "the lease was held after the client left"


async def test_a_v1_request_whose_client_leaves_while_queued_gives_its_lease_back(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    leases = await _busy_instance(app, fake_model)
    body = {"model": "busy", "prompt": "hi", "stream": True}
    async with contextlib.AsyncExitStack() as streams:
        readers = await _busy_streams(app, fake_model, streams, 4, "/v1/completions", body)
        await _leaves_while_queued(app, leases, 4, "/v1/completions", body)
        assert all([await reader.__anext__() is not None for reader in readers])


async def test_a_proxied_request_whose_client_leaves_while_queued_gives_its_lease_back(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    """The operator lane is one connection: a second proxied request waits for it."""
    app: AppHarness = await make_app(make_settings(fake=True))
    leases = await _busy_instance(app, fake_model)
    path = "/api/instances/busy/proxy/v1/completions"
    body = {"model": "busy", "prompt": "hi", "stream": True}
    async with contextlib.AsyncExitStack() as streams:
        readers = await _busy_streams(app, fake_model, streams, 1, path, body)
        await _leaves_while_queued(app, leases, 1, path, body)
        assert await readers[0].__anext__() is not None
