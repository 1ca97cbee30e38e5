"""The client's own logic, through ``httpx.MockTransport``: error mapping, token refresh
timing, URLs, parsing. What it does against a real server is in test_client*.py."""

from __future__ import annotations

import base64
import builtins
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import llamactl
import llamactl.client
from llamactl import (
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    LlamactlError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StartFailedError,
    ValidationError,
)
from llamactl.client._base import TokenState, normalize_base_url, refresh_window
from llamactl.client._event_models import parse_event
from llamactl.client._events import Backoff
from llamactl.client._streaming import SSEDecoder
from tests.support.helpers import free_port

Handler = Callable[[httpx.Request], httpx.Response]
# An instance as the server answers it: every field it always sends.
INSTANCE = {"name": "a", "status": "stopped", "model_path": "/m.gguf", "port": 8081,
            "pid": None, "backend": "llama_cpp", "options": {},
            "stats": {"memory_usage": 0, "cpu_usage": 0.0, "uptime": 0},
            "auto_restart": True, "max_restarts": 3, "restart_delay": 5.0,
            "on_demand_start": True, "idle_timeout": 0.0, "group": None, "environment": {},
            "extra_args": [], "aliases": [], "resources": {}, "docker": None, "node": None,
            "pool": None, "sleep_after": None, "sleeping": False,
            "restart_count": 0, "last_error": None, "created_at": "2024-01-15T10:30:00Z",
            "updated_at": "2024-01-15T12:45:00Z", "memory_estimate": None,
            "context_length": 4096, "capabilities": ["completion", "chat"], "pull": None}


def jwt(lifetime: float, age: float = 0.0) -> str:
    """An unsigned JWT-shaped token: the client only reads its times."""
    now = time.time() - age

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return ".".join([part({"alg": "HS256"}),
                     part({"sub": "u", "iat": int(now), "exp": int(now + lifetime)}),
                     "signature"])


def token_answer(token: str) -> httpx.Response:
    return httpx.Response(200, json={"token": token, "expires_at": "2099-01-01T00:00:00Z"})


class Recorder:
    """A MockTransport handler: answers by path, and records the requests it saw."""

    def __init__(self, answers: dict[str, Callable[[httpx.Request], httpx.Response]]):
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[request.url.path](request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def client_with(handler: Handler, **kwargs: Any) -> Client:
    # No retries: these tests map one answer to one outcome (test_client_retries.py retries).
    kwargs.setdefault("max_retries", 0)
    return Client("http://llamactl.test", transport=httpx.MockTransport(handler), **kwargs)


# -- the public surface ----------------------------------------------------------------------


def test_all_is_complete_and_importable() -> None:
    assert llamactl.__all__ == sorted(llamactl.__all__)
    assert set(llamactl.__all__) == set(llamactl.client.__all__)
    for name in llamactl.__all__:
        assert getattr(llamactl, name) is getattr(llamactl.client, name)
    contract = ["login", "refresh_token", "list_instances", "get_instance", "create_instance",
                "update_instance", "delete_instance", "start_instance", "stop_instance",
                "restart_instance", "instance_health", "instance_logs", "follow_logs",
                "start_all", "stop_all", "system_status", "system_info", "get_config",
                "update_config", "events", "openai"]
    for cls in (Client, AsyncClient):
        assert [m for m in contract if not hasattr(cls, m)] == []


def test_importing_the_client_does_not_import_the_server() -> None:
    code = ("import sys, llamactl, llamactl.client\n"
            "from llamactl import Client, AsyncClient\n"
            "server = ('fastapi', 'uvicorn', 'starlette', 'llamactl.app', 'llamactl.config',\n"
            "          'llamactl.api', 'llamactl.supervisor', 'llamactl.errors',\n"
            "          'llamactl.store', 'llamactl.security')\n"
            "print([m for m in sys.modules if m.startswith(server)])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_exception_tree() -> None:
    for cls in (ValidationError, AuthenticationError, PermissionDeniedError, NotFoundError,
                ConflictError, RateLimitError, ServerError):
        assert issubclass(cls, APIError)
    assert issubclass(StartFailedError, ServerError)
    assert issubclass(APIError, LlamactlError)
    # Shadowing the builtins by `from llamactl import *` must not change what they catch.
    assert issubclass(llamactl.ConnectionError, builtins.ConnectionError)
    assert issubclass(llamactl.TimeoutError, builtins.TimeoutError)
    assert issubclass(llamactl.ConnectionError, LlamactlError)
    assert llamactl.client.__doc__ is not None
    assert "LlamactlError" in (sys.modules["llamactl.client._exceptions"].__doc__ or "")


@pytest.mark.parametrize(("url", "expected"), [
    ("http://localhost:8080", "http://localhost:8080"),
    ("http://localhost:8080/", "http://localhost:8080"),
    ("http://localhost:8080/api", "http://localhost:8080"),
    ("http://localhost:8080/api/", "http://localhost:8080"),
    ("localhost:8080", "http://localhost:8080"),
    ("https://llamactl.example/prefix", "https://llamactl.example/prefix"),
])
def test_base_url_forms(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


def test_base_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("ftp://host")


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "VALIDATION_ERROR", ValidationError),
    (400, "MODEL_NOT_FOUND", ValidationError),
    (401, "TOKEN_EXPIRED", AuthenticationError),
    (403, "FORBIDDEN", PermissionDeniedError),
    (404, "INSTANCE_NOT_FOUND", NotFoundError),
    (405, "METHOD_NOT_ALLOWED", APIError),
    (409, "INSTANCE_RUNNING", ConflictError),
    (500, "INTERNAL_ERROR", ServerError),
    (502, "START_FAILED", StartFailedError),
])
def test_error_answers_become_exceptions(status: int, code: str, cls: type[APIError]) -> None:
    body = {"error": "Something is wrong", "code": code, "details": "field: why"}
    client = client_with(lambda _: httpx.Response(status, json=body))
    with pytest.raises(cls) as caught:
        client.get_instance("a")
    assert type(caught.value) is cls
    assert (caught.value.status_code, caught.value.code) == (status, code)
    assert caught.value.message == "Something is wrong"
    assert caught.value.details == "field: why"
    assert code in str(caught.value)


def test_rate_limit_carries_retry_after() -> None:
    body = {"error": "Rate limit exceeded", "code": "RATE_LIMITED", "details": None}
    client = client_with(lambda _: httpx.Response(429, json=body, headers={"Retry-After": "17"}))
    with pytest.raises(RateLimitError) as caught:
        client.start_instance("a")
    assert caught.value.retry_after == 17


def test_an_error_that_is_not_the_contracts_shape() -> None:
    client = client_with(lambda _: httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(ServerError) as caught:
        client.list_instances()
    assert caught.value.code == "HTTP_502"
    assert "Bad Gateway" in str(caught.value.details)


def test_an_answer_of_the_wrong_shape_is_a_protocol_error() -> None:
    client = client_with(lambda _: httpx.Response(200, json={"items": []}))
    with pytest.raises(ProtocolError, match="unexpected answer"):
        client.list_instances()


def test_timeouts_are_ours() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(llamactl.TimeoutError):
        client_with(slow).list_instances()


def test_connection_refused_is_a_connection_error() -> None:
    with pytest.raises(llamactl.ConnectionError, match="cannot reach llamactl"):
        Client(f"http://127.0.0.1:{free_port()}", max_retries=0).list_instances()


# -- requests --------------------------------------------------------------------------------


def test_requests_follow_the_contract() -> None:
    recorder = Recorder({
        "/api/instances": lambda _: httpx.Response(201, json={"message": "ok",
                                                               "instance": INSTANCE}),
        "/api/instances/a": lambda _: httpx.Response(200, json={"message": "ok",
                                                                 "instance": INSTANCE}),
        "/api/instances/a/stop": lambda _: httpx.Response(200, json={"message": "ok",
                                                                      "status": "stopping"}),
    })
    client = client_with(recorder)
    created = client.create_instance("a", "/m.gguf", port=8081, options={"threads": 4})
    assert created.created_at.year == 2024
    client.update_instance("a", restart=True, options={"threads": None})
    client.stop_instance("a", force=True, grace=5)
    create, update, stop = recorder.requests
    assert json.loads(create.content) == {"name": "a", "model_path": "/m.gguf", "port": 8081,
                                          "options": {"threads": 4}}
    assert (update.method, update.url.params["restart"]) == ("PUT", "true")
    assert json.loads(update.content) == {"options": {"threads": None}}
    assert json.loads(stop.content) == {"force": True, "timeout": 5}


def test_a_relative_model_path_is_made_absolute_where_it_was_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder({
        "/api/instances": lambda _: httpx.Response(201, json={"instance": INSTANCE}),
        "/api/instances/a": lambda _: httpx.Response(200, json={"message": "ok",
                                                                 "instance": INSTANCE}),
    })
    client = client_with(recorder)
    monkeypatch.chdir(tmp_path)
    client.create_instance("a", "models/m.gguf")
    client.create_instance("a", Path("/abs/m.gguf"))
    client.update_instance("a", model_path="m.gguf")
    sent = [json.loads(request.content)["model_path"] for request in recorder.requests]
    assert sent == [str(tmp_path / "models" / "m.gguf"), "/abs/m.gguf", str(tmp_path / "m.gguf")]


def test_models_keep_fields_they_do_not_know() -> None:
    answer = {**INSTANCE, "aliases": ["x"], "stats": {"memory_usage": 1, "cpu_usage": 2.5,
                                                      "uptime": 3, "gpu": 9}}
    instance = client_with(lambda _: httpx.Response(200, json=answer)).get_instance("a")
    assert instance.model_dump(mode="json")["aliases"] == ["x"]
    assert instance.stats.cpu_usage == 2.5
    assert instance.model_dump(mode="json")["created_at"] == "2024-01-15T10:30:00Z"


def test_instance_names_cannot_escape_their_path() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(404, json={"error": "no", "code": "INSTANCE_NOT_FOUND",
                                         "details": None})

    with pytest.raises(NotFoundError):
        client_with(handler).get_instance("a/../keys")
    assert seen == [b"/api/instances/a%2F..%2Fkeys"]


def test_sse_decoder() -> None:
    decoder = SSEDecoder()
    fed = [decoder.feed(line) for line in ["data: {\"a\": 1}", "", ": keep-alive", "",
                                           "data: x", "data: y", ""]]
    assert [f for f in fed if f is not None] == ['{"a": 1}', "x\ny"]


def test_follow_logs_reads_the_event_stream() -> None:
    entries = [{"timestamp": f"2024-01-15T14:30:0{i}.5Z", "level": "info", "message": f"m{i}"}
               for i in range(3)]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in entries)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["follow"] == "true"
        assert request.url.params["level"] == "warn"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    with client_with(handler).follow_logs("a", lines=3, level="warn") as stream:
        assert [e.message for e in stream] == ["m0", "m1", "m2"]


def test_event_feed_control_messages_are_not_events() -> None:
    ping = '{"type": "ping", "timestamp": "2024-01-15T14:30:00.000001Z", "data": {}}'
    assert parse_event(ping) is None
    event = parse_event('{"type": "system_alert", "timestamp": "2024-01-15T14:30:00Z", '
                        '"data": {"level": "error", "message": "crashed"}}')
    assert isinstance(event, llamactl.SystemAlert)
    assert event.data.level == "error"
    assert event.data.instance is None
    changed = parse_event('{"type": "instance_status_changed", "timestamp": "2024-01-15T14:30:00Z",'
                          ' "data": {"name": "a", "status": "running", '
                          '"previous_status": "starting"}}')
    assert isinstance(changed, llamactl.InstanceStatusChanged)
    assert (changed.data.name, changed.data.previous_status) == ("a", "starting")
    stats = parse_event('{"type": "instance_stats_updated", "timestamp": "2024-01-15T14:30:00Z",'
                        ' "data": {"name": "a", "stats": {"memory_usage": 5, "cpu_usage": 1.5,'
                        ' "uptime": 3}}}')
    assert isinstance(stats, llamactl.InstanceStatsUpdated)
    assert stats.data.stats.uptime == 3
    # Read as the dicts the first client gave, too.
    assert changed.data["status"] == "running"
    assert stats.data["stats"]["memory_usage"] == 5
    assert event.data.get("instance") is None
    assert "instance" in event.data
    assert "nothing" not in event.data
    with pytest.raises(KeyError):
        event.data["nothing"]
    # A type this client does not know yet still arrives, as a plain Event.
    newer = parse_event('{"type": "instance_moved", "timestamp": "2024-01-15T14:30:00Z", '
                        '"data": {"name": "a"}}')
    assert type(newer) is llamactl.Event
    assert newer.data == {"name": "a"}
    with pytest.raises(ProtocolError):
        parse_event('{"no": "type"}')
    with pytest.raises(ProtocolError):  # a known type must have its fields
        parse_event('{"type": "system_alert", "timestamp": "2024-01-15T14:30:00Z", "data": {}}')


def test_backoff_doubles_up_to_its_maximum_with_jitter() -> None:
    backoff = Backoff(initial=1, maximum=4)
    delays = [backoff.delay() for _ in range(5)]
    for delay, nominal in zip(delays, [1, 2, 4, 4, 4], strict=True):
        assert nominal / 2 <= delay <= nominal
    backoff.reset()
    assert backoff.delay() <= 1


# -- tokens ----------------------------------------------------------------------------------


def test_refresh_window() -> None:
    assert refresh_window(86400) == 8640  # 10 % of a day
    assert refresh_window(1800) == 300  # 5 minutes
    assert refresh_window(4) == 2  # never in the first half of a short token's life


def test_login_keeps_the_token_and_sends_it() -> None:
    token = jwt(3600)
    recorder = Recorder({"/api/auth/login": lambda _: token_answer(token),
                         "/api/instances": lambda _: httpx.Response(200, json={"instances": []})})
    client = client_with(recorder)
    assert client.login("admin", "secret").token == token
    assert client.token == token
    client.list_instances()
    login, listing = recorder.requests
    assert "authorization" not in login.headers
    assert listing.headers["authorization"] == f"Bearer {token}"


def test_a_token_near_its_end_is_refreshed_before_the_request() -> None:
    old, new = jwt(3600, age=3500), jwt(3600)
    recorder = Recorder({"/api/auth/refresh": lambda _: token_answer(new),
                         "/api/instances": lambda _: httpx.Response(200, json={"instances": []})})
    client = client_with(recorder, token=old)
    client.list_instances()
    client.list_instances()
    assert recorder.paths() == ["/api/auth/refresh", "/api/instances", "/api/instances"]
    assert recorder.requests[0].headers["authorization"] == f"Bearer {old}"
    assert recorder.requests[2].headers["authorization"] == f"Bearer {new}"
    assert client.token == new


def test_a_fresh_token_is_not_refreshed() -> None:
    recorder = Recorder({"/api/instances": lambda _: httpx.Response(200, json={"instances": []})})
    client_with(recorder, token=jwt(3600, age=60)).list_instances()
    assert recorder.paths() == ["/api/instances"]


def test_a_refused_refresh_lets_the_request_go_on() -> None:
    refused = {"error": "Only a user's token can be refreshed", "code": "FORBIDDEN",
               "details": None}
    recorder = Recorder({"/api/auth/refresh": lambda _: httpx.Response(403, json=refused),
                         "/api/instances": lambda _: httpx.Response(200, json={"instances": []})})
    client = client_with(recorder, token=jwt(3600, age=3500))
    client.list_instances()
    client.list_instances()  # and it is not asked again
    assert recorder.paths() == ["/api/auth/refresh", "/api/instances", "/api/instances"]


def test_token_timing_uses_our_clock_for_fresh_tokens() -> None:
    state = TokenState()
    # The server's clock is an hour ahead: exp looks far away, but the lifetime is 4 s.
    skewed = jwt(4, age=-3600)
    state.set(skewed, fresh=True)
    assert state.refresh_due() is False
    time.sleep(1.2)  # 4 s lifetime, 1 s for the server's rounding, refreshed in the last 2 s
    assert state.refresh_due() is True


def test_tokens_that_are_not_jwts_are_never_refreshed() -> None:
    recorder = Recorder({"/api/instances": lambda _: httpx.Response(200, json={"instances": []})})
    client_with(recorder, token="llk_opaque").list_instances()
    assert recorder.paths() == ["/api/instances"]


async def test_async_client_refreshes_too() -> None:
    old, new = jwt(3600, age=3500), jwt(3600)
    recorder = Recorder({"/api/auth/refresh": lambda _: token_answer(new),
                         "/api/instances": lambda _: httpx.Response(200, json={"instances": []})})
    async with AsyncClient("http://llamactl.test", token=old,
                           transport=httpx.MockTransport(recorder)) as client:
        assert await client.list_instances() == []
        assert client.token == new
    assert recorder.paths() == ["/api/auth/refresh", "/api/instances"]


# -- openai ----------------------------------------------------------------------------------


def test_openai_client_points_at_the_gateway() -> None:
    pytest.importorskip("openai")
    client = Client("http://localhost:8080/api", api_key="llk_key", token=jwt(3600))
    openai_client = client.openai()
    assert str(openai_client.base_url).rstrip("/") == "http://localhost:8080/v1"
    assert openai_client.api_key == "llk_key"
    assert Client("http://h:1", token="tok").openai().api_key == "tok"


def test_openai_without_the_package_says_how_to_get_it() -> None:
    # A child process where `import openai` fails as it does when it is not installed.
    code = ("import sys; sys.modules['openai'] = None\n"
            "from llamactl import Client\n"
            "try:\n"
            "    Client('http://h:1').openai()\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert "pip install 'llamactl-client[openai]'" in result.stdout


def test_a_hub_id_for_vllm_is_sent_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder({
        "/api/instances": lambda _: httpx.Response(201, json={"instance": INSTANCE})})
    client = client_with(recorder)
    monkeypatch.chdir(tmp_path)
    client.create_instance("a", "Qwen/Qwen2.5-0.5B", backend="vllm")
    client.create_instance("a", "Qwen/Qwen2.5-0.5B")  # llama.cpp: a relative file path
    (tmp_path / "org" / "local").mkdir(parents=True)
    client.create_instance("a", "org/local", backend="mlx_lm")  # it names something here
    sent = [json.loads(request.content)["model_path"] for request in recorder.requests]
    assert sent == ["Qwen/Qwen2.5-0.5B", str(tmp_path / "Qwen" / "Qwen2.5-0.5B"),
                    str(tmp_path / "org" / "local")]
