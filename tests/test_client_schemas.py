"""The clients' types against the OpenAPI document, field by field, so that they cannot drift
from what the server documents (schemathesis holds the server to the same document:
test_openapi_contract.py).

Answers: the client has every field the document has, no field it lacks, each of the same
JSON type, and may hold null wherever the document allows null (a client may be more
lenient: it may accept null where the server never sends it). Request bodies: every field
the client sends is one the document takes, of its type. Python's models are read from their
annotations; Go's structs from the source (field, type and json tag), with no Go toolchain.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from llamactl.app import create_app
from llamactl.client import _models as py
from llamactl.config import Settings

GO_SOURCES = Path(__file__).parents[1] / "clients" / "go"
ANY = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})

# (client type, document schema, the client's role): "answer" must match the schema both
# ways; "request" may send a part of it; "part" reads a part (one type for two answers).
PYTHON: list[tuple[Any, str, str]] = [
    (py.InstanceStats, "InstanceStats", "answer"), (py.Instance, "Instance", "answer"),
    (py.MemoryEstimate, "MemoryEstimateBody", "answer"),
    (py.InstanceUpdated, "InstanceUpdated", "answer"),
    (py.OperationResult, "OperationStarted", "answer"),
    (py.BatchFailure, "BatchFailure", "answer"), (py.BatchResult, "StartAllResult", "part"),
    (py.BatchResult, "StopAllResult", "part"), (py.HealthChecks, "HealthChecks", "answer"),
    (py.Health, "Health", "answer"), (py.LogEntry, "LogEntry", "answer"),
    (py.InstanceHistory, "InstanceHistory", "answer"), (py.StatsSample, "HistorySample", "answer"),
    (py.InstanceCounts, "InstanceCounts", "answer"), (py.Resources, "Resources", "answer"),
    (py.SystemStatus, "SystemStatus", "answer"), (py.Gpu, "Gpu", "answer"),
    (py.ActivityStatus, "ActivityStatus", "answer"),
    (py.SystemInfo, "SystemInfo", "answer"), (py.ConfigUpdated, "ConfigUpdated", "answer"),
    (py.Token, "TokenAnswer", "answer"),
    (py.ImportedCommand, "ImportedCommand", "answer"),
    (py.ImportedInstance, "ImportedInstance", "answer"),
    (py.InstanceFields, "InstanceCreate", "request"),
    (py.InstanceChanges, "InstanceUpdate", "request"),
]
GO: list[tuple[str, str, str]] = [
    ("InstanceStats", "InstanceStats", "answer"), ("Instance", "Instance", "answer"),
    ("MemoryEstimate", "MemoryEstimateBody", "answer"),
    ("InstanceCreated", "InstanceCreated", "answer"),
    ("InstanceUpdated", "InstanceUpdated", "answer"),
    ("OperationResult", "OperationStarted", "answer"),
    ("BatchFailure", "BatchFailure", "answer"), ("StartAllResult", "StartAllResult", "answer"),
    ("StopAllResult", "StopAllResult", "answer"), ("HealthChecks", "HealthChecks", "answer"),
    ("Health", "Health", "answer"), ("LogEntry", "LogEntry", "answer"),
    ("InstanceCounts", "InstanceCounts", "answer"), ("Resources", "Resources", "answer"),
    ("SystemStatus", "SystemStatus", "answer"), ("GPU", "Gpu", "answer"),
    ("ActivityState", "ActivityStatus", "answer"),
    ("SystemInfo", "SystemInfo", "answer"), ("ConfigUpdated", "ConfigUpdated", "answer"),
    ("Token", "TokenAnswer", "answer"), ("Model", "#/v1/models/{model}", "answer"),
    ("CreateInstanceRequest", "InstanceCreate", "request"),
    ("UpdateInstanceRequest", "InstanceUpdate", "request"),
    ("ImportedCommand", "ImportedCommand", "answer"),
    ("ImportedInstance", "ImportedInstance", "answer"),
]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir = tmp_path_factory.mktemp("schemas")
    schema: dict[str, Any] = create_app(Settings.model_validate({"data_dir": str(data_dir)})
                                        ).openapi()
    return schema


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    if name.startswith("#"):  # an answer described inline: the path's GET 200
        answer = document["paths"][name[1:]]["get"]["responses"]["200"]
        inline: dict[str, Any] = answer["content"]["application/json"]["schema"]
        return inline
    named: dict[str, Any] = document["components"]["schemas"][name]
    return named


def doc_types(schema: dict[str, Any]) -> frozenset[str]:
    """The JSON types a schema allows."""
    if "$ref" in schema:
        return frozenset({"object"})
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return frozenset().union(*(doc_types(part) for part in schema[combinator]))
    kind = schema.get("type")
    if kind is None:
        if "enum" in schema or "const" in schema:
            values = schema.get("enum", [schema.get("const")])
            return frozenset(_json_type(value) for value in values)
        return ANY
    return frozenset([kind] if isinstance(kind, str) else kind)


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number",
            type(None): "null"}[type(value)]


def python_types(annotation: Any) -> frozenset[str]:
    if annotation is Any:
        return ANY
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return frozenset().union(*(python_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Literal:
        return frozenset(_json_type(value) for value in typing.get_args(annotation))
    if origin is not None:
        annotation = origin
    if annotation is type(None):
        return frozenset({"null"})
    simple = {str: "string", datetime: "string", bool: "boolean", int: "integer",
              float: "number", list: "array", dict: "object"}
    if annotation in simple:
        return frozenset({simple[annotation]})
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return frozenset({"object"})
    raise AssertionError(f"no JSON type known for {annotation!r}")


def python_fields(model: Any) -> dict[str, frozenset[str]]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {name: python_types(field.annotation) for name, field in model.model_fields.items()}
    return {name: python_types(hint) for name, hint in typing.get_type_hints(model).items()}


_GO_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
_GO_FIELD = re.compile(r"^\s+\w+\s+(\S+)\s+`json:\"([^\"]*)\"`", re.M)
_GO_NAMED = {"string": "string", "Status": "string", "LogLevel": "string",
             "time.Time": "string", "bool": "boolean", "int": "integer", "int64": "integer",
             "float64": "number", "Options": "object", "Config": "object",
             "EventData": "object"}


def go_structs() -> dict[str, dict[str, frozenset[str]]]:
    """Every struct in clients/go: its JSON fields and their JSON types (a pointer, slice,
    map or ``any`` may also be null)."""
    structs: dict[str, dict[str, frozenset[str]]] = {}
    sources = [p for p in GO_SOURCES.glob("*.go") if not p.name.endswith("_test.go")]
    for source in sources:
        for name, body in _GO_STRUCT.findall(source.read_text()):
            fields = {}
            for go_type, tag in _GO_FIELD.findall(body):
                json_name = tag.split(",")[0]
                if json_name and json_name != "-":
                    fields[json_name] = go_types(go_type)
            structs[name] = fields
    return structs


def go_types(go_type: str) -> frozenset[str]:
    if go_type.startswith("*"):
        return go_types(go_type[1:]) | {"null"}
    if go_type.startswith("[]"):
        return frozenset({"array", "null"})
    if go_type.startswith("map[") or go_type in ("Options", "Config"):
        return frozenset({"object", "null"})
    if go_type == "any":
        return ANY
    if go_type in _GO_NAMED:
        return frozenset({_GO_NAMED[go_type]})
    if go_type[:1].isupper():  # a struct of the package
        return frozenset({"object"})
    raise AssertionError(f"no JSON type known for Go type {go_type}")


def drift(client: dict[str, frozenset[str]], schema: dict[str, Any], role: str) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    problems = []
    if role != "request":
        problems += [f"{name}: in the document, not in the client"
                     for name in properties if name not in client]
    if role == "answer" or role == "request":
        problems += [f"{name}: in the client, not in the document"
                     for name in client if name not in properties]
    for name, held in client.items():
        if name not in properties:
            continue
        documented = doc_types(properties[name])
        if role != "request" and "null" in documented and "null" not in held:
            problems.append(f"{name}: the document allows null, the client cannot hold it")
        if held - {"null"} != documented - {"null"} and ANY not in (held, documented):
            problems.append(f"{name}: the client holds {sorted(held - {'null'})}, "
                            f"the document says {sorted(documented - {'null'})}")
    return problems


@pytest.mark.parametrize(("model", "schema_name", "role"), PYTHON,
                         ids=[f"{m.__name__}-{s}" for m, s, _ in PYTHON])
def test_python_client_models_match_the_openapi_document(
    document: dict[str, Any], model: Any, schema_name: str, role: str
) -> None:
    assert drift(python_fields(model), _schema(document, schema_name), role) == []


@pytest.mark.parametrize(("struct", "schema_name", "role"), GO,
                         ids=[f"{g}-{s}" for g, s, _ in GO])
def test_go_client_types_match_the_openapi_document(
    document: dict[str, Any], struct: str, schema_name: str, role: str
) -> None:
    structs = go_structs()
    assert struct in structs, f"no struct {struct} in {GO_SOURCES}"
    assert drift(structs[struct], _schema(document, schema_name), role) == []


def test_the_go_parser_reads_fields_types_and_tags() -> None:
    """The small parser above, on a struct whose fields it must all get right."""
    stats = go_structs()["InstanceStats"]
    assert set(stats) == {"memory_usage", "cpu_usage", "uptime"}
    assert stats["cpu_usage"] == {"number"}
    instance = go_structs()["Instance"]
    assert instance["pid"] == {"integer", "null"}
    assert instance["aliases"] == {"array", "null"}
    assert "Reset" not in go_structs()["UpdateInstanceRequest"]  # json:"-"
