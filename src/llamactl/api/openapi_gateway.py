"""The ``/v1`` gateway in the OpenAPI document. It is served in the HTTP layer before FastAPI
(gateway/http_protocol.py), so no route describes it: this does, by hand, with the answers
gateway/exchange.py really gives (its methods included: see ``gateway.routing.allowed_method``)."""

from __future__ import annotations

from typing import Any

OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]},
        # llamactl's own codes are strings; llama-server's relayed errors carry the status
        "code": {"type": ["string", "integer"]}}}},
    "example": {"error": {"message": "The model 'nope' does not exist",
                          "type": "invalid_request_error", "param": None,
                          "code": "model_not_found"}},
}


# On Anthropic's routes (/v1/messages*) llamactl's own errors are in Anthropic's envelope;
# llama-server's relayed ones keep theirs: both carry an "error" object.
ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"type": {"type": "string"}, "error": {"type": "object", "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}}}},
    "example": {"type": "error", "error": {"type": "not_found_error",
                                           "message": "The model 'nope' does not exist"}},
}


def _errors(*answers: tuple[int, str], schema: dict[str, Any] = OPENAI_ERROR
            ) -> dict[str, Any]:
    return {str(status): {"description": description,
                          "content": {"application/json": {"schema": schema}}}
            for status, description in answers}


_COMMON = ((401, "invalid_api_key (when auth is on)"), (500, "internal_error"))
_RELAY_STATUSES = (
    (400, "model_required, invalid_json, unsupported_capability (the instance cannot serve "
          "this route: nothing was started)"),
    (403, "model_not_allowed: the key may not use it"),
    (404, "model_not_found"), (413, "body_too_large"), (502, "upstream_unavailable"),
    (503, "model_start_failed, model_not_running, capacity_exhausted (Retry-After), "
          "timeout (gateway.max_wait), shutting_down"),
    *_COMMON,
)
_RELAY_ERRORS = _errors(*_RELAY_STATUSES)
_RELAYED = ("Relayed to the instance named by the body's `model` (or an alias), started on "
            "demand; the answer is llama-server's, streamed chunk by chunk with "
            "`\"stream\": true`. Auth: an inference key or a user token when auth is on, in "
            "`Authorization: Bearer` or `x-api-key` (not two different ones).")
_CAPABILITIES = ["completion", "chat", "embedding", "rerank", "vision", "audio", "tools"]
_MODEL = {"type": "object", "required": ["id", "object", "created", "owned_by", "status",
                                         "aliases", "context_length", "capabilities"],
          "properties": {"id": {"type": "string"}, "object": {"type": "string"},
                         "created": {"type": "integer", "description": "Unix seconds"},
                         "owned_by": {"type": "string"}, "status": {"type": "string"},
                         "aliases": {"type": "array", "items": {"type": "string"}},
                         "context_length": {"type": ["integer", "null"], "description": (
                             "the instance's context_size, else the model's trained "
                             "context; null: unknown")},
                         "capabilities": {"type": "array", "items": {
                             "type": "string", "enum": _CAPABILITIES}},
                         "members": {"type": "array", "items": {"type": "string"},
                                     "description": "a replica pool's: its members"}}}
_MODEL_LIST = {"type": "object", "required": ["object", "data"],
               "properties": {"object": {"type": "string"},
                              "data": {"type": "array", "items": _MODEL}}}


def _relay_operation(summary: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": ["gateway"], "summary": summary, "description": _RELAYED,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["model"],
                       "properties": {"model": {"type": "string"}},
                       "additionalProperties": True},
            "example": example}}},
        "responses": {"200": {"description": "the instance's answer (JSON or an event "
                                              "stream)"}, **_RELAY_ERRORS},
    }


def _anthropic_operation(summary: str, example: dict[str, Any]) -> dict[str, Any]:
    operation = _relay_operation(summary, example)
    operation["description"] += " llamactl's own errors come in Anthropic's envelope."
    operation["responses"].update(_errors(*_RELAY_STATUSES, schema=ANTHROPIC_ERROR))
    return operation


def _upload_operation(summary: str) -> dict[str, Any]:
    operation = _relay_operation(summary, {})
    operation["description"] = (
        "A multipart/form-data body, routed by its `model` field; the file goes on to the "
        "instance as it arrives (64 MiB at most). " + _RELAYED.partition("; ")[2])
    operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["model", "file"], "properties": {
            "model": {"type": "string"}, "file": {"type": "string", "format": "binary"}}}}}}
    return operation


def _json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def describe_gateway(schema: dict[str, Any]) -> None:
    paths = schema.setdefault("paths", {})
    paths["/v1/models"] = {"get": {
        "tags": ["gateway"], "summary": "List models (instances)",
        "responses": {"200": _json_answer("OpenAI's list shape, plus status and aliases",
                                          _MODEL_LIST), **_errors(*_COMMON)}}}
    paths["/v1/models/{model}"] = {"get": {
        "tags": ["gateway"], "summary": "One model (instance)",
        "parameters": [{"name": "model", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": _json_answer("the model", _MODEL),
                      **_errors((404, "model_not_found"), *_COMMON)}}}
    paths["/v1/chat/completions"] = {"post": _relay_operation(
        "Chat completion", {"model": "llama2-7b", "messages": [
            {"role": "user", "content": "Hello"}], "stream": False})}
    paths["/v1/completions"] = {"post": _relay_operation(
        "Completion", {"model": "llama2-7b", "prompt": "Once upon", "max_tokens": 16})}
    paths["/v1/embeddings"] = {"post": _relay_operation(
        "Embeddings", {"model": "llama2-7b", "input": ["some text"]})}
    paths["/v1/responses"] = {"post": _relay_operation(
        "Response (OpenAI's Responses API)", {"model": "llama2-7b", "input": "Hello"})}
    paths["/v1/rerank"] = {"post": _relay_operation(
        "Rerank", {"model": "reranker", "query": "a llama", "documents": ["llamas", "Paris"]})}
    paths["/v1/messages"] = {"post": _anthropic_operation(
        "Message (Anthropic's Messages API)", {"model": "llama2-7b", "max_tokens": 64,
                                               "messages": [{"role": "user",
                                                             "content": "Hello"}]})}
    paths["/v1/messages/count_tokens"] = {"post": _anthropic_operation(
        "Count a message's tokens (Anthropic's API)", {
            "model": "llama2-7b", "messages": [{"role": "user", "content": "Hello"}]})}
    paths["/v1/audio/transcriptions"] = {"post": _upload_operation("Transcription (audio)")}
    other = _relay_operation("Any other /v1 endpoint of llama-server", {"model": "llama2-7b"})
    other["parameters"] = [{
        "name": "path", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "the rest of llama-server's path, after /v1/"}]
    other["responses"].update(_errors((405, "method_not_allowed: /v1/models is GET only")))
    paths["/v1/{path}"] = {"post": other}
