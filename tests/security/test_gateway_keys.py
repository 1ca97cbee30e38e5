"""``/v1`` decides on a request's head who may send it, and inference keys expire."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.security.conftest import Server
from tests.security.raw import send_head
from tests.support.helpers import wait_until

# Far below the time a 64 MiB body would take to arrive, had the server waited for it; the
# body here never arrives at all, so only an answer on the head can come within it.
PROMPT_ANSWER_SECONDS = 20.0


def head(port: int, authorization: str | None, extra: str = "") -> str:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 60000000\r\n{auth}{extra}\r\n")


@pytest.mark.parametrize("authorization", [
    None, "Bearer llk_not-a-key", "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=",
])
def test_v1_refuses_on_the_head_without_reading_the_body(
    secured_server: Server, authorization: str | None,
) -> None:
    started = time.monotonic()
    answer = send_head(secured_server.port, head(secured_server.port, authorization),
                       read_timeout=PROMPT_ANSWER_SECONDS)
    assert time.monotonic() - started < PROMPT_ANSWER_SECONDS
    assert answer.status == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_v1_refuses_expect_continue_without_asking_for_the_body(
    secured_server: Server,
) -> None:
    answer = send_head(secured_server.port, head(secured_server.port, None,
                                                 "Expect: 100-continue\r\n"),
                       read_timeout=PROMPT_ANSWER_SECONDS)
    assert answer.status == 401  # not "100 Continue": the body is not wanted


def test_key_expiry(secured_server: Server) -> None:
    with secured_server.client("admin") as admin:
        later = admin.post("/api/keys", json={"name": "until-2030",
                                              "expires_at": "2030-01-01T00:00:00Z"})
        assert later.status_code == 201, later.text
        assert later.json()["info"]["expires_at"] == "2030-01-01T00:00:00Z"
        zoned = admin.post("/api/keys", json={"name": "zoned",
                                              "expires_at": "2030-01-01T02:00:00+02:00"})
        assert zoned.json()["info"]["expires_at"] == "2030-01-01T00:00:00Z"
        past = admin.post("/api/keys", json={"name": "past",
                                             "expires_at": "2020-01-01T00:00:00Z"})
        assert (past.status_code, past.json()["code"]) == (400, "VALIDATION_ERROR")
        naive = admin.post("/api/keys", json={"name": "naive",
                                              "expires_at": "2030-01-01T00:00:00"})
        assert naive.status_code == 400
        soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        short = admin.post("/api/keys", json={"name": "short-lived", "expires_at": soon})
        assert short.status_code == 201, short.text
    key = short.json()["key"]
    with secured_server.client() as client:
        bearer = {"Authorization": f"Bearer {key}"}
        if datetime.now(UTC) < datetime.fromisoformat(soon):  # a slow machine may be past it
            assert client.get("/v1/models", headers=bearer).status_code == 200
        refused = wait_until(
            lambda: (r := client.get("/v1/models", headers=bearer)).status_code == 401 and r,
            timeout=30, what="the key to expire")
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert client.get("/v1/models", headers={
            "Authorization": f"Bearer {later.json()['key']}"}).status_code == 200
    listed = subprocess.run(
        [sys.executable, "-m", "llamactl", "keys", "list", "--config",
         str(secured_server.process.config), "--data-dir", str(secured_server.process.data_dir)],
        capture_output=True, text=True, timeout=60, check=True)
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert "(expired)" in lines["short-lived"]
    assert "2030-01-01 00:00 UTC" in lines["until-2030"]
    assert "(expired)" not in lines["until-2030"]
