"""An in-process llamactl with auth on, signed in as its admin, and inference keys of given
priorities (issue 32): what the tests of priorities share."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from llamactl.config.file import update_config_file
from llamactl.security.passwords import hash_password
from tests.conftest import AppHarness

SECRET = "keyed-app-secret-" + "k" * 40
PASSWORD = "root-pass"


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: once per session


async def keyed_app(make_settings: Any, make_app: Any, folder: Path,
                    priorities: dict[str, int], **settings: Any
                    ) -> tuple[AppHarness, dict[str, dict[str, str]]]:
    """The app (its client sends the admin's token) and, per key name, the headers that send
    that key instead. ``settings``: make_settings's (``sections`` merged with auth's)."""
    config = folder / "config.yaml"
    update_config_file(config, lambda doc: doc.update(auth={
        "enabled": True, "secret": SECRET, "users": [
            {"username": "root", "password_hash": _password_hash(), "role": "admin"}]}))
    sections = {**settings.pop("sections", {}), "auth": {"enabled": True, "secret": SECRET}}
    app: AppHarness = await make_app(make_settings(sections=sections, **settings), config)
    login = await app.client.post("/api/auth/login",
                                  json={"username": "root", "password": PASSWORD})
    app.client.headers["Authorization"] = f"Bearer {login.json()['token']}"
    keys = {}
    for name, priority in priorities.items():
        made = await app.client.post("/api/keys", json={"name": name, "priority": priority})
        assert made.status_code == 201, made.text
        keys[name] = {"Authorization": f"Bearer {made.json()['key']}"}
    return app, keys
