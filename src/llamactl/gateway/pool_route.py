"""A ``/v1`` request whose ``model`` names a replica pool (issue 32): the exchange's seam.

The exchange (exchange.py) asks ``PoolRoute.of`` only when no instance has the name, so a
request for an instance pays nothing here. This reads what the pool's choice needs and
nothing more: the session (``X-Session-ID``, else OpenAI's ``user`` or Anthropic's
``metadata.user_id`` in the body, which is parsed again only for pool requests without the
header), the caller's priority, and the members the caller's key may use. The choice and the
queue are the supervisor's (supervisor/pools.py); failover of a request not yet sent is here.
"""

from __future__ import annotations

from collections.abc import Awaitable

import orjson

from llamactl.backends import backend_named
from llamactl.gateway.errors import GatewayError
from llamactl.gateway.routing import with_model
from llamactl.gateway.upload import Upload
from llamactl.security.service import AuthService, Principal
from llamactl.supervisor.leases import Lease
from llamactl.supervisor.pools import PoolKeeper, Ticket

SESSION_HEADER = b"x-session-id"
MAX_SESSION_CHARS = 256  # longer ids are cut: they only pick a member


class PoolRoute:
    __slots__ = ("keeper", "name", "ticket")

    def __init__(self, keeper: PoolKeeper, name: str, ticket: Ticket):
        self.keeper = keeper
        self.name = name
        self.ticket = ticket

    @classmethod
    def of(cls, keeper: PoolKeeper, auth: AuthService, principal: Principal, pool: str,
           headers: list[tuple[bytes, bytes]], body: bytes) -> PoolRoute:
        """403 when the caller's key may use neither the pool nor any of its members."""
        key = principal.key
        allowed = None
        if key is not None and not key.allows(pool):
            if not any(key.allows(member.name) for member in keeper.members(pool)):
                raise GatewayError(403, f"This API key may not use the model '{pool}'",
                                   "permission_error", "model_not_allowed")
            allowed = key.allows
        ticket = Ticket(session=session_of(headers, body),
                        priority=auth.priority_of(principal), allowed=allowed)
        return cls(keeper, pool, ticket)

    def take(self) -> Lease | None:
        return self.keeper.take(self.name, self.ticket)

    def acquire(self) -> Awaitable[Lease]:
        return self.keeper.acquire(self.name, self.ticket)

    def failover(self, lease: Lease) -> Awaitable[Lease]:
        """The member of ``lease`` did not take the request (it failed before the request
        was sent): give the lease back and wait for another member."""
        self.ticket.avoid.add(lease.instance)
        lease.release()
        return self.acquire()

    def body_for(self, lease: Lease, body: bytes, upload: Upload | None = None) -> bytes:
        """The body as the chosen member takes it: a backend that serves a name of its own
        (vLLM, MLX) must be sent that name instead of the pool's (in the form, for an
        upload, whose ``body`` is empty)."""
        served = self.served_by(lease)
        if served is None:
            return body
        if upload is not None:
            upload.rename_model(served)
            return body
        return with_model(body, served)

    def served_by(self, lease: Lease) -> str | None:
        """The name the chosen member must be sent instead of the pool's; None: the pool's."""
        owner = next((o for o in self.keeper.members(self.name) if o.name == lease.instance),
                     None)
        if owner is None:
            return None
        served = backend_named(owner.record.spec.backend).served_model(owner.record)
        return None if served is None or served == self.name else served


def session_of(headers: list[tuple[bytes, bytes]], body: bytes) -> str | None:
    """The session a request belongs to, for affinity; None: it belongs to none."""
    for name, value in headers:
        if name == SESSION_HEADER and value:
            return value.decode("latin-1")[:MAX_SESSION_CHARS]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    user = document.get("user")
    if isinstance(user, str) and user:
        return "user:" + user[:MAX_SESSION_CHARS]
    metadata = document.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str) and user_id:
        return "user:" + user_id[:MAX_SESSION_CHARS]
    return None
