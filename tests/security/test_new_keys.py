"""Issue 27, point 12: a key made by ``llamactl keys create`` against the data dir (another
process, no server call) works at once, not after the key cache's next refresh; and random
bad keys cannot turn that lookup into a stream of database reads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from llamactl.security.key_cache import MAX_WAITING, CachedKeys
from llamactl.security.keys import KEY_PREFIX, KeyStore
from llamactl.store.database import open_database
from llamactl.store.writer import StoreWriter
from tests.security.conftest import AUTH_SECRET, Server


def _create_key_outside(server: Server, name: str) -> str:
    """``llamactl keys create`` on the server's data dir, as a script on its machine runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMACTL_")}
    env["LLAMACTL_AUTH_SECRET"] = AUTH_SECRET  # as the server has it (keys are hashed with it)
    made = subprocess.run(
        [sys.executable, "-m", "llamactl", "keys", "create", name,
         "--config", str(server.root / "config.yaml"), "--data-dir", str(server.root / "data")],
        capture_output=True, text=True, timeout=60, env=env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_a_key_made_outside_the_server_works_at_once(secured_server: Server) -> None:
    with secured_server.client() as client:
        for n in range(3):  # each one used the moment it exists, before any refresh
            key = _create_key_outside(secured_server, f"made-outside-{n}")
            bearer = {"Authorization": f"Bearer {key}"}
            models = client.get("/v1/models", headers=bearer)
            assert models.status_code == 200, models.text
            assert client.get("/metrics", headers=bearer).status_code == 200
        refused = client.get("/v1/models", headers={"Authorization": f"Bearer {KEY_PREFIX}x"})
        assert refused.status_code == 401


class _CountedReads(StoreWriter):
    """The real writer (not started: it runs each read inline), counting the reads."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reads = 0

    async def read(self, run: Any) -> Any:
        self.reads += 1
        await asyncio.sleep(0.01)  # a read takes a while: misses arriving meanwhile wait
        return await super().read(run)


async def test_random_bad_keys_share_a_few_bounded_lookups(tmp_path: Path) -> None:
    db = open_database(tmp_path / "llamactl.db")
    writer = _CountedReads(db)
    keys = CachedKeys(KeyStore(db, "secret"), writer)
    keys.load()
    try:
        guesses = [f"{KEY_PREFIX}guess-{n}" for n in range(200)]
        answers = await asyncio.gather(*(keys.verify_fresh(g) for g in guesses))
        assert answers == [None] * len(guesses)
        assert writer.reads <= 2  # one shared lookup (two if one had begun), not 200
        assert keys._waiting == 0
        # Past MAX_WAITING at once, a miss is refused without waiting for a lookup at all.
        reads = writer.reads
        many = [keys.verify_fresh(f"{KEY_PREFIX}more-{n}") for n in range(MAX_WAITING + 50)]
        assert await asyncio.gather(*many) == [None] * (MAX_WAITING + 50)
        assert writer.reads - reads <= 2
    finally:
        await keys.stop()
        db.close()
