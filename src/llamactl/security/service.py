"""AuthService: logins, tokens, and who is calling. Built once per app from the settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from llamactl.errors import Forbidden, InvalidCredentials, RateLimited, TokenExpired, Unauthorized
from llamactl.security import tokens
from llamactl.security.key_cache import CachedKeys
from llamactl.security.keys import ApiKey
from llamactl.security.passwords import verify_password
from llamactl.security.quotas import QuotaBook
from llamactl.security.ratelimit import FixedWindowLimiter
from llamactl.security.roles import Role, allows
from llamactl.security.users import UserDirectory


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    kind: Literal["user", "key", "anonymous"]
    key: ApiKey | None = None


# Who calls when auth is off: everybody may do everything, as on any loopback-only tool.
ANONYMOUS = Principal("anonymous", "admin", "anonymous")


class AuthService:
    def __init__(
        self, *, enabled: bool, secret: str, users: UserDirectory, token_ttl: int,
        keys: CachedKeys, login_limiter: FixedWindowLimiter | None,
    ):
        self.enabled = enabled
        self.keys = keys
        self._secret = secret
        self._users = users
        self._ttl = token_ttl
        self._login_limiter = login_limiter
        self.quotas = QuotaBook()  # issue 30: usage per key and user, from the ledger

    def limits_of(self, principal: Principal) -> dict[str, int] | None:
        """The quotas of a key or a user, as they are now; None: none."""
        if principal.kind == "key":
            return principal.key.limits if principal.key is not None else None
        user = self._users.get(principal.name) if principal.kind == "user" else None
        if user is None or user.limits is None:
            return None
        return {name: value for name, value in user.limits.model_dump().items()
                if value is not None}

    def priority_of(self, principal: Principal) -> int:
        """Where requests wait, the higher goes first (issue 32): a key's or a user's."""
        if principal.kind == "key":
            return principal.key.priority if principal.key is not None else 0
        user = self._users.get(principal.name) if principal.kind == "user" else None
        return user.priority if user is not None else 0

    def quota_wait(self, principal: Principal) -> float | None:
        """None: the principal may send one more request (now counted); else the seconds
        until a window frees."""
        if principal.kind == "anonymous":
            return None
        who = ("key", principal.key.name) if principal.key is not None else (
            "user", principal.name)
        return self.quotas.admit(who, self.limits_of(principal))

    async def login(self, username: str, password: str, client: str) -> tuple[str, datetime]:
        limiter = self._login_limiter
        if limiter is not None and limiter.peek(client) >= limiter.limit:
            decision = limiter.hit(client, cost=0)
            raise RateLimited("Too many failed logins; try again later",
                              headers={"Retry-After": str(decision.retry_after)})
        user = self._users.get(username)
        password_hash = user.password_hash if user else None
        # argon2 takes tens of milliseconds on purpose: off the event loop.
        valid = await asyncio.to_thread(verify_password, password_hash, password)
        if not valid or user is None:
            if limiter is not None:
                limiter.hit(client)
            raise InvalidCredentials("Invalid username or password")
        return tokens.issue_token(self._secret, user.username, user.password_hash, self._ttl)

    def refresh(self, principal: Principal) -> tuple[str, datetime]:
        user = self._users.get(principal.name) if principal.kind == "user" else None
        if user is None:
            raise Forbidden("Only a user's token can be refreshed")
        return tokens.issue_token(self._secret, user.username, user.password_hash, self._ttl)

    def principal_for_token(self, token: str) -> Principal:
        """The user a JWT belongs to, as the user is now (role and password)."""
        try:
            claims = tokens.decode_token(self._secret, token)
        except tokens.TokenExpired:
            raise TokenExpired("Token expired") from None
        except tokens.TokenInvalid:
            raise Unauthorized("Invalid token") from None
        user = self._users.get(claims.username)
        if user is None or not tokens.fingerprint_matches(user.password_hash,
                                                          claims.password_fingerprint):
            raise Unauthorized("Invalid token")
        return Principal(user.username, user.role, "user")

    def principal_for_key(self, key: str) -> Principal | None:
        record = self.keys.verify(key)
        if record is None:
            return None
        return Principal(f"key:{record.name}", "viewer", "key", record)

    async def principal_for_new_key(self, key: str) -> Principal | None:
        """``principal_for_key``, after looking in the store for a key memory does not know
        (made by ``llamactl keys create`` in another process a moment ago)."""
        record = await self.keys.verify_fresh(key)
        if record is None:
            return None
        return Principal(f"key:{record.name}", "viewer", "key", record)

    def caller(self, token: str | None) -> str | None:
        """The user name behind a valid token, for rate limiting; None otherwise."""
        if not token:
            return None
        try:
            return self.principal_for_token(token).name
        except (Unauthorized, TokenExpired):
            return None

    def check_role(self, principal: Principal, required: Role) -> None:
        if not allows(principal.role, required):
            raise Forbidden(f"This needs the {required} role; you are {principal.role}")
