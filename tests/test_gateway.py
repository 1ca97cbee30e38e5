"""The /v1 gateway against real llama-servers: routing, on-demand start, streaming, idle stop,
capacity and eviction, auth, and the official openai client."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from llamactl.config.file import update_config_file
from llamactl.security.passwords import hash_password
from tests.conftest import AppHarness
from tests.support.helpers import (
    backends_under,
    llamactl_server,
    port_block,
    wait_status,
    wait_until,
    write_config,
    write_unloadable_model,
)

COMPLETION = {"prompt": "hello", "max_tokens": 4, "ignore_eos": True}
# Long enough to outlast a one-second idle timeout even on a fast machine: the tiny model
# makes a few thousand tokens a second.
LONG_STREAM_OPTIONS = {"context_size": 16384, "parallel": 1}
LONG_STREAM = {"prompt": "hi", "max_tokens": 14000, "ignore_eos": True, "stream": True}


async def create(app: AppHarness, name: str, model: Path, **fields: Any) -> None:
    response = await app.client.post("/api/instances",
                                     json={"name": name, "model_path": str(model), **fields})
    assert response.status_code == 201, response.text


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])
    error: dict[str, Any] = body["error"]
    return error


async def test_models_routing_and_openai_errors(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "a", model)
    await create(app, "b", model, aliases=["gpt-test"])
    models = (await app.client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [(m["id"], m["object"], m["status"]) for m in models["data"]] == [
        ("a", "model", "stopped"), ("b", "model", "stopped")]
    assert models["data"][1]["aliases"] == ["gpt-test"]
    assert (await app.client.get("/v1/models/b")).json()["id"] == "b"
    missing = await app.client.post("/v1/chat/completions", json={"model": "nope",
                                                                  "messages": []})
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "model_not_found"
    no_model = await app.client.post("/v1/completions", json={"prompt": "x"})
    assert no_model.status_code == 400
    assert error_of(no_model)["code"] == "model_required"
    not_json = await app.client.post("/v1/completions", content=b"{nope")
    assert error_of(not_json)["code"] == "invalid_json"
    # The alias starts and serves b.
    answer = await app.client.post("/v1/completions", json={"model": "gpt-test", **COMPLETION})
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["completion_tokens"] == 4
    assert (await app.client.get("/api/instances/b")).json()["status"] == "running"
    assert (await app.client.get("/api/instances/a")).json()["status"] == "stopped"
    duplicate = await app.client.post("/api/instances", json={
        "name": "c", "model_path": str(model), "aliases": ["a"]})
    assert duplicate.status_code == 409


async def test_twenty_concurrent_requests_to_a_stopped_instance_start_one_process(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "lazy", model)
    answers = await asyncio.gather(*(
        app.client.post("/v1/completions", json={"model": "lazy", **COMPLETION})
        for _ in range(20)
    ))
    assert [a.status_code for a in answers] == [200] * 20
    assert len(backends_under(tmp_path)) == 1
    owner = app.manager.owner("lazy")
    assert owner.leases.inflight == 0
    chat = await app.client.post("/v1/chat/completions", json={
        "model": "lazy", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert chat.status_code == 200
    assert chat.json()["object"] == "chat.completion"


async def test_a_failed_start_answers_every_waiting_request(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    garbage = write_unloadable_model(tmp_path / "models" / "garbage.gguf")
    await create(app, "broken", garbage)
    answers = await asyncio.gather(*(
        app.client.post("/v1/completions", json={"model": "broken", **COMPLETION})
        for _ in range(5)
    ))
    for answer in answers:
        assert answer.status_code == 503
        error = error_of(answer)
        assert error["code"] == "model_start_failed"
        # Issue 27: any key holder asks; no log line, path or command line in the answer.
        assert "could not be started" in error["message"]
        for detail in (str(tmp_path), "garbage.gguf", "--port", "llama-server",
                       "unknown model architecture", "exited with code"):
            assert detail not in answer.text
    assert backends_under(tmp_path) == []
    instance = (await app.client.get("/api/instances/broken")).json()  # the API still says
    assert "unknown model architecture" in instance["last_error"]


async def test_on_demand_start_can_be_turned_off(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "manual", model, on_demand_start=False)
    answer = await app.client.post("/v1/completions", json={"model": "manual", **COMPLETION})
    assert answer.status_code == 503
    assert error_of(answer)["code"] == "model_not_running"


async def test_keys_and_tokens_on_v1(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    secret = "gateway-secret-" + "z" * 40

    def users(doc: dict[str, Any]) -> None:
        doc["auth"] = {"enabled": True, "secret": secret, "users": [
            {"username": "v", "password_hash": hash_password("viewer-pass"), "role": "viewer"}]}

    update_config_file(config, users)
    settings = make_settings(sections={"auth": {"enabled": True, "secret": secret}})
    app: AppHarness = await make_app(settings, config)
    token = (await app.client.post("/api/auth/login",
                                   json={"username": "v", "password": "viewer-pass"})).json()
    store = app.app.state.services.auth.keys
    _, only_a = await store.create("only-a", ["a"])
    anonymous = await app.client.get("/v1/models")
    assert anonymous.status_code == 401
    assert error_of(anonymous)["type"] == "authentication_error"
    bad = await app.client.get("/v1/models", headers={"Authorization": "Bearer llk_wrong"})
    assert bad.status_code == 401
    admin_headers = {"Authorization": f"Bearer {token['token']}"}
    key_headers = {"Authorization": f"Bearer {only_a}"}
    # Instances are created by an admin; here the store is reached directly for brevity.
    for name in ("a", "b"):
        await app.manager.create(_create_body(name, model))
    assert [m["id"] for m in (await app.client.get("/v1/models",
                                                   headers=key_headers)).json()["data"]] == ["a"]
    assert len((await app.client.get("/v1/models", headers=admin_headers)).json()["data"]) == 2
    refused = await app.client.post("/v1/completions", headers=key_headers,
                                    json={"model": "b", **COMPLETION})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "model_not_allowed"
    served = await app.client.post("/v1/completions", headers=key_headers,
                                   json={"model": "a", **COMPLETION})
    assert served.status_code == 200
    await store.revoke("only-a")
    revoked = await app.client.post("/v1/completions", headers=key_headers,
                                    json={"model": "a", **COMPLETION})
    assert revoked.status_code == 401


def _create_body(name: str, model: Path) -> Any:
    from llamactl.instances.changes import NewInstance

    return NewInstance(name=name, model_path=str(model))


# ---- a real llamactl server: streaming needs real sockets ----


@pytest.fixture
def server_config(tmp_path: Path, llama_server_bin: str) -> Any:
    def build(**instances: Any) -> Path:
        low, high = port_block()
        return write_config(tmp_path / "config.yaml", {
            "backends": {"llama_cpp": {"command": llama_server_bin}},
            "instances": {"port_range": [low, high], **instances},
            "rate_limit": {"enabled": False},
        })

    return build


def stream_events(client: httpx.Client, model: str, delay: float = 0.0,
                  stop_after: int | None = None) -> tuple[list[str], httpx.Headers]:
    events: list[str] = []
    with client.stream("POST", "/v1/completions", json={"model": model, **LONG_STREAM},
                       timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
                if stop_after is not None and len(events) >= stop_after:
                    break
                if delay:
                    time.sleep(delay)
        return events, response.headers


def test_streams_are_relayed_chunk_by_chunk(
    tmp_path: Path, server_config: Any, model: Path
) -> None:
    config = server_config()
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        client.post("/api/instances", json={"name": "s", "model_path": str(model),
                                            "options": LONG_STREAM_OPTIONS})
        events, headers = stream_events(client, "s")
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        assert events[-1] == "[DONE]"
        assert len(events) > 100  # relayed as chunks, not one blob
        assert json.loads(events[0])["object"] == "text_completion"


# The stream lasts STREAM_CHUNKS x CHUNK_INTERVAL = 6 s, paced by the stand-in backend, twice
# the 3 s idle timeout: how long it lasts is the test's choice, not the machine's speed.
STREAM_CHUNKS, CHUNK_INTERVAL = 30, 0.2
IDLE_TIMEOUT_MINUTES = 0.05


async def test_idle_stop_waits_for_a_stream_longer_than_the_idle_timeout(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "s", fake_model, idle_timeout=IDLE_TIMEOUT_MINUTES, extra_args=[
        "--fake-stream-chunks", str(STREAM_CHUNKS),
        "--fake-chunk-interval", str(CHUNK_INTERVAL)])
    began = time.monotonic()
    events: list[str] = []
    async with app.client.stream("POST", "/v1/completions", timeout=60,
                                 json={"model": "s", "prompt": "hi", "stream": True}) as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    took = time.monotonic() - began
    assert events[-1] == "[DONE]", "the stream was cut short"
    assert len(events) == STREAM_CHUNKS + 1
    assert took >= STREAM_CHUNKS * CHUNK_INTERVAL > IDLE_TIMEOUT_MINUTES * 60
    # Still running right after a stream longer than the idle timeout ...
    assert (await app.client.get("/api/instances/s")).json()["status"] == "running"
    # ... and stopped once idle for the timeout.
    await wait_status(app.client, "s", "stopped")
    logs = (await app.client.get("/api/instances/s/logs")).json()["logs"]
    assert any(entry["message"].startswith(f"idle for {IDLE_TIMEOUT_MINUTES:g} min")
               for entry in logs)


def test_a_client_that_disconnects_frees_the_backend_slot(
    tmp_path: Path, server_config: Any, model: Path
) -> None:
    config = server_config()
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        client.post("/api/instances", json={"name": "d", "model_path": str(model),
                                            "options": LONG_STREAM_OPTIONS})
        events, _ = stream_events(client, "d", stop_after=3)
        assert len(events) == 3

        def slot_idle() -> bool:
            slots = client.get("/api/instances/d/proxy/slots").json()
            return not any(slot["is_processing"] for slot in slots)

        wait_until(slot_idle, 10, "the backend to stop generating for the gone client")
        # The slot serves the next request at once.
        answer = client.post("/v1/completions", json={"model": "d", **COMPLETION})
        assert answer.status_code == 200


def test_max_running_one_evicts_idle_and_waits_for_busy(
    tmp_path: Path, server_config: Any, model: Path
) -> None:
    config = server_config(max_running=1)
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        for name in ("a", "b"):
            client.post("/api/instances", json={"name": name, "model_path": str(model),
                                                "options": LONG_STREAM_OPTIONS})
        assert client.post("/v1/completions", json={"model": "a", **COMPLETION}).status_code \
            == 200
        # A is idle: a request for B stops A and is served by B.
        assert client.post("/v1/completions", json={"model": "b", **COMPLETION}).status_code \
            == 200
        statuses = {i["name"]: i["status"] for i in client.get("/api/instances").json()[
            "instances"]}
        assert statuses == {"a": "stopped", "b": "running"}
        # B is busy with a stream: a request for A waits until that stream ends.
        finished: dict[str, float] = {}

        def long_stream() -> None:
            with server.client() as other:
                stream_events(other, "b")
            finished["b"] = time.monotonic()

        streamer = threading.Thread(target=long_stream)
        streamer.start()
        wait_until(lambda: client.get("/api/instances/b/proxy/slots").json()[0]["is_processing"],
                   10, "b to be streaming")
        answer = client.post("/v1/completions", json={"model": "a", **COMPLETION}, timeout=120)
        finished["a"] = time.monotonic()
        streamer.join(60)
        assert answer.status_code == 200
        assert finished["a"] >= finished["b"]
        statuses = {i["name"]: i["status"] for i in client.get("/api/instances").json()[
            "instances"]}
        assert statuses == {"a": "running", "b": "stopped"}
        # A manual start obeys the same limit: no room while a runs idle -> it evicts a.
        assert client.post("/api/instances/b/start?wait=true").status_code == 200
        assert client.get("/api/instances/a").json()["status"] == "stopped"


def test_the_official_openai_client_end_to_end(
    tmp_path: Path, server_config: Any, model: Path
) -> None:
    import openai

    config = server_config()
    with llamactl_server(tmp_path / "data", config) as server, server.client() as client:
        client.post("/api/instances", json={"name": "chat", "model_path": str(model)})
        client.post("/api/instances", json={"name": "embed", "model_path": str(model),
                                            "options": {"embedding": True}})
        api = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused-without-auth",
                            max_retries=0)
        assert sorted(m.id for m in api.models.list()) == ["chat", "embed"]
        chat = api.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hello"}], max_tokens=8)
        assert chat.choices[0].message.content is not None
        pieces = [chunk.choices[0].delta.content or "" for chunk in
                  api.chat.completions.create(model="chat", stream=True, max_tokens=8,
                                              messages=[{"role": "user", "content": "hi"}])
                  if chunk.choices]
        assert len(pieces) >= 2
        completion = api.completions.create(model="chat", prompt="once upon", max_tokens=4)
        assert completion.choices[0].text is not None
        vectors = api.embeddings.create(model="embed", input=["a", "b"])
        assert len(vectors.data) == 2
        assert len(vectors.data[0].embedding) == 64
        with pytest.raises(openai.NotFoundError) as caught:
            api.chat.completions.create(model="missing", messages=[{"role": "user",
                                                                   "content": "x"}])
        assert "missing" in str(caught.value)


async def test_a_request_during_an_idle_stop_restarts_the_instance_instead_of_hanging(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    # The fake backend ignores SIGTERM, so the idle stop lasts the 3 s stop timeout: long
    # enough to send a request into the middle of it (llama-swap's issue #946).
    app: AppHarness = await make_app(make_settings(fake=True, stop_timeout=3))
    await create(app, "sleepy", fake_model, idle_timeout=0.01,
                 extra_args=["--fake-ignore-sigterm"])
    await app.client.post("/api/instances/sleepy/start?wait=true")
    first_pid = (await app.client.get("/api/instances/sleepy")).json()["pid"]
    deadline = time.monotonic() + 20
    while (await app.client.get("/api/instances/sleepy")).json()["status"] != "stopping":
        assert time.monotonic() < deadline, "the idle stop never began"
        await asyncio.sleep(0.05)
    answer = await asyncio.wait_for(
        app.client.post("/v1/completions", json={"model": "sleepy", **COMPLETION}), 30)
    # The fake backend answers no POST: its own 501 proves the request reached a freshly
    # started process rather than hanging or failing in llamactl.
    assert answer.status_code == 501
    instance = (await app.client.get("/api/instances/sleepy")).json()
    assert instance["status"] == "running"
    assert instance["pid"] != first_pid


async def test_the_gateway_is_in_the_openapi_document(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    document = (await app.client.get("/openapi.json")).json()
    for path in ("/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        assert path in document["paths"]
    assert "404" in document["paths"]["/v1/completions"]["post"]["responses"]


async def test_answers_name_the_model_as_the_client_did(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "named", model)
    answer = await app.client.post("/v1/completions", json={"model": "named", **COMPLETION})
    assert answer.json()["model"] == "named"
