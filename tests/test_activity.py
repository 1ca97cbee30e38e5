"""Every request on record (issue 30), against real llama-servers: the record of each /v1 and
proxy request with the tokens the backend answered, refusals, filters and paging, exports,
the live event, a viewer's own view, and records that outlive a restart."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from llamactl import AsyncClient, Client, RequestCompleted
from llamactl.activity.ledger import Ledger
from llamactl.activity.record import Record
from llamactl.cli import main as cli_main
from llamactl.client._event_models import parse_event
from llamactl.config import ActivityConfig
from llamactl.config.file import update_config_file
from llamactl.events import EventHub
from llamactl.security.passwords import hash_password
from llamactl.store.database import open_database
from llamactl.store.writer import StoreWriter
from tests.conftest import AppHarness

PROMPT = {"prompt": "hello", "max_tokens": 5, "ignore_eos": True}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


async def create(app: AppHarness, name: str, model: Path, **headers: str) -> None:
    response = await app.client.post("/api/instances", headers=headers,
                                     json={"name": name, "model_path": str(model)})
    assert response.status_code == 201, response.text


async def records(app: AppHarness, count: int, query: str = "",
                  **headers: str) -> list[dict[str, Any]]:
    """The newest ``count`` records, once that many are written."""
    for _ in range(100):
        answer = await app.client.get(f"/api/activity?limit=1000{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["items"]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} records never came: {found}")


def last_data(stream_text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in stream_text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


async def test_each_request_on_record_with_the_backends_tokens(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "a", model)
    whole = await app.client.post("/v1/completions", json={"model": "a", **PROMPT},
                                  headers={"User-Agent": "ledger-test/1"})
    assert whole.status_code == 200, whole.text
    usage = whole.json()["usage"]
    with_usage = await app.client.post("/v1/chat/completions", json={
        "model": "a", **CHAT, "stream": True, "stream_options": {"include_usage": True}})
    streamed_usage = [c["usage"] for c in last_data(with_usage.text) if c.get("usage")][-1]
    plain = await app.client.post("/v1/completions", json={"model": "a", **PROMPT,
                                                           "stream": True})
    timings = [c["timings"] for c in last_data(plain.text) if c.get("timings")][-1]
    proxied = await app.client.post("/api/instances/a/proxy/completion",
                                    json={"prompt": "hi", "n_predict": 2})
    assert proxied.status_code == 200, proxied.text
    unknown = await app.client.post("/v1/completions", json={"model": "nope", **PROMPT})
    assert unknown.status_code == 404

    newest_first = await records(app, 5)
    refused, proxy, streamed, chat, first = newest_first[:5]
    assert first["id"] == whole.headers["x-request-id"]
    assert first["kind"] == "v1"
    assert first["endpoint"] == "/v1/completions"
    assert (first["model"], first["instance"], first["status"]) == ("a", "a", 200)
    assert first["principal"] == {"kind": "anonymous", "name": None}
    assert (first["prompt_tokens"], first["completion_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])
    assert first["stream"] is False
    assert first["cancelled"] is False
    assert first["user_agent"] == "ledger-test/1"
    assert first["client"] == "127.0.0.1"
    assert first["duration_ms"] >= first["ttft_ms"] > 0
    assert first["generation_tps"] > 0
    assert chat["stream"] is True
    assert chat["endpoint"] == "/v1/chat/completions"
    assert (chat["prompt_tokens"], chat["completion_tokens"]) == (
        streamed_usage["prompt_tokens"], streamed_usage["completion_tokens"])
    assert streamed["stream"] is True
    assert streamed["completion_tokens"] == timings["predicted_n"] == 5
    assert streamed["prompt_tokens"] == timings["prompt_n"] + timings.get("cache_n", 0)
    assert proxy["kind"] == "proxy"
    assert proxy["instance"] == "a"
    assert proxy["endpoint"] == "/api/instances/a/proxy/completion"
    assert proxy["completion_tokens"] == proxied.json()["timings"]["predicted_n"] == 2
    assert (refused["status"], refused["error_code"], refused["instance"]) == (
        404, "model_not_found", None)
    assert refused["model"] == "nope"
    assert refused["prompt_tokens"] is None

    # filters, classes, paging
    errors = (await app.client.get("/api/activity?status=4xx")).json()["items"]
    assert [r["id"] for r in errors] == [refused["id"]]
    assert (await app.client.get("/api/activity?status=404")).json()["items"] == errors
    only_proxy = (await app.client.get("/api/activity?instance=a&model=a")).json()["items"]
    assert len(only_proxy) == 3  # the proxy names no model
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "?limit=2" + (f"&before={cursor}" if cursor else "")
        page = (await app.client.get(f"/api/activity{query}")).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in newest_first]
    for bad in ("limit=0", "limit=1001", "status=abc", "since=yesterday", "before=zzz",
                "since=2026-01-01T00:00:00"):
        answer = await app.client.get(f"/api/activity?{bad}")
        assert answer.status_code == 400, bad
        body = answer.json()
        assert body["code"] == "VALIDATION_ERROR"
        assert bad.split("=")[0] in body["error"]
    future = (await app.client.get("/api/activity?since=2999-01-01T00:00:00Z")).json()
    assert future == {"items": [], "next": None}

    # summary and export
    by_instance = (await app.client.get("/api/activity/summary?by=instance")).json()["groups"]
    assert {g["group"]: g["requests"] for g in by_instance} == {"a": 4, None: 1}
    group_a = next(g for g in by_instance if g["group"] == "a")
    assert group_a["completion_tokens"] == sum(r["completion_tokens"] for r in newest_first[1:])
    assert group_a["duration_ms_p95"] >= group_a["duration_ms_p50"] > 0
    jsonl = await app.client.get("/api/activity/export?format=jsonl")
    assert [json.loads(line) for line in jsonl.text.splitlines()] == newest_first
    exported = list(csv.DictReader(io.StringIO(
        (await app.client.get("/api/activity/export?format=csv")).text)))
    assert [row["id"] for row in exported] == [r["id"] for r in newest_first]
    assert exported[0]["principal"] == "anonymous:"
    assert exported[-1]["status"] == "200"

    # /metrics: tokens by instance and principal, first-token and duration histograms
    metrics = (await app.client.get("/metrics")).text
    completion = sum(r["completion_tokens"] for r in newest_first[1:])
    assert (f'llamactl_tokens_total{{instance="a",principal="anonymous:",type="completion"}} '
            f"{float(completion)}") in metrics
    assert 'llamactl_request_ttft_seconds_count{instance="a"} 4.0' in metrics
    assert 'llamactl_request_duration_seconds_count{instance=""} 1.0' in metrics
    assert "llamactl_activity_dropped_total 0.0" in metrics

    # records outlive a restart
    await app.restart()
    assert [r["id"] for r in await records(app, 5)] == [r["id"] for r in newest_first]
    status = (await app.client.get("/api/system/status")).json()["activity"]
    assert status["dropped"] == 0
    assert status["enabled"] is True


async def test_the_event_arrives_live_and_types_filter(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "a", model)
    async with app.client.stream("GET", "/api/events?types=request_completed") as feed:
        lines = feed.aiter_lines()
        answer = await app.client.post("/v1/completions", json={"model": "a", **PROMPT})

        async def next_event() -> dict[str, Any]:
            async for line in lines:
                if line.startswith("data:"):
                    event: dict[str, Any] = json.loads(line[5:])
                    return event
            raise AssertionError("the feed ended")

        event = await asyncio.wait_for(next_event(), 10)
    # instance_status_changed of the on-demand start were filtered out by types
    assert event["type"] == "request_completed"
    assert event["data"]["id"] == answer.headers["x-request-id"]
    assert event["data"]["completion_tokens"] == 5


async def test_keys_users_and_viewers_own_records(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    secret = "ledger-secret-" + "z" * 40

    def users(doc: dict[str, Any]) -> None:
        doc["auth"] = {"enabled": True, "secret": secret, "users": [
            {"username": "root", "password_hash": hash_password("root-pass"), "role": "admin"},
            {"username": "v", "password_hash": hash_password("viewer-pass"),
             "role": "viewer"}]}

    update_config_file(config, users)
    app: AppHarness = await make_app(
        make_settings(sections={"auth": {"enabled": True, "secret": secret}}), config)

    async def login(user: str, password: str) -> dict[str, str]:
        answer = await app.client.post("/api/auth/login",
                                       json={"username": user, "password": password})
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    admin, viewer = await login("root", "root-pass"), await login("v", "viewer-pass")
    await create(app, "a", model, **admin)
    created = await app.client.post("/api/keys", json={"name": "app1"}, headers=admin)
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    for headers in (key, viewer, admin):
        answer = await app.client.post("/v1/completions", json={"model": "a", **PROMPT},
                                       headers=headers)
        assert answer.status_code == 200, answer.text
    anonymous = await app.client.post("/v1/completions", json={"model": "a", **PROMPT})
    assert anonymous.status_code == 401
    everything = await records(app, 4, **admin)
    assert [(r["principal"]["kind"], r["principal"]["name"], r["status"])
            for r in everything] == [("anonymous", None, 401), ("user", "root", 200),
                                     ("user", "v", 200), ("key", "app1", 200)]
    assert everything[0]["error_code"] == "invalid_api_key"
    own = (await app.client.get("/api/activity", headers=viewer)).json()["items"]
    assert [r["principal"] for r in own] == [{"kind": "user", "name": "v"}]
    for sneaky in ("?user=root", "?key=app1"):
        answer = await app.client.get(f"/api/activity{sneaky}", headers=viewer)
        assert answer.json()["items"] == []
    by_key = (await app.client.get("/api/activity/summary?by=key", headers=admin)).json()
    assert [(g["group"], g["requests"]) for g in by_key["groups"]] == [("app1", 1)]
    assert (await app.client.get("/api/activity?key=app1", headers=admin)).json()[
        "items"] == [everything[3]]
    viewer_export = await app.client.get("/api/activity/export", headers=viewer)
    assert [json.loads(line)["principal"]["name"]
            for line in viewer_export.text.splitlines()] == ["v"]
    assert (await app.client.get("/api/activity", headers=key)).status_code == 401


async def test_a_metered_stream_keeps_its_pace_and_a_client_leaving_is_cancelled(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    """The ledger reads a stream as it passes: each chunk still reaches the client when the
    backend writes it (one every 0.2 s here), never gathered; a client that leaves is on
    record as cancelled."""
    app: AppHarness = await make_app(make_settings(fake=True))
    response = await app.client.post("/api/instances", json={
        "name": "s", "model_path": str(fake_model),
        "extra_args": ["--fake-stream-chunks", "5", "--fake-chunk-interval", "0.2"]})
    assert response.status_code == 201, response.text
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    async with app.client.stream("POST", "/v1/completions",
                                 json={"model": "s", "prompt": "hi", "stream": True}) as answer:
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                arrivals.append(loop.time())
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) == 6
    assert all(gap > 0.1 for gap in gaps), gaps
    async with app.client.stream("POST", "/v1/completions",
                                 json={"model": "s", "prompt": "hi", "stream": True}) as left:
        async for line in left.aiter_lines():
            if line.startswith("data: "):
                break  # and leave
    cancelled, whole = (await records(app, 2))[:2]
    assert whole["stream"] is True
    assert whole["cancelled"] is False
    assert whole["ttft_ms"] < whole["duration_ms"] - 700
    assert cancelled["cancelled"] is True
    assert cancelled["status"] == 200
    assert cancelled["completion_tokens"] is None


async def test_retention_prunes_by_age_then_by_count(tmp_path: Path) -> None:
    database = open_database(tmp_path / "llamactl.db")
    writer = StoreWriter(database)
    writer.start()
    ledger = Ledger(ActivityConfig(retention_days=1, max_records=3), writer, EventHub(),
                    flush_seconds=0.01)
    ledger.start()
    try:
        now = time.time()
        for index, age_days in enumerate((3, 2, 0.5, 0.4, 0.3, 0.2)):
            ledger.add(Record(id=f"r{index}", started=now - age_days * 86400, kind="v1",
                              method="POST", endpoint="/v1/completions",
                              principal_kind="anonymous", principal_name=None, status=200))
        for _ in range(100):
            if ledger.written == 6:
                break
            await asyncio.sleep(0.02)
        # The ledger's task prunes as it starts and every PRUNE_SECONDS; once more here:
        await ledger.prune()  # two too old, then one beyond the three kept
        left = await writer.read(lambda db: db.execute(
            "SELECT id FROM activity ORDER BY seq").fetchall())
        assert [row[0] for row in left] == ["r3", "r4", "r5"]
    finally:
        await ledger.stop()
        await writer.close(5)
        database.close()


async def test_the_python_client_lists_summarises_and_exports(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "a", model)
    for _ in range(3):
        answer = await app.client.post("/v1/completions", json={"model": "a", **PROMPT})
        assert answer.status_code == 200
    expected = await records(app, 3)

    def use_the_client() -> tuple[Any, Any, Any, bytes]:
        with Client(str(app.client.base_url)) as client:
            first = client.list_activity(limit=2, instance="a")
            second = client.list_activity(limit=2, before=first.next)
            groups = client.activity_summary("instance")
            out = io.BytesIO()
            client.export_activity(out, format="jsonl", instance="a")
            return first, second, groups, out.getvalue()

    first, second, groups, exported = await asyncio.to_thread(use_the_client)
    assert [r.id for r in first.items + second.items] == [r["id"] for r in expected]
    assert second.next is None
    assert first.items[0].completion_tokens == 5
    assert [(g.group, g.requests) for g in groups] == [("a", 3)]
    assert [json.loads(line) for line in exported.splitlines()] == expected
    event = parse_event(json.dumps({"type": "request_completed", "timestamp":
                                    "2026-01-01T00:00:00Z", "data": expected[0]}))
    assert isinstance(event, RequestCompleted)
    assert event.data["status"] == 200
    async with AsyncClient(str(app.client.base_url)) as async_client:
        page = await async_client.list_activity(limit=2, instance="a")
        assert [r.id for r in page.items] == [r.id for r in first.items]
        assert [(g.group, g.requests) for g in await async_client.activity_summary(
            "instance")] == [("a", 3)]
        out = io.BytesIO()
        await async_client.export_activity(out, format="csv", instance="a")
    assert out.getvalue().splitlines()[0].startswith(b"id,time,kind,")
    assert len(out.getvalue().splitlines()) == 4


async def test_the_command_line_shows_activity_and_usage(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cli-config"))  # no saved token
    app: AppHarness = await make_app(make_settings())
    await create(app, "a", model)
    answer = await app.client.post("/v1/completions", json={"model": "a", **PROMPT})
    refused = await app.client.post("/v1/completions", json={"model": "nope", **PROMPT})
    expected = await records(app, 2)
    url = str(app.client.base_url)

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli_main, [*args, "--url", url])
        assert result.exit_code == 0, result.output
        return result.output

    table = await asyncio.to_thread(run, "activity", "--since", "1h")
    lines = table.splitlines()
    assert lines[0].startswith("TIME")
    assert "200" in lines[1]
    assert "+5" in lines[1]
    assert "404 model_not_found" in lines[2]
    as_json = json.loads(await asyncio.to_thread(run, "activity", "--instance", "a",
                                                 "-o", "json"))
    assert [r["id"] for r in as_json] == [answer.headers["x-request-id"]]
    by_model = await asyncio.to_thread(run, "usage", "--by", "model")
    assert by_model.splitlines()[0].startswith("MODEL")
    assert {line.split()[0] for line in by_model.splitlines()[1:]} == {"a", "nope"}
    assert refused.headers["x-request-id"] == expected[0]["id"]


async def test_a_burst_beyond_the_bound_is_counted_and_alerted_once(tmp_path: Path) -> None:
    database = open_database(tmp_path / "llamactl.db")
    hub = EventHub()
    feed = hub.subscribe()
    ledger = Ledger(ActivityConfig(), StoreWriter(database), hub, max_pending=2)
    try:
        for index in range(5):  # the ledger's task is not running: nothing is written
            ledger.add(Record(id=f"r{index}", started=time.time(), kind="v1", method="POST",
                              endpoint="/v1/completions", principal_kind="anonymous",
                              principal_name=None, status=200))
        assert ledger.status() == {"enabled": True, "pending": 2, "dropped": 3, "written": 0,
                                   "error": None}
        events = [feed.queue.get_nowait() for _ in range(feed.queue.qsize())]
        alerts = [e for e in events if e.type == "system_alert"]
        assert len(alerts) == 1
        assert "dropped" in alerts[0].data["message"]
        assert [e.data["id"] for e in events if e.type == "request_completed"] == [
            f"r{index}" for index in range(5)]  # every request is still published live
    finally:
        database.close()
