"""Shutdown always ends, and ends every process: while a kill is under way, with a waiter on
an owner that closed while starting, and with an owner that never answers (the fake backend:
these are failure modes a real llama-server cannot be made to show on cue)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from llamactl.errors import StartFailed
from llamactl.supervisor import lifecycle_terms as t
from llamactl.supervisor import manager as manager_module
from llamactl.supervisor import messages as m
from tests.conftest import AppHarness
from tests.support.helpers import backends_under, wait_until

# Far longer than any of these shutdowns take once they work; the old code hung for ever.
HANG = 20.0


async def create(app: AppHarness, name: str, model: Path, **fields: Any) -> None:
    response = await app.client.post(
        "/api/instances", json={"name": name, "model_path": str(model), **fields})
    assert response.status_code == 201, response.text


async def test_shutdown_while_a_kill_is_pending_stops_and_restarts_nothing(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True, restart_delay=0.1))
    await create(app, "sick", fake_model, auto_restart=True, max_restarts=5)
    assert (await app.client.post("/api/instances/sick/start?wait=true")).status_code == 200
    owner = app.manager.owner("sick")
    # Failed health checks make the owner kill the process; shutdown is asked for before the
    # exit is seen (both messages wait in the owner's inbox, in that order).
    owner._post(m.Noticed(owner._effects.generation, t.Unhealthy("health check failed 3 times")))
    await asyncio.wait_for(owner.shutdown(stop=True), HANG)
    assert owner.closed
    assert owner.status == "stopped"
    await asyncio.sleep(0.5)  # five restart delays: no restart timer may fire
    assert backends_under(tmp_path) == []


async def test_wait_ready_on_an_owner_closed_while_starting_resolves(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True, load_timeout=60))
    await create(app, "slow", fake_model, extra_args=["--fake-never-ready"])
    assert (await app.client.post("/api/instances/slow/start")).status_code == 200
    owner = app.manager.owner("slow")
    pid = owner.pid
    try:
        await owner.shutdown(stop=False)  # left running, for adoption
        assert owner.closed
        assert owner.status == "starting"
        with pytest.raises(StartFailed):
            await asyncio.wait_for(owner.wait_ready(), HANG)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


async def test_manager_shutdown_is_bounded_and_kills_what_it_gave_up_on(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True, stop_timeout=0.5))
    await create(app, "stuck", fake_model)
    assert (await app.client.post("/api/instances/stuck/start?wait=true")).status_code == 200
    owner = app.manager.owner("stuck")
    pid = owner.pid

    async def never_ends(*, stop: bool) -> None:  # an owner that does not answer at all
        await asyncio.Event().wait()

    monkeypatch.setattr(owner, "shutdown", never_ends)
    monkeypatch.setattr(manager_module, "SHUTDOWN_GRACE_SECONDS", 0.5, raising=False)
    caplog.set_level(logging.ERROR)
    began = time.monotonic()
    await asyncio.wait_for(app.manager.shutdown(stop_instances=True), HANG)
    assert time.monotonic() - began < HANG
    assert "shutting down stuck took over 1 s: ending it" in caplog.text
    wait_until(lambda: pid not in [p.pid for p in backends_under(tmp_path)], 10,
               "the abandoned owner's process to be killed")
