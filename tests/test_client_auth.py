"""The clients with authentication and rate limits on, against a real ``llamactl serve``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamactl import (
    AsyncClient,
    AuthenticationError,
    Client,
    InstanceStatusChanged,
    PermissionDeniedError,
    RateLimitError,
)
from tests.support.clients import PASSWORDS, auth_section, running_server
from tests.support.helpers import STATUS_TIMEOUT, LlamactlProcess

pytestmark = [pytest.mark.llama,
              pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]
TOKEN_TTL = 4  # seconds: short enough to outlive a few times in a test
CALL_SPACING = 1.5  # seconds between calls in the refresh tests


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    # A ping each second on a quiet event stream: what keeps its token fresh, at this TTL.
    with running_server(tmp_path, llama_server_bin, auth=auth_section(TOKEN_TTL),
                        events={"ping_interval": 1}) as process:
        yield process


def logged_in(server: LlamactlProcess, user: str) -> Client:
    client = Client(server.url)
    client.login(user, PASSWORDS[user])
    return client


def test_tokens_and_roles(server: LlamactlProcess, model: Path) -> None:
    with Client(server.url) as anonymous, pytest.raises(AuthenticationError) as no_token:
        anonymous.list_instances()
    assert no_token.value.code == "UNAUTHORIZED"
    with Client(server.url) as client, pytest.raises(AuthenticationError) as wrong:
        client.login("admin", "not-the-password")
    assert wrong.value.code == "INVALID_CREDENTIALS"

    with logged_in(server, "view") as viewer:
        assert viewer.list_instances() == []
        with pytest.raises(PermissionDeniedError) as forbidden:
            viewer.create_instance("a", str(model))
        assert forbidden.value.code == "FORBIDDEN"
    with logged_in(server, "op") as operator:
        operator.create_instance("a", str(model))
        with pytest.raises(PermissionDeniedError):
            operator.update_config({"instances": {"max_restarts": 1}})
    with logged_in(server, "admin") as admin:
        before = admin.token
        refreshed = admin.refresh_token()
        assert refreshed.token == admin.token != before
        assert admin.update_config({"instances": {"max_restarts": 1}}).restart_required


def test_the_token_is_refreshed_without_the_caller_noticing(server: LlamactlProcess) -> None:
    with logged_in(server, "view") as client:
        original = client.token
        started = time.monotonic()
        while time.monotonic() - started < TOKEN_TTL + 2:
            time.sleep(CALL_SPACING)
            assert client.list_instances() == []  # never an expired token
        assert client.token != original
    # The login's own token has expired by now: only refreshing kept the client going.
    with Client(server.url, token=original) as stale, pytest.raises(AuthenticationError) as old:
        stale.list_instances()
    assert old.value.code == "TOKEN_EXPIRED"


async def test_the_async_client_refreshes_too(server: LlamactlProcess) -> None:
    async with AsyncClient(server.url) as client:
        await client.login("view", PASSWORDS["view"])
        original = client.token
        for _ in range(4):  # 6 s: past the original token's 4
            await asyncio.sleep(CALL_SPACING)
            assert await client.list_instances() == []
        assert client.token != original


def test_events_need_a_token_and_keep_it_fresh(server: LlamactlProcess, model: Path) -> None:
    with Client(server.url) as anonymous, pytest.raises(AuthenticationError):
        anonymous.events().__enter__()
    received: list[InstanceStatusChanged] = []
    with logged_in(server, "view") as viewer, viewer.events() as events:

        def listen() -> None:
            for event in events:
                if isinstance(event, InstanceStatusChanged):
                    received.append(event)
                    if event.data.status == "running":
                        return

        listener = threading.Thread(target=listen)
        listener.start()
        time.sleep(TOKEN_TTL + 1)  # a stream waiting for events refreshes the token meanwhile
        with logged_in(server, "admin") as admin:
            admin.create_instance("ev", str(model))
            admin.start_instance("ev")
            listener.join(STATUS_TIMEOUT)
            assert viewer.list_instances()[0].status == "running"
            admin.stop_instance("ev", wait=True)
    assert [e.data.status for e in received] == ["starting", "running"]


def test_rate_limits_raise_rate_limit_error(
    tmp_path: Path, llama_server_bin: str, model: Path
) -> None:
    limits = {"enabled": True, "regular_per_minute": 100, "intensive_per_minute": 2}
    # max_retries=0: a retried 429 would wait out the server's Retry-After (up to 60 s).
    with running_server(tmp_path, llama_server_bin, rate_limit=limits) as limited, \
            Client(limited.url, max_retries=0) as client:
        client.create_instance("a", str(model))
        client.create_instance("b", str(model))
        with pytest.raises(RateLimitError) as refused:
            client.create_instance("c", str(model))
    assert refused.value.code == "RATE_LIMITED"
    assert refused.value.retry_after is not None
    assert 0 < refused.value.retry_after <= 60
