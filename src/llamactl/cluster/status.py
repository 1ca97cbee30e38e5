"""``nodes`` of ``GET /api/system/status`` under ``cluster.engine: ray``."""

from __future__ import annotations

import asyncio
from typing import Any

from llamactl.supervisor.manager import InstanceManager


async def cluster_nodes(manager: InstanceManager) -> list[dict[str, Any]] | None:
    """Each node with the instances placed on it; None when backends run locally. Ray's
    node table is a call to its control store: made in a thread, off the event loop."""
    host = manager.context.host
    if host.local:
        return None
    nodes = await asyncio.to_thread(host.nodes) or []
    placed: dict[str, list[str]] = {}
    for owner in manager.owners():
        node = owner.record.runtime.node
        if node is not None:
            placed.setdefault(node["id"], []).append(owner.name)
    return [{**node, "instances": sorted(placed.get(node["id"], []))} for node in nodes]
