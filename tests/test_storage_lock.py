"""Another process holding the database's write lock (the CLI, a backup) stalls no request:
the store's writes wait on their own thread and API keys are checked from memory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from llamactl.security.key_cache import REFRESH_SECONDS
from tests.conftest import AppHarness
from tests.support.clients import PASSWORDS, auth_section
from tests.support.helpers import write_config

LOCK_SECONDS = 3.0
# A behaviour bound, not a speed goal: before the writer thread, a write waited for the lock
# on the event loop (SQLite's busy timeout, here the whole 3 s) and every answer with it.
# These answers take 1-35 ms on a quiet machine (the printed figure; issue 14's goal is
# 100 ms, bench/README.md has the runs); the bound leaves room for a machine busy with other
# work, far below the 3 s a blocked loop would take.
ANSWER_WITHIN = 1.0

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


async def test_a_held_write_lock_stalls_neither_v1_nor_the_api(
    make_settings: Any, make_app: Any, model: Path, tmp_path: Path
) -> None:
    app: AppHarness = await make_app(make_settings(sections={"auth": auth_section()}))
    login = await app.client.post("/api/auth/login",
                                  json={"username": "admin", "password": PASSWORDS["admin"]})
    admin = {"Authorization": f"Bearer {login.json()['token']}"}
    for name in ("a", "b"):
        created = await app.client.post("/api/instances", headers=admin,
                                        json={"name": name, "model_path": str(model)})
        assert created.status_code == 201
        started = await app.client.post(f"/api/instances/{name}/start?wait=true",
                                        headers=admin)
        assert started.status_code == 200, started.text
    created = await app.client.post("/api/keys", headers=admin, json={"name": "client"})
    key = created.json()["key"]
    inference = {"Authorization": f"Bearer {key}"}

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "data" / "llamactl.db"),
         str(LOCK_SECONDS)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert await asyncio.to_thread(holder.stdout.readline) == "locked\n"
        locked_at = time.monotonic()
        # Writes wanted while the lock is held: a status change (stop) and the key's first use.
        began = time.monotonic()
        assert (await app.client.post("/api/instances/b/stop", headers=admin)).status_code \
            == 200
        slowest = time.monotonic() - began
        answers = 1
        while time.monotonic() - locked_at < LOCK_SECONDS - 0.5:
            for path, headers in (("/v1/models", inference), ("/api/instances", admin)):
                began = time.monotonic()
                answer = await app.client.get(path, headers=headers)
                slowest = max(slowest, time.monotonic() - began)
                assert answer.status_code == 200, answer.text
                answers += 1
        print(f"{answers} answers while the lock was held, slowest {slowest * 1000:.1f} ms")
        assert slowest < ANSWER_WITHIN
        assert answers > 10
    finally:
        holder.wait(LOCK_SECONDS + 10)
        if holder.stdout is not None:
            holder.stdout.close()  # an unclosed pipe is a ResourceWarning, an error here
    # Once the lock is gone, what waited is written.
    for _ in range(200):
        status = (await app.client.get("/api/system/status", headers=admin)).json()
        if status["storage"]["pending_writes"] == 0:
            break
        await asyncio.sleep(0.05)
    assert status["storage"] == {"available": True, "error": None, "pending_writes": 0}


async def test_keys_changed_by_the_cli_are_seen_by_a_running_server(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    auth = auth_section()
    app: AppHarness = await make_app(make_settings(fake=True, sections={"auth": auth}))
    config = write_config(tmp_path / "cli.yaml", {"auth": {"secret": auth["secret"]}})
    where = ["--config", str(config), "--data-dir", str(tmp_path / "data")]

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "llamactl", "keys", *args, *where],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    async def models_status(key: str) -> int:
        answer = await app.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        return answer.status_code

    async def becomes(key: str, status: int) -> None:
        deadline = time.monotonic() + 3 * REFRESH_SECONDS
        while await models_status(key) != status:
            assert time.monotonic() < deadline, f"/v1 never answered {status}"
            await asyncio.sleep(0.05)

    key = await asyncio.to_thread(cli, "create", "from-cli")
    await becomes(key, 200)
    await asyncio.to_thread(cli, "revoke", "from-cli")
    await becomes(key, 401)
