"""The one seam between llamactl's front door and uvicorn: handing a connection over.

``gateway/http_protocol.py`` accepts every connection on llamactl's port and serves ``/v1``
itself. Any other request (``/api``, the dashboard, a WebSocket upgrade) is uvicorn's: its
connection is handed over here, at a request boundary, and from then on belongs to uvicorn.
The handover uses only what an asyncio protocol is (a class built with the server's
``config``, ``server_state`` and ``app_state``, then ``connection_made`` and
``data_received``) and ``Transport.set_protocol``: nothing of uvicorn's internals. Besides
``Config`` and ``Server``, the protocol class named here is the only uvicorn name llamactl
uses; ``scripts/uvicorn-canary`` runs the front's tests against the newest uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def hand_over(transport: asyncio.Transport, config: Any, server_state: Any,
              app_state: dict[str, Any], replay: bytes) -> None:
    """Give ``transport`` to a new uvicorn protocol, which then reads ``replay`` (the bytes
    of the request it is to answer, and any after it, as the client sent them) as if they
    had just arrived."""
    protocol = HttpToolsProtocol(config=config, server_state=server_state,
                                 app_state=app_state)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if replay:
        protocol.data_received(replay)
