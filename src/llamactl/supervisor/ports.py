"""Port checks: is a port free on this machine, and which port to give a new instance."""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (a bind test, as the backend itself will bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # llama-server binds with SO_REUSEADDR, so connections lingering in TIME_WAIT after a
        # stop do not keep it from binding: they must not make the port look busy here either.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def pick_port(low: int, high: int, taken: Collection[int]) -> int | None:
    """The first port in [low, high] that no instance holds and the OS reports free."""
    for port in range(low, high + 1):
        if port not in taken and port_is_free(port):
            return port
    return None
