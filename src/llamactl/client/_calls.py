"""Each API operation as a ``Call``: method, path, query, body and the parser of its answer.

Written once here; ``Client`` and ``AsyncClient`` only send them. Paths and shapes follow the
contract (``/api/instances/...``, ``{"instances": [...]}``, ``{"instance": {...}}``, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from llamactl.client._activity_models import ActivityGroup, ActivityPage, QuotaUsage
from llamactl.client._base import Call, TimeoutTypes
from llamactl.client._models import (
    APIKey,
    BatchResult,
    ConfigUpdated,
    Health,
    ImportedCommand,
    Instance,
    InstanceHistory,
    InstanceUpdated,
    KeyCreated,
    LogEntry,
    Model,
    OperationResult,
    SystemInfo,
    SystemStatus,
    Token,
)
from llamactl.client._pool_models import Pool

INSTANCES = "/api/instances"
LOG_LEVELS = ("debug", "info", "warn", "error")


def instance_path(name: str, action: str = "") -> str:
    if not name:
        raise ValueError("an instance name is required")
    # Quoted whole: a name with a slash must reach the server as one (invalid) name, not as
    # a different route.
    path = f"{INSTANCES}/{quote(name, safe='')}"
    return f"{path}/{action}" if action else path


def _ignore(body: Any) -> None:
    return None


def _config(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TypeError("config is not an object")
    return body


def login(username: str, password: str) -> Call[Token]:
    return Call("POST", "/api/auth/login", Token.model_validate,
                body={"username": username, "password": password}, authenticated=False)


def refresh() -> Call[Token]:
    return Call("POST", "/api/auth/refresh", Token.model_validate, refresh_first=False)


def list_instances() -> Call[list[Instance]]:
    return Call("GET", INSTANCES,
                lambda body: [Instance.model_validate(item) for item in body["instances"]])


def get_instance(name: str) -> Call[Instance]:
    return Call("GET", instance_path(name), Instance.model_validate)


def caller_path(model_path: str | os.PathLike[str], backend: object = None) -> str:
    """A model path as the server takes it: absolute. A relative one (or ``~/...``) means the
    caller's directory, which the server cannot know: it is resolved here, where it was
    typed. Symlinks are left alone; the server resolves them. For a backend that takes hub
    ids (vLLM, MLX), an ``org/name`` that names nothing here is sent as it is."""
    path = os.fspath(model_path)
    hub = backend not in (None, "llama_cpp") and _HUB_ID.match(path) is not None
    if not path or (hub and not os.path.exists(path)):
        return path
    return os.path.abspath(os.path.expanduser(path))


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def create_instance(name: str, model_path: str | os.PathLike[str],
                    fields: Mapping[str, Any]) -> Call[Instance]:
    body = {**fields, "name": name,
            "model_path": caller_path(model_path, fields.get("backend"))}
    return Call("POST", INSTANCES, lambda answer: Instance.model_validate(answer["instance"]),
                body=body)


def update_instance(name: str, changes: Mapping[str, Any], restart: bool) -> Call[InstanceUpdated]:
    body = dict(changes)
    if isinstance(body.get("model_path"), str | os.PathLike):
        body["model_path"] = caller_path(body["model_path"], body.get("backend"))
    return Call("PUT", instance_path(name), InstanceUpdated.model_validate,
                params={"restart": True} if restart else None, body=body)


def delete_instance(name: str) -> Call[None]:
    return Call("DELETE", instance_path(name), _ignore)


def start_instance(name: str, *, wait: bool, timeout: TimeoutTypes) -> Call[OperationResult]:
    return Call("POST", instance_path(name, "start"), OperationResult.model_validate,
                params={"wait": True} if wait else None, timeout=timeout)


def stop_instance(name: str, *, force: bool, grace: float | None) -> Call[OperationResult]:
    body: dict[str, Any] = {"force": force}
    if grace is not None:
        body["timeout"] = grace  # the API's name for the grace period
    return Call("POST", instance_path(name, "stop"), OperationResult.model_validate, body=body)


def restart_instance(name: str) -> Call[OperationResult]:
    return Call("POST", instance_path(name, "restart"), OperationResult.model_validate)


def instance_health(name: str) -> Call[Health]:
    return Call("GET", instance_path(name, "health"), Health.model_validate)


def instance_history(name: str) -> Call[InstanceHistory]:
    return Call("GET", instance_path(name, "history"), InstanceHistory.model_validate)


def _log_params(lines: int, level: str | None, follow: bool) -> dict[str, str | int | bool]:
    params: dict[str, str | int | bool] = {"lines": lines}
    if level is not None:
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        params["level"] = level
    if follow:
        params["follow"] = True
    return params


def instance_logs(name: str, *, lines: int, level: str | None) -> Call[list[LogEntry]]:
    return Call("GET", instance_path(name, "logs"),
                lambda body: [LogEntry.model_validate(item) for item in body["logs"]],
                params=_log_params(lines, level, follow=False))


def follow_logs(name: str, *, lines: int, level: str | None,
                timeout: TimeoutTypes) -> Call[None]:
    """Only the request: the answer is an event stream that ``LogStream`` reads."""
    return Call("GET", instance_path(name, "logs"), _ignore,
                params=_log_params(lines, level, follow=True), timeout=timeout,
                extra_headers={"Accept": "text/event-stream"})


def start_all() -> Call[BatchResult]:
    return Call("POST", f"{INSTANCES}/start-all", BatchResult.model_validate)


def stop_all() -> Call[BatchResult]:
    return Call("POST", f"{INSTANCES}/stop-all", BatchResult.model_validate)


def system_status() -> Call[SystemStatus]:
    return Call("GET", "/api/system/status", SystemStatus.model_validate)


def parse_command(backend: str, command: str) -> Call[ImportedCommand]:
    return Call("POST", f"/api/backends/{quote(backend, safe='')}/parse-command",
                ImportedCommand.model_validate, body={"command": command})


def system_info() -> Call[SystemInfo]:
    return Call("GET", "/api/system/info", SystemInfo.model_validate)


def get_config() -> Call[dict[str, Any]]:
    return Call("GET", "/api/config", _config)


def update_config(changes: Mapping[str, Any]) -> Call[ConfigUpdated]:
    return Call("PUT", "/api/config", ConfigUpdated.model_validate, body=dict(changes))


def list_pools() -> Call[list[Pool]]:
    return Call("GET", "/api/pools",
                lambda body: [Pool.model_validate(item) for item in body["pools"]])


def list_keys() -> Call[list[APIKey]]:
    return Call("GET", "/api/keys",
                lambda body: [APIKey.model_validate(item) for item in body["keys"]])


def create_key(name: str, instances: Sequence[str] | None,
               expires_at: datetime | None) -> Call[KeyCreated]:
    body: dict[str, Any] = {"name": name}
    if instances is not None:  # an empty list allows no instance; None (left out) all
        body["instances"] = list(instances)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (datetime.now(UTC) + ...)")
        body["expires_at"] = expires_at.astimezone(UTC).isoformat()
    return Call("POST", "/api/keys", KeyCreated.model_validate, body=body)


def _activity_params(filters: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    params: dict[str, str | int | float | bool] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone")
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        params[name] = value
    return params


def list_activity(filters: Mapping[str, Any]) -> Call[ActivityPage]:
    return Call("GET", "/api/activity", ActivityPage.model_validate,
                params=_activity_params(filters))


def activity_summary(by: str, filters: Mapping[str, Any]) -> Call[list[ActivityGroup]]:
    return Call("GET", "/api/activity/summary",
                lambda body: [ActivityGroup.model_validate(g) for g in body["groups"]],
                params=_activity_params({"by": by, **filters}))


def export_activity(format: str, filters: Mapping[str, Any],
                    timeout: TimeoutTypes) -> Call[None]:
    if format not in ("csv", "jsonl"):
        raise ValueError("format is csv or jsonl")
    return Call("GET", "/api/activity/export", _ignore,
                params=_activity_params({"format": format, **filters}), timeout=timeout)


def key_usage(name: str) -> Call[QuotaUsage]:
    return Call("GET", f"/api/keys/{quote(name, safe='')}/usage", QuotaUsage.model_validate)


def revoke_key(name: str) -> Call[None]:
    if not name:
        raise ValueError("a key name is required")
    return Call("DELETE", f"/api/keys/{quote(name, safe='')}", _ignore)


def list_models(api_key: str | None) -> Call[list[Model]]:
    """``/v1/models``: with the client's API key when it has one (the gateway's credential),
    else its token."""
    def parse(body: Any) -> list[Model]:
        return [Model.model_validate(item) for item in body["data"]]

    if api_key:
        return Call("GET", "/v1/models", parse, authenticated=False,
                    extra_headers={"Authorization": f"Bearer {api_key}"})
    return Call("GET", "/v1/models", parse)
