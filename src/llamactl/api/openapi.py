"""The OpenAPI document as the API really answers: validation errors are 400 in the
contract's error shape, never FastAPI's 422; and the /v1 gateway, which is served in the HTTP
layer before FastAPI (gateway/http_protocol.py), described by hand."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            _replace_422(schema)
            _describe_gateway(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _replace_422(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {
                    "description": "VALIDATION_ERROR or INVALID_JSON",
                    "content": {"application/json": {"schema": _ERROR_REF}},
                })
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


_OPENAI_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": "string", "nullable": True}, "code": {"type": "string"}}}},
    "example": {"error": {"message": "The model 'nope' does not exist",
                          "type": "invalid_request_error", "param": None,
                          "code": "model_not_found"}},
}
_GATEWAY_ERRORS = {
    str(status): {"description": description,
                  "content": {"application/json": {"schema": _OPENAI_ERROR}}}
    for status, description in (
        (400, "model_required, invalid_json"), (401, "invalid_api_key"),
        (403, "model_not_allowed"), (404, "model_not_found"),
        (502, "upstream_unavailable"),
        (503, "model_start_failed, model_not_running, capacity_exhausted (Retry-After)"),
    )
}
_RELAYED = ("Relayed to the instance named by the body's `model` (or an alias), started on "
            "demand; the answer is llama-server's, streamed chunk by chunk with "
            "`\"stream\": true`. Auth: an inference key or a user token when auth is on.")


def _relay_operation(summary: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": ["gateway"], "summary": summary, "description": _RELAYED,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["model"],
                       "properties": {"model": {"type": "string"}},
                       "additionalProperties": True},
            "example": example}}},
        "responses": {"200": {"description": "the instance's answer (JSON or an event "
                                              "stream)"}, **_GATEWAY_ERRORS},
    }


def _describe_gateway(schema: dict[str, Any]) -> None:
    models = {"tags": ["gateway"], "summary": "List models (instances)",
              "responses": {"200": {"description": "OpenAI's list shape, plus status and "
                                                   "aliases"}, **_GATEWAY_ERRORS}}
    paths = schema.setdefault("paths", {})
    paths["/v1/models"] = {"get": models}
    paths["/v1/chat/completions"] = {"post": _relay_operation(
        "Chat completion", {"model": "llama2-7b", "messages": [
            {"role": "user", "content": "Hello"}], "stream": False})}
    paths["/v1/completions"] = {"post": _relay_operation(
        "Completion", {"model": "llama2-7b", "prompt": "Once upon", "max_tokens": 16})}
    paths["/v1/embeddings"] = {"post": _relay_operation(
        "Embeddings", {"model": "llama2-7b", "input": ["some text"]})}
    paths["/v1/{path}"] = {"post": _relay_operation(
        "Any other /v1 endpoint of llama-server", {"model": "llama2-7b"})}
