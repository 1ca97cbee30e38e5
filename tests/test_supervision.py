"""Supervision against a real llama-server with the tiny model (and the fake backend only for
failure modes the real one cannot show)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import AppHarness
from tests.support.helpers import (
    backends_under,
    wait_instance,
    wait_status,
    write_unloadable_model,
)

FAST_RESTARTS = {"restart_delay": 0.2, "health_interval": 0.5}


async def create(app: AppHarness, name: str, model: Path, **fields: Any) -> dict[str, Any]:
    response = await app.client.post(
        "/api/instances", json={"name": name, "model_path": str(model), **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()["instance"]  # type: ignore[no-any-return]


async def test_seed_walkthrough_with_a_real_llama_server(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "example", model, options={"threads": 1, "context_size": 512})

    started = await app.client.post("/api/instances/example/start")
    assert started.status_code == 200
    assert started.json() == {"message": "Instance start initiated", "status": "starting"}
    instance = await wait_status(app.client, "example", "running")
    pid = instance["pid"]
    assert isinstance(pid, int)
    assert psutil.pid_exists(pid)
    assert instance["stats"]["memory_usage"] > 0

    health = (await app.client.get("/api/instances/example/health")).json()
    assert health["status"] == "healthy"
    assert health["checks"] == {"process": "running", "port": "open", "response": "ok"}

    # The backend listens on loopback and wants the per-instance key it got from llamactl,
    # which is not on its command line.
    port = instance["port"]
    async with httpx.AsyncClient() as direct:
        refused = await direct.post(f"http://127.0.0.1:{port}/completion",
                                    json={"prompt": "hi", "n_predict": 2})
    assert refused.status_code == 401
    cmdline = psutil.Process(pid).cmdline()
    record = app.manager.owner("example").record
    assert record.api_key not in " ".join(cmdline)
    assert {"--metrics", "--slots", "--host", "127.0.0.1", "--threads", "1"} <= set(cmdline)
    async with httpx.AsyncClient() as direct:
        allowed = await direct.post(
            f"http://127.0.0.1:{port}/completion", json={"prompt": "hi", "n_predict": 2},
            headers={"Authorization": f"Bearer {record.api_key}"},
        )
    assert allowed.status_code == 200

    entries = (await app.client.get("/api/instances/example/logs?lines=500")).json()["logs"]
    messages = [e["message"] for e in entries]
    assert any(m.startswith("started pid") for m in messages)
    assert any("model loaded" in m for m in messages)
    assert {e["level"] for e in entries} >= {"info", "warn"}  # the unauthorised call warned
    warn = (await app.client.get("/api/instances/example/logs?level=warn")).json()["logs"]
    assert warn
    assert all(e["level"] in ("warn", "error") for e in warn)
    assert any("Invalid API Key" in e["message"] for e in warn)
    assert len((await app.client.get("/api/instances/example/logs?lines=3")).json()["logs"]) == 3

    stopped = await app.client.post("/api/instances/example/stop")
    assert stopped.json() == {"message": "Instance stop initiated", "status": "stopping"}
    instance = await wait_status(app.client, "example", "stopped")
    assert instance["pid"] is None
    assert instance["stats"]["memory_usage"] == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    health = (await app.client.get("/api/instances/example/health")).json()
    assert health["status"] == "stopped"
    assert (await app.client.delete("/api/instances/example")).status_code == 200
    assert backends_under(tmp_path) == []


async def test_start_wait_answers_when_running(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "w", model)
    response = await app.client.post("/api/instances/w/start?wait=true")
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    again = await app.client.post("/api/instances/w/start")
    assert again.status_code == 409
    assert again.json()["code"] == "INSTANCE_ALREADY_RUNNING"


async def test_ten_concurrent_starts_give_one_process(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "c", model)
    answers = await asyncio.gather(
        *(app.client.post("/api/instances/c/start") for _ in range(10))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 9
    await wait_status(app.client, "c", "running")
    assert len(backends_under(tmp_path)) == 1


async def test_stop_during_start_ends_stopped(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "s", fake_model, extra_args=["--fake-load-seconds", "5"])
    waiter = asyncio.create_task(app.client.post("/api/instances/s/start?wait=true"))
    await wait_status(app.client, "s", "starting")
    stop = await app.client.post("/api/instances/s/stop")
    assert stop.status_code == 200
    failed_wait = await waiter
    assert failed_wait.status_code == 502
    assert failed_wait.json()["code"] == "START_FAILED"
    await wait_status(app.client, "s", "stopped")
    assert backends_under(tmp_path) == []


async def test_delete_during_stop_is_refused_then_allowed(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "d", fake_model, extra_args=["--fake-ignore-sigterm"])
    await app.client.post("/api/instances/d/start?wait=true")
    await app.client.post("/api/instances/d/stop", json={"timeout": 2})
    refused = await app.client.delete("/api/instances/d")
    assert refused.status_code == 409
    assert refused.json()["code"] == "INSTANCE_RUNNING"
    await wait_status(app.client, "d", "stopped")
    assert (await app.client.delete("/api/instances/d")).status_code == 200


async def wait_logged(client: Any, name: str, text: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(text in entry["message"] for entry in
                  (await client.get(f"/api/instances/{name}/logs")).json()["logs"]):
        assert asyncio.get_running_loop().time() < deadline, f"{name} never logged {text!r}"
        await asyncio.sleep(0.05)


async def test_backend_ignoring_sigterm_is_killed_after_the_timeout(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "stubborn", fake_model, extra_args=["--fake-ignore-sigterm"])
    running = (await app.client.post("/api/instances/stubborn/start?wait=true")).json()
    assert running["status"] == "running"
    await app.client.post("/api/instances/stubborn/stop", json={"timeout": 1})
    # The backend has had SIGTERM and ignored it: still stopping, until the timeout's SIGKILL.
    await wait_logged(app.client, "stubborn", "ignoring SIGTERM")
    assert (await app.client.get("/api/instances/stubborn")).json()["status"] == "stopping"
    await wait_status(app.client, "stubborn", "stopped", timeout=10)
    assert backends_under(tmp_path) == []
    messages = [e["message"] for e in
                (await app.client.get("/api/instances/stubborn/logs")).json()["logs"]]
    assert any("SIGKILL" in m for m in messages)


async def test_force_stop_kills_at_once(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "f", fake_model, extra_args=["--fake-ignore-sigterm"])
    await app.client.post("/api/instances/f/start?wait=true")
    await app.client.post("/api/instances/f/stop", json={"force": True, "timeout": 60})
    await wait_status(app.client, "f", "stopped", timeout=5)
    assert backends_under(tmp_path) == []


async def test_sigkill_of_the_child_restarts_with_backoff_then_fails(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(**FAST_RESTARTS))
    await create(app, "crashy", model, max_restarts=2)
    instance = (await app.client.post("/api/instances/crashy/start?wait=true")).json()
    pids = []
    for attempt in (1, 2):
        pid = (await app.client.get("/api/instances/crashy")).json()["pid"]
        pids.append(pid)
        os.kill(pid, signal.SIGKILL)
        instance = await wait_instance(
            app.client, "crashy",
            lambda i: i["status"] == "running" and i["pid"] not in pids,
            what="running again",
        )
        assert instance["restart_count"] == attempt
        assert instance["pid"] not in pids
    os.kill(instance["pid"], signal.SIGKILL)
    instance = await wait_status(app.client, "crashy", "failed")
    assert "gave up after 2 restarts" in instance["last_error"]
    assert instance["pid"] is None
    messages = [e["message"] for e in
                (await app.client.get("/api/instances/crashy/logs?lines=1000")).json()["logs"]]
    assert "restart 1/2 in 0.2 s" in messages
    assert "restart 2/2 in 0.4 s" in messages
    assert backends_under(tmp_path) == []
    # The failed status and the count survive a restart of llamactl.
    await app.restart()
    instance = (await app.client.get("/api/instances/crashy")).json()
    assert instance["status"] == "failed"
    assert instance["restart_count"] == 2


async def test_a_bad_model_ends_failed_with_the_reason(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    garbage = write_unloadable_model(tmp_path / "models" / "garbage.gguf")
    await create(app, "bad", garbage)
    response = await app.client.post("/api/instances/bad/start?wait=true")
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "START_FAILED"
    assert "before it was ready" in body["error"]
    assert "failed to load model" in body["details"] or "gguf" in body["details"].lower()
    instance = (await app.client.get("/api/instances/bad")).json()
    assert instance["status"] == "failed"
    assert "start failed" in instance["last_error"]
    assert instance["restart_count"] == 0  # a failed start is not a crash to retry


@pytest.mark.parametrize("problem", ["model removed", "port taken", "binary missing"])
async def test_launch_problems_end_failed_with_the_reason(
    make_settings: Any, make_app: Any, fake_model: Path, problem: str, tmp_path: Path
) -> None:
    settings = make_settings(fake=True)
    if problem == "binary missing":
        settings.backends.llama_cpp.command = str(tmp_path / "no-such-llama-server")
    app: AppHarness = await make_app(settings)
    instance = await create(app, "p", fake_model)
    blocker = None
    if problem == "model removed":
        fake_model.unlink()
    elif problem == "port taken":
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", instance["port"])
    try:
        response = await app.client.post("/api/instances/p/start?wait=true")
    finally:
        if blocker is not None:
            blocker.close()
            await blocker.wait_closed()
    assert response.status_code == 502, response.text
    expected = {"model removed": "missing or not readable", "port taken": "in use",
                "binary missing": "not found"}[problem]
    assert expected in response.json()["error"]
    instance = (await app.client.get("/api/instances/p")).json()
    assert instance["status"] == "failed"
    assert expected in instance["last_error"]
    errors = (await app.client.get("/api/instances/p/logs?level=error")).json()["logs"]
    assert any(expected in e["message"] for e in errors)


async def test_a_backend_that_never_gets_ready_fails_after_the_stall_timeout(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True, load_timeout=1))
    await create(app, "stuck", fake_model, extra_args=["--fake-never-ready"])
    response = await app.client.post("/api/instances/stuck/start?wait=true")
    assert response.status_code == 502
    assert "not ready after 1 s without output" in response.json()["error"]
    assert backends_under(tmp_path) == []


async def test_output_while_loading_holds_off_the_stall_timeout(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    # Loads for 2.5 s, printing every 0.2 s: longer than the 1 s stall timeout, never silent.
    app: AppHarness = await make_app(make_settings(fake=True, load_timeout=1))
    await create(app, "slow", fake_model, extra_args=["--fake-load-seconds", "2.5"])
    response = await app.client.post("/api/instances/slow/start?wait=true")
    assert response.status_code == 200
    assert response.json()["status"] == "running"


async def test_failing_health_checks_count_as_a_crash(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    settings = make_settings(fake=True, health_interval=0.2, health_failures=2)
    app: AppHarness = await make_app(settings)
    await create(app, "sick", fake_model, auto_restart=False,
                 extra_args=["--fake-health-fail-after", "0.3"])
    await app.client.post("/api/instances/sick/start?wait=true")
    instance = await wait_status(app.client, "sick", "failed")
    assert "health check failed 2 times" in instance["last_error"]
    assert backends_under(tmp_path) == []


async def test_restart_gives_a_new_process(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "r", model)
    first = (await app.client.post("/api/instances/r/start?wait=true")).json()
    pid = (await app.client.get("/api/instances/r")).json()["pid"]
    response = await app.client.post("/api/instances/r/restart")
    assert response.json() == {"message": "Instance restart initiated", "status": "restarting"}
    await wait_instance(app.client, "r", lambda i: i["status"] == "running" and i["pid"] != pid)
    assert first["status"] == "running"


async def test_stop_when_not_running_is_a_conflict(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "n", fake_model)
    response = await app.client.post("/api/instances/n/stop")
    assert response.status_code == 409
    assert response.json()["code"] == "INSTANCE_NOT_RUNNING"
    bad_body = await app.client.post("/api/instances/n/stop", json={"timeout": -1})
    assert bad_body.status_code == 400
    assert bad_body.json()["code"] == "VALIDATION_ERROR"


async def test_update_of_a_running_instance(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "u", model, options={"threads": 1})
    await app.client.post("/api/instances/u/start?wait=true")
    pid = (await app.client.get("/api/instances/u")).json()["pid"]
    answer = (await app.client.put("/api/instances/u", json={"options": {"threads": 2}})).json()
    assert answer["restart_required"] is True
    assert answer["instance"]["pid"] == pid  # still on its old settings
    argv = psutil.Process(pid).cmdline()
    assert argv[argv.index("--threads") + 1] == "1"
    answer = (await app.client.put("/api/instances/u?restart=true",
                                   json={"options": {"parallel": 2}})).json()
    assert "restart_required" not in answer
    instance = await wait_instance(
        app.client, "u", lambda i: i["status"] == "running" and i["pid"] != pid
    )
    cmdline = psutil.Process(instance["pid"]).cmdline()
    assert cmdline[cmdline.index("--threads") + 1] == "2"
    assert cmdline[cmdline.index("--parallel") + 1] == "2"


async def test_start_all_and_stop_all(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    for name in ("a1", "a2", "a3"):
        await create(app, name, model)
    await app.client.post("/api/instances/a3/start?wait=true")
    started = (await app.client.post("/api/instances/start-all")).json()
    assert sorted(started["started"]) == ["a1", "a2"]
    assert started["skipped"] == ["a3"]
    assert started["failed"] == []
    for name in ("a1", "a2"):
        await wait_status(app.client, name, "running")
    assert len(backends_under(tmp_path)) == 3
    stopped = (await app.client.post("/api/instances/stop-all")).json()
    assert sorted(stopped["stopped"]) == ["a1", "a2", "a3"]
    assert stopped["skipped"] == []
    assert stopped["failed"] == []
    for name in ("a1", "a2", "a3"):
        await wait_status(app.client, name, "stopped")
    assert backends_under(tmp_path) == []


async def test_start_all_reports_failures(
    make_settings: Any, make_app: Any, fake_model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    await create(app, "ok", fake_model)
    doomed = write_unloadable_model(tmp_path / "models" / "doomed.gguf")
    await create(app, "gone", doomed)
    doomed.unlink()
    result = (await app.client.post("/api/instances/start-all")).json()
    assert result["started"] == ["ok"]
    assert [f["name"] for f in result["failed"]] == ["gone"]
    assert "missing" in result["failed"][0]["error"]


async def test_proxy_reaches_native_endpoints_with_the_key_added(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "px", model)
    refused = await app.client.get("/api/instances/px/proxy/props")
    assert refused.status_code == 409
    assert refused.json()["code"] == "INSTANCE_NOT_RUNNING"
    await app.client.post("/api/instances/px/start?wait=true")
    props = await app.client.get("/api/instances/px/proxy/props")
    assert props.status_code == 200
    assert "default_generation_settings" in props.json()
    completion = await app.client.post(
        "/api/instances/px/proxy/completion",
        json={"prompt": "hello", "n_predict": 3, "ignore_eos": True},
    )
    assert completion.status_code == 200
    assert completion.json()["tokens_predicted"] == 3
    tokens = await app.client.post("/api/instances/px/proxy/tokenize", json={"content": "hi"})
    assert tokens.status_code == 200
    assert isinstance(tokens.json()["tokens"], list)


async def test_a_port_change_applies_at_the_next_start(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    first = await create(app, "mv", model)
    await app.client.post("/api/instances/mv/start?wait=true")
    new_port = first["port"] + 1
    answer = (await app.client.put("/api/instances/mv", json={"port": new_port})).json()
    assert answer["restart_required"] is True
    # The running process still holds the old port: it is neither reused nor unwatched.
    taken = await app.client.post("/api/instances",
                                  json={"name": "x", "model_path": str(model),
                                        "port": first["port"]})
    assert taken.status_code == 409
    health = (await app.client.get("/api/instances/mv/health")).json()
    assert health["status"] == "healthy"
    proxied = await app.client.get("/api/instances/mv/proxy/health")
    assert proxied.status_code == 200
    await app.client.post("/api/instances/mv/restart")
    pid = answer["instance"]["pid"]
    instance = await wait_instance(
        app.client, "mv", lambda i: i["status"] == "running" and i["pid"] != pid
    )
    assert f"--port {new_port}" in " ".join(psutil.Process(instance["pid"]).cmdline())


async def test_an_assigned_port_skips_ports_the_os_reports_busy(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    settings = make_settings(fake=True)
    low, _ = settings.instances.port_range
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", low)
    try:
        app: AppHarness = await make_app(settings)
        instance = await create(app, "skip", fake_model)
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert instance["port"] == low + 1
