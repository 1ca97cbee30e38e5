"""The Python client's models are the server's answers, exactly: each is walked against its
schema in the server's own ``/openapi.json`` (field names, which are required, nullability,
and types, int and float told apart, enums as ``Literal``). Answers outside the OpenAPI
document (``/v1/models``, the event stream) are checked against real answers elsewhere
(test_client_keys.py, test_client_events.py)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

import llamactl.client as client_models
from tests.conftest import AppHarness

# client model -> the schema(s) of /openapi.json it reads; two schemas: fields of either, and
# required only where both require them.
PAIRS: dict[str, tuple[str, ...]] = {
    "Instance": ("Instance",),
    "InstanceStats": ("InstanceStats",),
    "MemoryEstimate": ("MemoryEstimateBody",),
    "InstanceUpdated": ("InstanceUpdated",),
    "OperationResult": ("OperationStarted",),
    "BatchFailure": ("BatchFailure",),
    "BatchResult": ("StartAllResult", "StopAllResult"),
    "HealthChecks": ("HealthChecks",),
    "Health": ("Health",),
    "InstanceHistory": ("InstanceHistory",),
    "StatsSample": ("HistorySample",),
    "LogEntry": ("LogEntry",),
    "InstanceCounts": ("InstanceCounts",),
    "Resources": ("Resources",),
    "Storage": ("Storage",),
    "NodeResources": ("NodeResources",),
    "ClusterNode": ("ClusterNode",),
    "SystemStatus": ("SystemStatus",),
    "MemoryAmounts": ("MemoryAmounts",),
    "MemoryClaimed": ("MemoryClaimed",),
    "MemoryStatus": ("MemoryStatus",),
    "Gpu": ("Gpu",),
    "SystemInfo": ("SystemInfo",),
    "ConfigUpdated": ("ConfigUpdated",),
    "ImportedInstance": ("ImportedInstance",),
    "ImportedCommand": ("ImportedCommand",),
    "Token": ("TokenAnswer",),
    "APIKey": ("KeyInfo",),
    "KeyCreated": ("KeyCreated",),
    "QuotaLimits": ("QuotaLimits",),
    "QuotaUsage": ("QuotaUsage",),
    "ActivityPrincipal": ("ActivityPrincipal",),
    "ActivityRecord": ("ActivityRecord",),
    "ActivityPage": ("ActivityPage",),
    "ActivityGroup": ("ActivityGroup",),
    "ActivityStatus": ("ActivityStatus",),
    "Pool": ("Pool",),
    "PoolMember": ("PoolMember",),
    "InstancePull": ("InstancePull",),
    "LibraryModel": ("ModelEntryBody",),
    "ModelSplit": ("ModelSplit",),
    "ModelSource": ("ModelSource",),
    "PullFile": ("PullFile",),
    "PullJob": ("PullJobBody",),
}
SERVER_TO_CLIENT = {server: client for client, servers in PAIRS.items() for server in servers}
# Fields read more loosely than the server's schema, each with why.
LOOSER = {
    "config": "the config document is a dict in the client, as get_config() answers it",
}


def shape(schema: dict[str, Any]) -> Any:
    """A JSON schema reduced to what a reader of the JSON sees, comparable across the two
    documents (the client's $refs named as the server's)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1].removesuffix("-Output")
        return ("model", SERVER_TO_CLIENT.get(name, name))
    if "anyOf" in schema:
        return ("any of", frozenset(shape(option) for option in schema["anyOf"]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return shape(schema["allOf"][0])
    if "enum" in schema:
        return ("one of", frozenset(schema["enum"]))
    if "const" in schema:
        return ("one of", frozenset([schema["const"]]))
    kind = schema.get("type")
    if kind == "array":
        return ("list of", shape(schema.get("items", {})))
    if kind == "object":
        values = schema.get("additionalProperties", True)
        return ("dict of", "anything" if values in (True, {}) else shape(values))
    if kind == "string":
        return "date-time" if schema.get("format") == "date-time" else "string"
    return kind or "anything"


def _server_schema(document: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    found = [schemas.get(name) or schemas[f"{name}-Output"] for name in names]
    properties: dict[str, Any] = {}
    for schema in found:
        properties.update(schema["properties"])
    required = set.intersection(*(set(schema.get("required", [])) for schema in found))
    return {"properties": properties, "required": required}


def differences(model: type[pydantic.BaseModel], server: dict[str, Any]) -> list[str]:
    mine = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    properties, required = mine["properties"], set(mine.get("required", []))
    found: list[str] = []
    if set(properties) != set(server["properties"]):
        found.append(f"fields {sorted(properties)} != the server's "
                     f"{sorted(server['properties'])}")
    for name in sorted(set(properties) & set(server["properties"])):
        ours, theirs = shape(properties[name]), shape(server["properties"][name])
        if ours != theirs and not (name in LOOSER and ours == ("dict of", "anything")):
            found.append(f"{name}: {ours} != the server's {theirs}")
        if (name in required) != (name in server["required"]):
            found.append(f"{name}: required {name in required}, the server's "
                         f"{name in server['required']}")
    return found


@pytest.fixture
async def openapi(make_settings: Any, make_app: Any) -> dict[str, Any]:
    harness: AppHarness = await make_app(make_settings(fake=True))
    answer = await harness.client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


async def test_every_model_is_its_servers_schema(openapi: dict[str, Any]) -> None:
    found = {name: differences(getattr(client_models, name), _server_schema(openapi, servers))
             for name, servers in PAIRS.items()}
    wrong = {name: lines for name, lines in found.items() if lines}
    assert not wrong, "\n".join(f"{name}: {line}"
                                 for name, lines in wrong.items() for line in lines)


async def test_every_answer_schema_has_a_client_model(openapi: dict[str, Any]) -> None:
    """A new answer schema on the server needs its model here (or a reason to have none)."""
    requests_and_config = {
        "AuthConfig", "BackendsConfig", "ClusterConfig", "CommandBody", "ConfigDocument",
        "ErrorBody", "EstimateRequest", "EventsConfig", "InstanceCreate", "InstanceUpdate",
        "InstancesConfig", "KeyCreate", "LlamaCppBackendConfig", "LoginBody",
        "MemoryBudgetConfig", "MlxLmBackendConfig", "RateLimitConfig", "ServerConfig",
        "DockerConfig", "LlamaCppDockerConfig", "VllmDockerConfig",
        "StopBody", "UserEntry", "VllmBackendConfig", "ActivityConfig", "KeyUpdate",
        "GatewayConfig", "PoolEntry", "PoolsConfig", "ModelsConfig", "PullRequest",
        # envelopes the client unwraps: {"instances": [...]}, {"logs": [...]}, ...
        "BackendList", "InstanceCreated", "InstanceList", "KeyList", "LogList", "Message",
        "ActivitySummary", "PoolList", "ModelList", "PullList",
        # read by the command line as plain JSON, not (yet) client models
        "BackendInfo", "OptionInfo", "Me", "AuditPage", "AuditRecord", "AuditPrincipal",
    }
    schemas = {name.removesuffix("-Output") for name in openapi["components"]["schemas"]}
    unpaired = schemas - set(SERVER_TO_CLIENT) - requests_and_config
    assert not unpaired, " ".join(sorted(unpaired))


def test_the_checker_tells_int_from_float_and_required_from_optional() -> None:
    class Loose(pydantic.BaseModel):
        uptime: float
        version: str | None = None

    server = {"properties": {"uptime": {"type": "integer"}, "version": {"type": "string"}},
              "required": {"uptime", "version"}}
    found = differences(Loose, server)
    assert len(found) == 3
    assert found[0] == "uptime: number != the server's integer"
    assert found[1].startswith("version: ('any of'")
    assert found[2] == "version: required False, the server's True"
