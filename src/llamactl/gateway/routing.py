"""What a ``/v1`` request asks for: who sends it, which model, and the model list."""

from __future__ import annotations

import math
from typing import Any

import orjson

from llamactl.errors import LlamactlError
from llamactl.gateway.credentials import (
    TwoCredentials,
    credential_in,
    missing_credential,
    two_credentials,
)
from llamactl.gateway.errors import GatewayError, from_domain, model_not_found
from llamactl.security.keys import KEY_PREFIX
from llamactl.security.service import ANONYMOUS, AuthService, Principal
from llamactl.supervisor.abilities import abilities_json, abilities_of
from llamactl.supervisor.owner import InstanceOwner
from llamactl.supervisor.pools import PoolKeeper

MAX_BODY_BYTES = 64 * 1024 * 1024


class KeyNotKnown(Exception):
    """A key memory does not know: look for it in the store (``principal_for_new_key``)
    before refusing it."""

    def __init__(self, key: str):
        super().__init__("key not known yet")
        self.key = key


def invalid_key() -> GatewayError:
    return GatewayError(401, "Invalid API key", "authentication_error", "invalid_api_key")


def authenticate(auth: AuthService, headers: list[tuple[bytes, bytes]]) -> Principal:
    """An inference key (limited to its instances) or a user's token, when auth is on.
    KeyNotKnown for a key that may have been made since memory last looked."""
    if not auth.enabled:
        return ANONYMOUS
    try:
        token = credential_in(headers)  # Authorization: Bearer, or Anthropic's x-api-key
    except TwoCredentials:
        raise two_credentials() from None
    if token is None:
        raise missing_credential()
    if token.startswith(KEY_PREFIX):
        found = auth.principal_for_key(token)
        if found is None:
            raise KeyNotKnown(token)
        principal = found
    else:
        try:
            principal = auth.principal_for_token(token)
        except LlamactlError as error:
            raise from_domain(error) from None
    check_quota(auth, principal)
    return principal


async def authenticate_new_key(auth: AuthService, key: str) -> Principal:
    """``authenticate``'s answer for a key memory did not know, once the store was asked."""
    principal = await auth.principal_for_new_key(key)
    if principal is None:
        raise invalid_key()
    check_quota(auth, principal)
    return principal


def check_quota(auth: AuthService, principal: Principal) -> None:
    """429 when the caller's quota is spent (issue 30): before the request reaches a backend."""
    wait = auth.quota_wait(principal)
    if wait is not None:
        raise GatewayError(429, "Quota exceeded for this API key or user; see Retry-After",
                           "rate_limit_error", "quota_exceeded",
                           {"Retry-After": str(max(1, math.ceil(wait)))})


def model_list(owners: list[InstanceOwner], principal: Principal,
               pools: PoolKeeper | None = None) -> dict[str, Any]:
    """OpenAI's list shape, every instance the caller may use, with ``status`` added; then
    each replica pool (issue 32) the caller may use, with its ``members``."""
    key = principal.key
    data = [
        {"id": o.name, "object": "model", "created": int(o.record.created_at.timestamp()),
         "owned_by": "llamactl", "status": o.status, "aliases": o.record.spec.aliases,
         **abilities_json(o)}
        for o in owners if key is None or key.allows(o.name)
    ]
    if pools is not None:
        for pool in sorted(pools.names()):
            members = [o for o in pools.members(pool)
                       if key is None or key.allows(pool) or key.allows(o.name)]
            if members or key is None or key.allows(pool):
                data.append(_pool_model(pool, members))
    return {"object": "list", "data": data}


def _pool_model(pool: str, members: list[InstanceOwner]) -> dict[str, Any]:
    """A pool in the model list: running while any member runs; what every member can (the
    least context, the capabilities all have), since any of them may answer."""
    statuses = {o.status for o in members}
    created = min((int(o.record.created_at.timestamp()) for o in members), default=0)
    found = [abilities_of(o) for o in members]
    lengths = [f.context_length for f in found]
    return {"id": pool, "object": "model", "created": created, "owned_by": "llamactl",
            "status": "running" if "running" in statuses else "stopped", "aliases": [],
            "context_length": None if not lengths or None in lengths else min(
                length for length in lengths if length is not None),
            "capabilities": [c for c in (found[0].capabilities if found else ())
                             if all(c in f.capabilities for f in found)],
            "members": [o.name for o in members]}


def local_answer(path: str, owners: list[InstanceOwner], principal: Principal,
                 pools: PoolKeeper | None = None) -> Any:
    """What llamactl answers itself: ``/v1/models`` and ``/v1/models/{id}``."""
    path = path.rstrip("/")
    models = model_list(owners, principal, pools)
    if path == "/v1/models":
        return models
    wanted = path[len("/v1/models/"):]
    found = [m for m in models["data"] if m["id"] == wanted]
    if not found:
        raise model_not_found(wanted)
    return found[0]


def model_of(body: bytes) -> str:
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise GatewayError(400, "The request body is not valid JSON", "invalid_request_error",
                           "invalid_json") from None
    model = document.get("model") if isinstance(document, dict) else None
    if not isinstance(model, str) or not model:
        raise model_required()
    return model


def model_required() -> GatewayError:
    return GatewayError(400, "You must provide a model parameter", "invalid_request_error",
                        "model_required")


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
