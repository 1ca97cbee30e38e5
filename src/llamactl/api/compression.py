"""gzip for answers whose whole body is known up front: JSON, HTML, CSS, JavaScript, text.

Why not Starlette's GZipMiddleware: it also compresses streamed answers, and a gzip stream
holds bytes back until its buffer fills, so a followed log, a proxied completion or any
chunked answer would stall. Here only an answer that declares its ``Content-Length`` (a
fixed body) is compressed; a stream never is (``text/event-stream`` is never touched, nor is
an answer already encoded). /v1 is served before ASGI (gateway/http_protocol.py) and never
reaches this. WebSockets pass through.
"""

from __future__ import annotations

import gzip

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMPRESSIBLE = (b"application/json", b"text/html", b"text/css", b"text/javascript",
                b"application/javascript", b"text/plain", b"image/svg+xml")
MINIMUM_SIZE = 1024  # below this gzip saves less than its own header and the CPU it takes
MAXIMUM_SIZE = 16 * 1024 * 1024  # the body is held in memory while it is compressed
LEVEL = 6
# Larger bodies are compressed in a worker thread (zlib lets go of the GIL): Swagger UI's
# 1.7 MB bundle takes about 140 ms here, which on the event loop would stall every feed.
INLINE_SIZE = 64 * 1024


def accepts_gzip(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() != b"accept-encoding":
            continue
        for part in value.lower().split(b","):
            coding, _, params = part.strip().partition(b";")
            refused = params.replace(b" ", b"") in (b"q=0", b"q=0.0", b"q=0.00", b"q=0.000")
            if coding.strip() in (b"gzip", b"*") and not refused:
                return True
    return False


def worth_compressing(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    found = {name.lower(): value for name, value in headers}
    if status < 200 or status in (204, 304) or b"content-encoding" in found:
        return False
    media = found.get(b"content-type", b"").split(b";")[0].strip().lower()
    length = found.get(b"content-length", b"")
    if media not in COMPRESSIBLE or not length.isdigit():
        return False  # a stream (no length), SSE, or a type gzip does not help
    return MINIMUM_SIZE <= int(length) <= MAXIMUM_SIZE


def compressed_headers(headers: list[tuple[bytes, bytes]], size: int) -> list[tuple[bytes, bytes]]:
    kept: list[tuple[bytes, bytes]] = []
    vary = [b"Accept-Encoding"]
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            continue
        if lower == b"vary":
            vary.insert(0, value)
            continue
        if lower == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value  # the bytes differ from the identity answer's
        kept.append((name, value))
    return [*kept, (b"content-encoding", b"gzip"), (b"content-length", str(size).encode()),
            (b"vary", b", ".join(vary))]


GZIP_HEADERS = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}


def compress(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=LEVEL, mtime=0)


async def compress_off_loop(body: bytes) -> bytes:
    if len(body) > INLINE_SIZE:
        return await anyio.to_thread.run_sync(compress, body)
    return compress(body)


class GzipMemo:
    """The last body given and its gzip: an answer asked for again and again (the instance
    list, polled) is compressed once per change. The comparison is a memcmp."""

    def __init__(self) -> None:
        self._plain = b""
        self._packed = compress(b"")

    async def compress(self, body: bytes) -> bytes:
        if body == self._plain:
            return self._packed
        packed = await compress_off_loop(body)
        self._plain, self._packed = body, packed
        return packed


class CompressFixedBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] == "HEAD"
                or not accepts_gzip(scope["headers"])):
            await self.app(scope, receive, send)
            return
        # Files must come as body messages, to be read here, not as a path the server sends.
        extensions = {k: v for k, v in scope.get("extensions", {}).items()
                      if k != "http.response.pathsend"}
        await self.app({**scope, "extensions": extensions}, receive, _Compressor(send).send)


class _Compressor:
    """Holds a fixed body's start and chunks, then sends them as one gzip body; anything else
    goes straight through."""

    def __init__(self, send: Send) -> None:
        self.downstream = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.passing = True

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            self.passing = not worth_compressing(message["status"], headers)
            if self.passing:
                await self.downstream(message)
            else:
                self.start = message
            return
        if self.passing or message["type"] != "http.response.body" or self.start is None:
            await self.downstream(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = await compress_off_loop(b"".join(self.chunks))
        headers = compressed_headers(list(self.start.get("headers", [])), len(body))
        await self.downstream({**self.start, "headers": headers})
        await self.downstream({"type": "http.response.body", "body": body})
