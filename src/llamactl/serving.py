"""What ``llamactl serve`` does around the app: lock the data dir, bind the port, run uvicorn.

The order matters. Adoption (in the app's lifespan) takes over the llama-servers recorded in
the data dir, and a server that then fails to bind its port would stop them on its way out:
so the data dir is locked and the listening sockets are bound first, and a failure of either
ends ``serve`` before the app exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import resource
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from llamactl.config import Settings
from llamactl.errors import StartupError
from llamactl.store.data_dir_lock import DataDirLock, lock_data_dir


@dataclass
class Prepared:
    """Held for the server's life: the data dir's lock and the bound listening sockets."""

    lock: DataDirLock
    sockets: list[socket.socket] = field(default_factory=list)


def prepare_to_serve(settings: Settings) -> Prepared:
    from llamactl.services import prepare_data_dir

    lock = lock_data_dir(settings.data_dir)
    try:
        sockets = bind_listeners(settings.server.host, settings.server.port)
        try:
            prepare_data_dir(settings).close()
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
    except BaseException:
        lock.release()
        raise
    return Prepared(lock, sockets)


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) sockets for every address ``host`` names, as uvicorn's own
    ``create_server(host=...)`` would make; StartupError when one cannot be bound."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound: list[socket.socket] = []
    for family, kind, proto, _name, address in dict.fromkeys(addresses):
        sock = socket.socket(family, kind, proto)
        bound.append(sock)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            for opened in bound:
                opened.close()
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return bound


FILES_BESIDE_CONNECTIONS = 256  # the database, logs, backends' pipes and connections


def raise_open_file_limit(max_connections: int) -> None:
    """Every client connection is a file descriptor: raise the soft limit to the hard one
    (a common soft default is 1,024), and say so when ``server.max_connections`` still does
    not fit, as the cap then cannot keep the API answering."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FILES_BESIDE_CONNECTIONS
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        logging.getLogger(__name__).warning(
            "server.max_connections is %d but only %d files may be open: lower it to %d",
            max_connections, soft, max(1, soft - FILES_BESIDE_CONNECTIONS))


def run_server(settings: Settings, prepared: Prepared, log_level: str,
               config_path: Path) -> None:
    import uvicorn

    from llamactl.app import begin_shutdown, create_app, server_config

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: health checks every few seconds would drown the log.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    raise_open_file_limit(settings.server.max_connections)
    app = create_app(settings, config_path=config_path)

    class Server(uvicorn.Server):
        exit_asked: asyncio.Event | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            begin_shutdown(app)
            super().handle_exit(sig, frame)
            if self.exit_asked is not None:  # wakes main_loop now (from a signal handler)
                asyncio.get_event_loop().call_soon_threadsafe(self.exit_asked.set)

        async def main_loop(self) -> None:
            """uvicorn's ticks ten times a second, to see should_exit and to date its answers
            once a second: here once a second, and at once when asked to exit (an idle
            server's every wakeup counts: bench/lifecycle.py's watching cost)."""
            self.exit_asked = asyncio.Event()
            counter = 0
            while not await self.on_tick(counter):
                counter = (counter + 10) % 864000  # each tick is uvicorn's tenth
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.exit_asked.wait(), 1.0)

    config = server_config(app, settings.server.host, settings.server.port,
                           log_level=log_level)  # configures uvicorn's loggers
    escape_logged_controls()
    try:
        Server(config).run(sockets=prepared.sockets)
    finally:
        prepared.lock.release()


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as its escape (``\\n``, ``\\x1b``)."""
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


class EscapeControls(logging.Filter):
    """One log record, one line. A request's path, headers or body end up in log messages
    (``GET /api/x%0a... -> 404``): a newline in them wrote a forged line of the caller's
    choosing into llamactl's log, and an escape sequence could rewrite a terminal. The
    message is escaped once its arguments are in; a traceback that follows stays as is."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape_controls(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def escape_logged_controls() -> None:
    """Put EscapeControls on every handler that writes llamactl's and uvicorn's log."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in
                                      ("uvicorn", "uvicorn.error", "uvicorn.access"))]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, EscapeControls) for f in handler.filters):
                handler.addFilter(EscapeControls())
