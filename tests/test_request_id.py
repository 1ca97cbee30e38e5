"""Every answer of the API, and of the /v1 gateway, carries an ``X-Request-ID``, and the log
line says it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AppHarness
from tests.test_gateway import COMPLETION, create


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


@pytest.mark.llama
async def test_every_v1_answer_has_a_request_id_and_it_is_logged(
        make_settings: Any, make_app: Any, model: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """/v1 is answered in uvicorn's HTTP layer, beside the app's middleware: its local
    answers, its errors and the backend's answers each carry one id, logged with the answer."""
    harness: AppHarness = await make_app(make_settings())
    await create(harness, "a", model)
    listed = await harness.client.get("/v1/models")
    kept = await harness.client.get("/v1/models", headers={"X-Request-ID": "trace-1.2:3"})
    assert len(listed.headers["x-request-id"]) >= 16
    assert kept.headers.get_list("x-request-id") == ["trace-1.2:3"]
    with caplog.at_level(logging.INFO, logger="llamactl.requests"):
        missing = await harness.client.post("/v1/completions", json={"model": "nope"},
                                            headers={"X-Request-ID": "a b"})
    assert missing.status_code == 404
    request_id = missing.headers["x-request-id"]
    assert request_id not in ("a b", listed.headers["x-request-id"])
    assert any(f"/v1/completions -> 404 request_id={request_id}" in record.getMessage()
               for record in caplog.records)
    with caplog.at_level(logging.DEBUG, logger="llamactl.requests"):
        served = await harness.client.post("/v1/completions", json={"model": "a", **COMPLETION},
                                           headers={"X-Request-ID": "from-the-caller"})
    assert served.status_code == 200, served.text
    assert served.headers.get_list("x-request-id") == ["from-the-caller"]
    assert any("-> 200 request_id=from-the-caller" in record.getMessage()
               for record in caplog.records)
    streamed = await harness.client.post(
        "/v1/completions", json={"model": "a", **COMPLETION, "stream": True})
    assert streamed.status_code == 200
    assert len(streamed.headers.get_list("x-request-id")) == 1


def test_the_client_version_is_the_installed_distributions() -> None:
    import llamactl
    from llamactl.version import package_version

    assert llamactl.__version__ == package_version()
