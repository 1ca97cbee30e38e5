"""What a ``/v1`` request asks for: who sends it, which model, and the model list."""

from __future__ import annotations

import math
from typing import Any

import orjson

from llamactl.errors import LlamactlError
from llamactl.gateway.errors import GatewayError, from_domain
from llamactl.security.keys import KEY_PREFIX
from llamactl.security.service import ANONYMOUS, AuthService, Principal
from llamactl.security.tokens import bearer_in
from llamactl.supervisor.owner import InstanceOwner

MAX_BODY_BYTES = 64 * 1024 * 1024


def authenticate(auth: AuthService, headers: list[tuple[bytes, bytes]]) -> Principal:
    """An inference key (limited to its instances) or a user's token, when auth is on."""
    if not auth.enabled:
        return ANONYMOUS
    token = bearer_in(headers)
    if token is None:
        raise GatewayError(401, "Missing API key: send Authorization: Bearer <key or token>",
                           "authentication_error", "invalid_api_key")
    if token.startswith(KEY_PREFIX):
        found = auth.principal_for_key(token)
        if found is None:
            raise GatewayError(401, "Invalid API key", "authentication_error", "invalid_api_key")
        principal = found
    else:
        try:
            principal = auth.principal_for_token(token)
        except LlamactlError as error:
            raise from_domain(error) from None
    wait = auth.quota_wait(principal)  # issue 30: before the request reaches a backend
    if wait is not None:
        raise GatewayError(429, "Quota exceeded for this API key or user; see Retry-After",
                           "rate_limit_error", "quota_exceeded",
                           {"Retry-After": str(max(1, math.ceil(wait)))})
    return principal


def model_list(owners: list[InstanceOwner], principal: Principal) -> dict[str, Any]:
    """OpenAI's list shape, every instance the caller may use, with ``status`` added."""
    key = principal.key
    return {"object": "list", "data": [
        {"id": o.name, "object": "model", "created": int(o.record.created_at.timestamp()),
         "owned_by": "llamactl", "status": o.status, "aliases": o.record.spec.aliases}
        for o in owners if key is None or key.allows(o.name)
    ]}


def model_of(body: bytes) -> str:
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise GatewayError(400, "The request body is not valid JSON", "invalid_request_error",
                           "invalid_json") from None
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "You must provide a model parameter", "invalid_request_error",
                           "model_required")
    return model


def with_model(body: bytes, model: str) -> bytes:
    """The request body naming ``model`` instead (a backend that serves a name of its own:
    the client may have used an alias). Only for such backends: it costs a re-encoding."""
    document = orjson.loads(body)
    document["model"] = model
    return orjson.dumps(document)


def allowed_method(path: str) -> str:
    """The one method a /v1 path answers: the model list is llamactl's own and read-only;
    every other path is relayed to llama-server, whose /v1 endpoints all take a POST."""
    path = path.rstrip("/")
    return "GET" if path == "/v1/models" or path.startswith("/v1/models/") else "POST"


def method_not_allowed(allowed: str) -> GatewayError:
    return GatewayError(405, f"Method not allowed (allowed: {allowed})",
                        "invalid_request_error", "method_not_allowed", {"Allow": allowed})


def body_too_large() -> GatewayError:
    return GatewayError(413, "Request body too large", "invalid_request_error", "body_too_large")
