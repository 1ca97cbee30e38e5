"""Every answer of the API carries an ``X-Request-ID``, and the log line says it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import AppHarness


async def test_every_answer_has_a_request_id_and_it_is_logged(
        make_settings: Any, make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    harness: AppHarness = await make_app(make_settings(fake=True))
    ok = await harness.client.get("/api/instances")
    with caplog.at_level(logging.INFO, logger="llamactl.requests"):
        missing = await harness.client.get("/api/instances/nope")
    assert len(ok.headers["x-request-id"]) >= 16
    assert missing.status_code == 404
    request_id = missing.headers["x-request-id"]
    assert request_id != ok.headers["x-request-id"]
    assert any(request_id in record.getMessage() for record in caplog.records)


async def test_a_plain_caller_id_is_kept_and_a_strange_one_replaced(
        make_settings: Any, make_app: Any) -> None:
    harness: AppHarness = await make_app(make_settings(fake=True))
    kept = await harness.client.get("/api/instances", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    odd = await harness.client.get("/api/instances", headers={"X-Request-ID": "a b\tc"})
    assert odd.headers["x-request-id"] != "a b\tc"
    assert odd.headers.get_list("x-request-id") == [odd.headers["x-request-id"]]


def test_the_client_version_is_the_installed_distributions() -> None:
    import llamactl
    from llamactl.version import package_version

    assert llamactl.__version__ == package_version()
