"""The documentation site's generated pages: the configuration and API references.

Both are rendered from the code at each ``mkdocs build`` (scripts/docs_hooks.py), so they
cannot drift from it: the configuration reference from the settings model (every key, its
type, default, environment variable and description), the API reference from the app's own
OpenAPI document (every route, its parameters, request body, answers and error codes).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from llamactl.app import create_app
from llamactl.config import BackendsConfig, backends_config_model
from llamactl.config.loading import ENV_KEYS
from llamactl.config.settings import Settings

# Set outside the settings model (read by ``llamactl serve`` or by the secret's loader).
_OTHER_ENV = {"auth.secret": "LLAMACTL_AUTH_SECRET"}


def settings_fields(model: type[BaseModel] = Settings,
                    prefix: str = "") -> Iterator[tuple[str, FieldInfo, bool]]:
    """(dotted key, field, is a section) for every key of the settings, depth first."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _model_of(field.annotation)
        yield key, field, section is not None
        if section is not None:
            yield from settings_fields(section, key + ".")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if annotation is BackendsConfig:
        return backends_config_model()  # a section per registered backend
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def type_name(annotation: Any) -> str:
    """A reader's name for a type: ``int | null``, ``list[string]``, ``map[string, int]``."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(argument) for argument in arguments)
    if origin is typing.Literal:
        return " | ".join(json.dumps(argument) for argument in arguments)
    if origin is list:
        return f"list[{type_name(arguments[0])}]"
    if origin is dict:
        return f"map[{type_name(arguments[0])}, {type_name(arguments[1])}]"
    if origin is tuple:
        return f"[{', '.join(type_name(argument) for argument in arguments)}]"
    names = {str: "string", int: "int", float: "number", bool: "bool", Path: "path"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _default(key: str, field: FieldInfo) -> str:
    if key == "data_dir":
        return "(see description)"
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    else:
        return "(required)"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value, default=str)}`"


def default_config_yaml() -> str:
    """Every setting at its default, as a YAML config file would hold it, each leaf with the
    first sentence of its description."""
    lines = ["```yaml"]
    for key, field, section in settings_fields():
        depth = key.count(".")
        name = key.rsplit(".", 1)[-1]
        if section:
            lines.append(f"{'  ' * depth}{name}:")
            continue
        value = "~/.local/share/llamactl" if key == "data_dir" else _yaml_value(field)
        entry = f"{'  ' * depth}{name}: {value}"
        summary = re.split(r"\.\s+(?=[A-Z])", field.description or "")[0].rstrip(".")
        lines.append(f"{entry:<40} # {summary}" if summary else entry)
    return "\n".join([*lines, "```"])


def _yaml_value(field: FieldInfo) -> str:
    value = field.default if field.default is not PydanticUndefined else (
        field.default_factory() if field.default_factory else None)  # type: ignore[call-arg]
    if isinstance(value, tuple):
        value = list(value)
    return "null" if value is None else json.dumps(value, default=str)


def environment_variable(key: str) -> str:
    by_key = {".".join(path): variable for variable, path in ENV_KEYS.items()}
    by_key.update(_OTHER_ENV)
    return by_key.get(key, "")


def configuration_reference() -> str:
    lines = [
        # A wide table: the side columns (the site's navigation is in the header's menu, and
        # the page has one heading) give it the page's width (issue 34).
        "---", "hide:", "  - navigation", "  - toc", "---", "",
        "# Configuration reference",
        "",
        "Generated from the settings model (`src/llamactl/config/settings.py`) at each build of",
        "this site. `llamactl serve` reads, lowest first: these defaults, the YAML file",
        "(`--config`, `LLAMACTL_CONFIG`, default `~/.config/llamactl/config.yaml`), the",
        "environment variables named here, then its command-line flags. Unknown keys are",
        "errors. `PUT /api/config` validates a change with the same model.",
        "",
        "| Key | Type | Default | Environment | Description |",
        "|---|---|---|---|---|",
    ]
    for key, field, section in settings_fields():
        kind = "section" if section else type_name(field.annotation)
        variable = environment_variable(key)
        lines.append(f"| `{key}` | {_cell(kind)} | {_cell(_default(key, field))} | "
                     f"{f'`{variable}`' if variable else ''} | "
                     f"{_cell(field.description or '')} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def openapi_document() -> dict[str, Any]:
    settings = Settings.model_validate({"data_dir": "/nonexistent/llamactl-docs"})
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def api_reference(document: dict[str, Any] | None = None) -> str:
    document = document or openapi_document()
    lines = [
        "# API reference",
        "",
        "Generated from llamactl's own OpenAPI document (`/openapi.json`) at each build of this",
        "site; a running server serves the same document, and an interactive view at `/docs`.",
        "Errors under `/api` are `{\"error\", \"code\", \"details\"}`; under `/v1`, OpenAI's",
        "`{\"error\": {\"message\", \"type\", \"code\"}}`.",
        "",
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            lines += _operation(document, method, path, operation)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema_section(name, schema)
    return "\n".join(lines) + "\n"


def _operation(document: dict[str, Any], method: str, path: str,
               operation: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", ""]
    if operation.get("summary"):
        lines += [f"**{operation['summary']}**", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| Parameter | In | Type | Required | Description |", "|---|---|---|---|---|"]
        for parameter in parameters:
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | "
                f"{_cell(schema_type(parameter.get('schema', {})))} | "
                f"{'yes' if parameter.get('required') else 'no'} | "
                f"{_cell(parameter.get('description', ''))} |")
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            lines += [f"Request body ({media}): {schema_type(content.get('schema', {}))}", ""]
    lines += ["| Status | Meaning | Body |", "|---|---|---|"]
    for status, answer in sorted(operation.get("responses", {}).items()):
        content = answer.get("content", {})
        body_type = "; ".join(f"{_cell(schema_type(c.get('schema', {})))} ({media})"
                              for media, c in content.items())
        lines.append(f"| {status} | {_cell(answer.get('description', ''))} | {body_type} |")
    return [*lines, ""]


def _schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip().replace("\n", " "), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {schema_type(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        lines.append(f"| `{field}` | {_cell(schema_type(spec))} | "
                     f"{'yes' if field in required else 'no'} | "
                     f"{_cell(spec.get('description', ''))} |")
    return [*lines, ""]


def schema_type(schema: dict[str, Any]) -> str:
    """A JSON schema in one short line, linking named schemas to their section."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " | ".join(schema_type(part) for part in schema[combinator])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {schema_type(schema['additionalProperties'])}"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind or "any")
