"""The signing secret: from config or LLAMACTL_AUTH_SECRET, else generated once and kept in
the data dir (mode 0600) so tokens and API keys survive restarts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from llamactl.errors import StartupError

SECRET_FILE = "auth_secret"  # noqa: S105 (a file name, not a secret)
MIN_SECRET_LENGTH = 32


def load_secret(configured: str | None, data_dir: Path, environ: Mapping[str, str]) -> str:
    value = environ.get("LLAMACTL_AUTH_SECRET") or configured
    if value is not None:
        if len(value) < MIN_SECRET_LENGTH:
            raise StartupError(f"auth secret must be at least {MIN_SECRET_LENGTH} characters")
        return value
    path = data_dir / SECRET_FILE
    try:
        return _read_or_create(path)
    except OSError as exc:
        raise StartupError(f"cannot read or create {path}: {exc.strerror}") from None


def _read_or_create(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: two llamactl processes starting at once must not both write a secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
