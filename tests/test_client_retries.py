"""Retries, raw errors and the client's identity, against a real local HTTP server that
answers a scripted list of statuses (a real llamactl cannot be made to answer 503 on cue)."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import llamactl
from llamactl import AsyncClient, Client
from llamactl.client import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
)

EMPTY_LIST = {"instances": []}


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next (status, headers) of ``script``; 200 when done."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[tuple[int, dict[str, str]]] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        if status == 200:
            body = json.dumps(EMPTY_LIST).encode()
        else:
            body = json.dumps({"error": "no", "code": f"C{status}", "details": None}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", f"req-{len(self.server.seen)}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[Scripted]:
    httpd = Scripted()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_429_then_503_then_200_is_retried_for_a_get(server: Scripted) -> None:
    server.script = [(429, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
    with Client(server.url) as client:
        assert client.list_instances() == []
    assert len(server.seen) == 3


def test_post_is_retried_on_429_but_not_on_503(server: Scripted) -> None:
    server.script = [(429, {"Retry-After": "0"})]
    with Client(server.url) as client:
        # start_all is a POST; the scripted 200 is not a batch, hence the ProtocolError.
        with pytest.raises(ProtocolError):
            client.start_all()
        assert len(server.seen) == 2
        server.script = [(503, {"Retry-After": "0"})]
        with pytest.raises(ServerError):
            client.start_all()
        assert len(server.seen) == 3


def test_retries_give_up_after_max_retries_and_keep_the_response(server: Scripted) -> None:
    server.script = [(503, {"Retry-After": "0"})] * 5
    with Client(server.url, max_retries=1) as client, pytest.raises(ServerError) as failed:
        client.list_instances()
    assert len(server.seen) == 2
    assert failed.value.response is not None
    assert failed.value.response.headers["x-request-id"] == "req-2"
    assert failed.value.headers["X-REQUEST-ID"] == "req-2"  # case-insensitive
    assert failed.value.request_id == "req-2"


def test_with_options_overrides_retries_for_one_call(server: Scripted) -> None:
    server.script = [(429, {"Retry-After": "0"})]
    with Client(server.url) as client:
        with pytest.raises(RateLimitError):
            client.with_options(max_retries=0).list_instances()
        assert client.max_retries == 2
    assert len(server.seen) == 1


def test_retry_after_is_honoured(server: Scripted) -> None:
    # The wait is asserted through the seam we own (retry_delay), not by wall time.
    from llamactl.client._base import Call, retry_delay

    server.script = [(429, {"Retry-After": "7"})]
    with Client(server.url, max_retries=0) as client, pytest.raises(RateLimitError) as limited:
        client.list_instances()
    call: Call[None] = Call("POST", "/x", lambda _: None)
    assert retry_delay(call, 0, 2, limited.value.response) == 7.0
    assert retry_delay(call, 2, 2, limited.value.response) is None
    backoff = retry_delay(Call("GET", "/x", lambda _: None), 1, 2, None)
    assert backoff is not None
    assert 0.75 <= backoff <= 1.0
    assert retry_delay(call, 0, 2, None) is None  # a POST whose connection failed


async def test_async_client_retries_the_same_way(server: Scripted) -> None:
    server.script = [(503, {"Retry-After": "0"}), (429, {"Retry-After": "0"})]
    async with AsyncClient(server.url) as client:
        assert await client.list_instances() == []
    assert len(server.seen) == 3


def test_user_agent_is_versioned_and_env_vars_are_read(
        server: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMACTL_URL", server.url)
    monkeypatch.setenv("LLAMACTL_TOKEN", "not-a-jwt")
    with Client() as client:
        assert client.base_url == server.url
        client.list_instances()
    headers = server.seen[0][2]
    assert headers["User-Agent"] == f"llamactl-python/{llamactl.__version__}"
    assert headers["Authorization"] == "Bearer not-a-jwt"


def test_http_client_is_used(server: Scripted) -> None:
    import httpx

    with httpx.Client(headers={"X-Proxy-Auth": "p"}) as http, \
            Client(server.url, http_client=http) as client:
        client.list_instances()
    assert server.seen[0][2]["X-Proxy-Auth"] == "p"


def test_unreachable_is_an_api_connection_error() -> None:
    with Client("http://127.0.0.1:9", max_retries=0) as client, \
            pytest.raises(APIConnectionError) as failed:
        client.list_instances()
    assert isinstance(failed.value, ConnectionError)  # the builtin, still
    assert issubclass(APITimeoutError, TimeoutError)


def test_exceptions_pickle_and_old_names_are_aliases() -> None:
    error = NotFoundError("gone", status_code=404, code="INSTANCE_NOT_FOUND",
                          details="a", headers={"X-Request-ID": "r1"})
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NotFoundError
    assert (copy.message, copy.code, copy.details, copy.request_id) == ("gone",
                                                                        "INSTANCE_NOT_FOUND",
                                                                        "a", "r1")
    limited = pickle.loads(pickle.dumps(RateLimitError("slow", status_code=429, code="R",
                                                       retry_after=3.0)))
    assert limited.retry_after == 3.0
    assert llamactl.ValidationError is BadRequestError
    assert llamactl.ConnectionError is APIConnectionError
    assert "ValidationError" not in llamactl.__all__
    assert "ConnectionError" not in llamactl.__all__


def test_with_raw_response_gives_headers_on_success(server: Scripted) -> None:
    with Client(server.url) as client:
        raw = client.with_raw_response.list_instances()
        assert raw.parse() == []
        assert raw.status_code == 200
        assert raw.headers["X-REQUEST-ID"] == "req-1"
        assert raw.request_id == "req-1"
        assert client._responses is None  # the client itself records nothing


async def test_async_with_raw_response(server: Scripted) -> None:
    server.script = [(429, {"Retry-After": "0"})]
    async with AsyncClient(server.url) as client:
        raw = await client.with_raw_response.list_instances()
    assert raw.value == []
    assert raw.request_id == "req-2"  # the answer it was parsed from, after the retry
