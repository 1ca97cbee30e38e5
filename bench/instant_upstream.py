"""A stand-in for llama-server that answers at once, to measure a proxy by itself.

bench/gateway.py starts it twice: directly (``--host 127.0.0.1 --port P --api-key K``), and as
``backends.llama_cpp.command`` of a llamactl, which launches it the way it launches llama-server
(``--model M --host 127.0.0.1 --port P --metrics --slots ... [options]``, the key in
``LLAMA_API_KEY``). Only ``--host``, ``--port`` and ``--api-key`` mean anything here; every other
flag is accepted and ignored.

It is a bare asyncio protocol (on uvloop when installed) speaking just enough HTTP/1.1
(keep-alive, ``Content-Length`` bodies), so that it costs as little CPU per request as a Python
server can:

* ``GET /health``  → 200 ``{"status":"ok"}`` (no key needed, as with llama-server)
* ``GET /metrics`` → 200 and one Prometheus line
* any ``POST``     → 401 without the right ``Authorization: Bearer KEY`` when a key is set;
  otherwise a fixed small completion, or, when the JSON body says ``"stream": true``, a few
  SSE ``data:`` lines and ``data: [DONE]``, chunked, all in one write
* anything else    → 404

SIGTERM or SIGINT stops it at once, saying which process sent it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
from typing import cast

COMPLETION = json.dumps({
    "id": "cmpl-instant", "object": "text_completion", "created": 0, "model": "instant",
    "choices": [{"text": " a b c d", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5},
}, separators=(",", ":")).encode()


def _sse() -> bytes:
    events = []
    for index, text in enumerate((" a", " b", " c", " d")):
        finish = "length" if index == 3 else None
        chunk = {"id": "cmpl-instant", "object": "text_completion", "created": 0,
                 "model": "instant",
                 "choices": [{"text": text, "index": 0, "logprobs": None,
                              "finish_reason": finish}]}
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    # One HTTP chunk per SSE event, as llama-server sends them.
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nServer: instant\r\nContent-Type: "
            + content_type + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


ANSWER = _response("200 OK", b"application/json", COMPLETION)
STREAM = (b"HTTP/1.1 200 OK\r\nServer: instant\r\nContent-Type: text/event-stream\r\n"
          b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n" + _sse())
HEALTH = _response("200 OK", b"application/json", b'{"status":"ok"}')
METRICS = _response("200 OK", b"text/plain; version=0.0.4",
                    b"llamacpp:requests_processing 0\n")
UNAUTHORIZED = _response("401 Unauthorized", b"application/json",
                         b'{"error":{"code":401,"message":"Invalid API Key",'
                         b'"type":"authentication_error"}}')
NOT_FOUND = _response("404 Not Found", b"application/json", b'{"error":"not found"}')
BAD_REQUEST = _response("400 Bad Request", b"application/json", b'{"error":"bad request"}')
LENGTH_REQUIRED = _response("411 Length Required", b"application/json",
                            b'{"error":"chunked request bodies are not supported"}')


class Instant(asyncio.Protocol):
    def __init__(self, authorization: bytes | None):
        self.authorization = authorization
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                self._answer(LENGTH_REQUIRED, close=True)
                return
            try:
                length = int(headers.get(b"content-length", b"0"))
            except ValueError:
                self._answer(BAD_REQUEST, close=True)
                return
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body is still to come
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            method, _, rest = lines[0].partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            close = headers.get(b"connection", b"").lower() == b"close"
            self._answer(self._route(method, path, headers, body), close)

    def _route(self, method: bytes, path: bytes, headers: dict[bytes, bytes],
               body: bytes) -> bytes:
        if method == b"GET":
            return HEALTH if path == b"/health" else METRICS if path == b"/metrics" else NOT_FOUND
        if method != b"POST":
            return NOT_FOUND
        if self.authorization is not None and headers.get(b"authorization") != self.authorization:
            return UNAUTHORIZED
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            return BAD_REQUEST
        return STREAM if isinstance(document, dict) and document.get("stream") is True else ANSWER

    def _answer(self, answer: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(answer)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _wait_for_signal(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """In a thread: the first stop signal, and who sent it (on a shared machine, worth
    knowing when the benchmark did not)."""
    info = signal.sigwaitinfo(STOP_SIGNALS)
    try:
        with open(f"/proc/{info.si_pid}/cmdline", "rb") as file:
            sender = file.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        sender = "?"
    print(f"instant upstream: {signal.Signals(info.si_signo).name} from pid {info.si_pid} "
          f"({sender[:200]}); stopping", flush=True)
    loop.call_soon_threadsafe(stop.set)


async def serve(host: str, port: int, key: str | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=_wait_for_signal, args=(loop, stop), daemon=True).start()
    authorization = f"Bearer {key}".encode() if key else None
    server = await loop.create_server(lambda: Instant(authorization), host, port, backlog=1024)
    print(f"instant upstream listening on {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                     allow_abbrev=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key", default=None,
                        help="key a POST must carry (default: $LLAMA_API_KEY, else none)")
    args, _ignored = parser.parse_known_args()  # llama-server's other flags
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # every thread: sigwaitinfo takes them
    key = args.api_key or os.environ.get("LLAMA_API_KEY") or None
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port, key))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port, key))


if __name__ == "__main__":
    main()
