"""Where a ``/v1`` caller's key or token is: each SDK sends it in its own header.

OpenAI's SDK (and most others) send ``Authorization: Bearer <key>``; Anthropic's SDK and
Claude Code send ``x-api-key: <key>``. Either is accepted; a request that carries two
different credentials is refused rather than guessed at (which one did the caller mean to be
charged to?). Neither header goes on to the backend (gateway/edge.py drops both).
"""

from __future__ import annotations

import hmac

from llamactl.gateway.errors import GatewayError
from llamactl.security.tokens import parse_bearer

MISSING_MESSAGE = ("Missing API key: send Authorization: Bearer <key or token>, "
                   "or x-api-key: <key or token>")


class TwoCredentials(Exception):
    """The request names two different credentials."""


def credential_in(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The caller's key or token from ``Authorization: Bearer`` or ``x-api-key``; None when
    there is none; TwoCredentials when they (or two of either) differ."""
    found: str | None = None
    for name, value in headers:
        if name == b"authorization":
            credential = parse_bearer(value.decode("latin-1"))
        elif name == b"x-api-key":
            credential = value.decode("latin-1").strip() or None
        else:
            continue
        if credential is None:
            continue
        if found is not None and not hmac.compare_digest(found.encode(), credential.encode()):
            raise TwoCredentials
        found = credential
    return found


def two_credentials() -> GatewayError:
    return GatewayError(401, "Two different credentials: send the key or token in "
                        "Authorization or in x-api-key, not a different one in each",
                        "authentication_error", "invalid_api_key")


def missing_credential() -> GatewayError:
    return GatewayError(401, MISSING_MESSAGE, "authentication_error", "invalid_api_key")
