"""JWTs for the API: HS256 with a pinned algorithm, issuer and audience.

A token names its user and a fingerprint of the user's password hash; the role is looked up
at every request, so removing, downgrading or re-passwording a user takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "llamactl"
AUDIENCE = "llamactl-api"


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    username: str
    password_fingerprint: str
    expires_at: datetime


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def fingerprint_matches(password_hash: str, fingerprint: str) -> bool:
    """Whether a token's fingerprint is the user's current password's, in constant time."""
    return hmac.compare_digest(password_fingerprint(password_hash).encode(),
                               fingerprint.encode())


def issue_token(
    secret: str, username: str, password_hash: str, ttl_seconds: int, now: datetime | None = None
) -> tuple[str, datetime]:
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=ttl_seconds)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": username,
        "pwf": password_fingerprint(password_hash),
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    token = jwt.encode(payload, secret, algorithm=ALGORITHM)
    return token, expires.replace(microsecond=0)


def decode_token(secret: str, token: str) -> Claims:
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER, audience=AUDIENCE,
            options={"require": ["exp", "iat", "sub", "iss", "aud", "pwf"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired from None
    except jwt.PyJWTError as exc:
        raise TokenInvalid(str(exc)) from None
    subject, fingerprint = payload.get("sub"), payload.get("pwf")
    if not isinstance(subject, str) or not isinstance(fingerprint, str):
        raise TokenInvalid("malformed claims")
    return Claims(subject, fingerprint, datetime.fromtimestamp(payload["exp"], UTC))


def parse_bearer(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header (any case of
    "Bearer"), or None. The one parser: the REST API, its rate limits and the /v1 gateway
    must agree on who is asking."""
    scheme, _, credential = (authorization or "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def bearer_in(headers: list[tuple[bytes, bytes]]) -> str | None:
    """``parse_bearer`` over raw (ASGI or HTTP-layer) headers, names lower-cased."""
    for name, value in headers:
        if name == b"authorization":
            return parse_bearer(value.decode("latin-1"))
    return None
