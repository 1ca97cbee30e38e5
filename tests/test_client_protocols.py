"""Every API an inference client speaks, through llamactl's /v1 (issue 31), with the official
``anthropic`` and ``openai`` SDKs against real llama-servers and the tiny model: credentials
where each SDK sends them, Anthropic's error envelope, its event stream relayed as is, the
Responses API, embeddings and rerank, and the tokens of each on record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from llamactl.devtools.tiny_model import N_EMBD
from tests.conftest import AppHarness

SECRET = "protocols-secret-" + "p" * 40
HELLO = [{"role": "user", "content": "hello"}]


async def create(app: AppHarness, name: str, model: Path, **fields: Any) -> None:
    answer = await app.client.post("/api/instances",
                                   json={"name": name, "model_path": str(model), **fields})
    assert answer.status_code == 201, answer.text


async def secured_app(make_settings: Any, make_app: Any, model: Path) -> tuple[AppHarness, str]:
    """llamactl with auth on, an instance "chat" made through the manager, and a key for it."""
    app: AppHarness = await make_app(make_settings(
        sections={"auth": {"enabled": True, "secret": SECRET}}))
    from llamactl.instances.changes import NewInstance

    await app.manager.create(NewInstance(name="chat", model_path=str(model)))
    _, key = await app.app.state.services.auth.keys.create("claude", ["chat"])
    return app, key


async def test_the_anthropic_sdk_with_an_inference_key(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app, key = await secured_app(make_settings, make_app, model)
    base = str(app.client.base_url)
    client = anthropic.AsyncAnthropic(base_url=base, api_key=key, max_retries=0)
    try:
        message = await client.messages.create(model="chat", max_tokens=8, messages=HELLO)
        assert message.type == "message"
        assert message.content
        assert message.content[0].type == "text"
        assert message.usage.input_tokens > 0
        async with client.messages.stream(model="chat", max_tokens=8,
                                          messages=HELLO) as stream:
            kinds = [event.type async for event in stream]
        assert kinds[0] == "message_start"
        assert "content_block_delta" in kinds
        assert "message_stop" in kinds
        counted = await client.messages.count_tokens(model="chat", messages=HELLO)
        assert counted.input_tokens > 0
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(model="missing", max_tokens=8, messages=HELLO)
        assert missing.value.body == {"type": "error", "error": {
            "type": "not_found_error", "message": "The model 'missing' does not exist"}}
    finally:
        await client.close()
    forged = anthropic.AsyncAnthropic(base_url=base, api_key="llk_forged", max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await forged.messages.create(model="chat", max_tokens=8, messages=HELLO)
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["type"] == "error"
        assert refused.value.body["error"]["type"] == "authentication_error"
    finally:
        await forged.close()


async def test_credentials_from_either_header_but_never_two_different_ones(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app, key = await secured_app(make_settings, make_app, model)
    models = "/v1/models"
    assert (await app.client.get(models, headers={"x-api-key": key})).status_code == 200
    assert (await app.client.get(models, headers={"Authorization": f"Bearer {key}"})
            ).status_code == 200
    same = {"Authorization": f"Bearer {key}", "x-api-key": key}
    assert (await app.client.get(models, headers=same)).status_code == 200
    two = await app.client.get(models, headers={"Authorization": f"Bearer {key}",
                                                "x-api-key": "llk_someone-else"})
    assert two.status_code == 401
    assert two.json()["error"]["code"] == "invalid_api_key"
    assert "Two different credentials" in two.json()["error"]["message"]
    # On Anthropic's routes, its envelope; the status is the same.
    anthropic_two = await app.client.post(
        "/v1/messages", json={"model": "chat", "max_tokens": 4, "messages": HELLO},
        headers={"x-api-key": key, "Authorization": "Bearer llk_other"})
    assert anthropic_two.status_code == 401
    assert anthropic_two.json()["type"] == "error"
    assert anthropic_two.json()["error"]["type"] == "authentication_error"
    anonymous = await app.client.post("/v1/messages/count_tokens",
                                      json={"model": "chat", "messages": HELLO})
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"type", "error"}
    assert "x-api-key" in anonymous.json()["error"]["message"]
    assert app.manager.owner("chat").status == "stopped"  # refused on the head: no start


async def test_anthropic_event_lines_are_relayed_as_the_backend_wrote_them(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "chat", model)
    body = {"model": "chat", "max_tokens": 6, "messages": HELLO, "stream": True,
            "temperature": 0}  # greedy: the same tokens both ways
    through = await app.client.post("/v1/messages", json=body)
    assert through.status_code == 200, through.text
    assert through.headers["content-type"].startswith("text/event-stream")
    port = (await app.client.get("/api/instances/chat")).json()["port"]
    key = app.manager.owner("chat").record.api_key
    async with httpx.AsyncClient(timeout=30, trust_env=False) as direct_client:
        direct = await direct_client.post(f"http://127.0.0.1:{port}/v1/messages", json=body,
                                          headers={"Authorization": f"Bearer {key}"})
    assert event_shape(through.text) == event_shape(direct.text)
    pairs = event_pairs(through.text)
    assert pairs
    assert all(name == json.loads(data)["type"] for name, data in pairs)


def event_pairs(stream: str) -> list[tuple[str, str]]:
    """Each ``event:`` line with the ``data:`` line that follows it."""
    lines = stream.splitlines()
    return [(line[6:].strip(), lines[index + 1][5:].strip())
            for index, line in enumerate(lines[:-1]) if line.startswith("event:")]


def event_shape(stream: str) -> list[str]:
    """The stream's event names and its lines' kinds (the text varies from run to run)."""
    return [line if line.startswith("event:") else line.partition(":")[0]
            for line in stream.splitlines()]


async def test_the_openai_sdk_responses_embeddings_chat_and_rerank(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "chat", model)
    await create(app, "embed", model, options={"embedding": True, "pooling": "mean"})
    await create(app, "rank", model, options={"reranking": True})
    client = openai.AsyncOpenAI(base_url=f"{app.client.base_url}/v1", api_key="unused",
                                max_retries=0)
    try:
        response = await client.responses.create(model="chat", input="hello",
                                                  max_output_tokens=8)
        assert response.object == "response"
        assert response.usage is not None
        assert response.usage.input_tokens > 0
        vectors = await client.embeddings.create(model="embed", input=["a", "b c"])
        assert [len(item.embedding) for item in vectors.data] == [N_EMBD, N_EMBD]
        chat = await client.chat.completions.create(model="chat", messages=HELLO,
                                                    max_tokens=4)
        assert chat.choices[0].message.content is not None
        with pytest.raises(openai.BadRequestError) as refused:
            await client.embeddings.create(model="chat", input="x")
        assert refused.value.code == "unsupported_capability"
    finally:
        await client.close()
    ranked = await app.client.post("/v1/rerank", json={
        "model": "rank", "query": "hello", "documents": ["hello world", "the day"]})
    assert ranked.status_code == 200, ranked.text
    assert sorted(r["index"] for r in ranked.json()["results"]) == [0, 1]
    statuses = {i["name"]: i["status"] for i in
                (await app.client.get("/api/instances")).json()["instances"]}
    assert statuses == {"chat": "running", "embed": "running", "rank": "running"}


async def test_anthropic_responses_and_embedding_tokens_on_record(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "chat", model)
    await create(app, "embed", model, options={"embedding": True, "pooling": "mean"})
    whole = await app.client.post("/v1/messages", json={
        "model": "chat", "max_tokens": 5, "messages": HELLO})
    assert whole.status_code == 200, whole.text
    streamed = await app.client.post("/v1/messages", json={
        "model": "chat", "max_tokens": 5, "messages": HELLO, "stream": True})
    told = [json.loads(data) for name, data in event_pairs(streamed.text)]
    stream_input = next(e["message"]["usage"]["input_tokens"] for e in told
                        if e["type"] == "message_start")
    stream_output = [e["usage"]["output_tokens"] for e in told
                     if e["type"] == "message_delta"][-1]
    vectors = await app.client.post("/v1/embeddings", json={"model": "embed",
                                                            "input": ["a b c", "d"]})
    assert vectors.status_code == 200, vectors.text
    response = await app.client.post("/v1/responses", json={
        "model": "chat", "input": "hello", "max_output_tokens": 5, "stream": True})
    completed = [json.loads(data) for name, data in event_pairs(response.text)
                 if name == "response.completed"][-1]["response"]["usage"]
    by_endpoint = await wait_for_records(app, 4)
    assert (by_endpoint["/v1/responses"]["prompt_tokens"],
            by_endpoint["/v1/responses"]["completion_tokens"]) == (
        completed["input_tokens"], completed["output_tokens"])
    usage = whole.json()["usage"]
    assert (by_endpoint["whole"]["prompt_tokens"], by_endpoint["whole"]["completion_tokens"]
            ) == (usage["input_tokens"], usage["output_tokens"])
    assert (by_endpoint["stream"]["prompt_tokens"], by_endpoint["stream"]["completion_tokens"]
            ) == (stream_input, stream_output)
    assert by_endpoint["/v1/embeddings"]["prompt_tokens"] == (
        vectors.json()["usage"]["prompt_tokens"])
    assert by_endpoint["/v1/embeddings"]["completion_tokens"] is None


async def wait_for_records(app: AppHarness, count: int) -> dict[str, dict[str, Any]]:
    """The records by endpoint, /v1/messages' split into "whole" and "stream"."""
    for _ in range(100):
        items = (await app.client.get("/api/activity?limit=100")).json()["items"]
        if len(items) >= count:
            return {("stream" if r["stream"] else "whole") if r["endpoint"] == "/v1/messages"
                    else r["endpoint"]: r for r in items}
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} records never came")


def test_usage_is_read_where_each_api_puts_it() -> None:
    """Without llama.cpp's timings beside it (vLLM, MLX): Anthropic's message_start and
    message_delta, the Responses API's response.completed, embeddings' usage."""
    from llamactl.activity.meter import read_numbers
    from llamactl.activity.record import Usage

    anthropic_stream = Usage()
    read_numbers({"type": "message_start", "message": {"usage": {
        "input_tokens": 7, "output_tokens": 1}}}, anthropic_stream)
    read_numbers({"type": "message_delta", "usage": {"output_tokens": 5}}, anthropic_stream)
    assert (anthropic_stream.prompt_tokens, anthropic_stream.completion_tokens) == (7, 5)
    responses = Usage()
    read_numbers({"type": "response.completed", "response": {"usage": {
        "input_tokens": 9, "output_tokens": 4, "total_tokens": 13}}}, responses)
    assert (responses.prompt_tokens, responses.completion_tokens) == (9, 4)
    embeddings = Usage()
    read_numbers({"object": "list", "usage": {"prompt_tokens": 3, "total_tokens": 3}},
                 embeddings)
    assert (embeddings.prompt_tokens, embeddings.completion_tokens) == (3, None)
