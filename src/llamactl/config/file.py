"""Changing the config file safely: validate the whole result first, keep a backup, replace
atomically (temp file in the same directory, fsync, rename), keep its mode.

Used by ``llamactl users ...`` and ``PUT /api/config``. A change that does not validate
leaves the file untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llamactl.atomic_file import atomic_write
from llamactl.config.loading import format_validation, read_config_file
from llamactl.config.settings import Settings, startup_problem
from llamactl.errors import ValidationFailed

Document = dict[str, Any]


def update_config_file(path: Path, change: Callable[[Document], None]) -> Settings:
    """Apply ``change`` to the file's document, validate, back up, write. Returns the
    settings the new file describes; raises ValidationFailed and writes nothing if invalid."""
    document: Document = read_config_file(path) if path.exists() else {}
    change(document)
    try:
        settings = Settings.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(format_validation(exc).splitlines())
        raise ValidationFailed("the configuration would be invalid", problems) from None
    problem = startup_problem(settings)
    if problem is not None:
        raise ValidationFailed("llamactl would refuse to start with this configuration",
                               problem)
    atomic_write(path, yaml.safe_dump(document, sort_keys=False, default_flow_style=False),
                 backup=True)
    return settings


def deep_merge(base: Document, change: Document) -> None:
    """Merge ``change`` into ``base`` in place: mappings key by key, anything else replaced."""
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
