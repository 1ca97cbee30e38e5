"""Which capability each ``/v1`` route needs, and the refusal of an instance that lacks it.

An embedding request to a chat instance would start it on demand (seconds, perhaps an
eviction) only to be told by llama-server that it serves no embeddings; llamactl knows
before (supervisor/abilities.py) and answers 400 ``unsupported_capability`` without starting
anything. Routes not listed here go to the backend, whose own answer (a 404 for a route it
does not serve) is relayed.
"""

from __future__ import annotations

from collections.abc import Iterable

from llamactl.gateway.errors import GatewayError
from llamactl.supervisor.abilities import abilities_of
from llamactl.supervisor.owner import InstanceOwner

ROUTE_NEEDS: dict[str, str] = {
    "/v1/completions": "completion",
    "/v1/chat/completions": "chat",
    "/v1/responses": "chat",
    "/v1/messages": "chat",
    "/v1/messages/count_tokens": "chat",
    "/v1/embeddings": "embedding",
    "/v1/rerank": "rerank",
    "/v1/reranking": "rerank",
    "/v1/audio/transcriptions": "audio",
    "/v1/audio/translations": "audio",
}


def check_capability(path: str, owner: InstanceOwner) -> None:
    """GatewayError 400 ``unsupported_capability`` when ``owner`` is known to lack what
    ``path`` needs."""
    needed = ROUTE_NEEDS.get(path)
    if needed is None:
        return
    abilities = abilities_of(owner)
    if abilities.known and needed not in abilities.capabilities:
        raise unsupported_capability(owner.name, path, needed, abilities.capabilities)


def check_pool_capability(path: str, pool: str, members: Iterable[InstanceOwner]) -> None:
    """The same for a replica pool (issue 32): refused when every member is known to lack
    what ``path`` needs (members may differ; one that can, or may, is enough)."""
    needed = ROUTE_NEEDS.get(path)
    members = list(members)
    if needed is None or not members:  # no member left: the pool's own answer
        return
    can: set[str] = set()
    for member in members:
        abilities = abilities_of(member)
        if not abilities.known or needed in abilities.capabilities:
            return
        can.update(abilities.capabilities)
    raise unsupported_capability(pool, path, needed, tuple(sorted(can)))


def unsupported_capability(name: str, path: str, needed: str,
                           capabilities: tuple[str, ...]) -> GatewayError:
    can = ", ".join(capabilities) or "nothing llamactl knows of"
    return GatewayError(400, f"The model '{name}' cannot serve {path}: it needs '{needed}', "
                        f"and '{name}' can do: {can}", "invalid_request_error",
                        "unsupported_capability")
