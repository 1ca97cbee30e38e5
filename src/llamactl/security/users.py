"""The users of the API, as the config file lists them, re-read when the file changes.

``llamactl users add|remove|passwd`` edit the file while the server runs; checking its mtime
at each authentication (one stat) makes a removal or a downgrade effective at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from llamactl.config import AuthConfig, UserEntry, read_config_file
from llamactl.errors import StartupError

log = logging.getLogger(__name__)


class UserDirectory:
    def __init__(self, initial: list[UserEntry], config_path: Path | None):
        self._users = {user.username: user for user in initial}
        self._path = config_path
        # Unknown until the first look: the file, when there is one, is the source of truth.
        self._mtime: int | None = -1 if config_path is not None else None

    def get(self, username: str) -> UserEntry | None:
        self._refresh()
        return self._users.get(username)

    def __len__(self) -> int:
        self._refresh()
        return len(self._users)

    def _stat(self) -> int | None:
        if self._path is None:
            return None
        try:
            return self._path.stat().st_mtime_ns
        except OSError:
            return None

    def _refresh(self) -> None:
        mtime = self._stat()
        if mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:  # the file went away: nobody is left who could log in
            self._users = {}
            return
        assert self._path is not None
        try:
            document = read_config_file(self._path)
            users = AuthConfig.model_validate(document.get("auth") or {}).users
        except (StartupError, ValidationError) as exc:
            # A half-edited file must not lock everybody out, nor let anybody in.
            log.warning("config file %s is invalid, keeping the previous users: %s",
                        self._path, str(exc).splitlines()[0])
            return
        self._users = {user.username: user for user in users}
