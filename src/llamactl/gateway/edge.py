"""The backend-HTTP edge's rules, one set for ``/v1`` (gateway/exchange.py) and the operator
proxy (api/routes/proxy.py): which headers cross in each direction, what an event stream's
answer gets, how the backend's key is added and what a backend that does not answer gives.

Request: hop-by-hop headers and the client's credentials stay here, and so does the client's
``Accept-Encoding``: backends are asked for ``identity``, and whatever ``Content-Encoding`` a
backend sends anyway goes to the client with the body it describes, untouched (the proxy
used to drop that header and pass the compressed body, which no client could read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

REQUEST_DROP = frozenset({
    b"host", b"authorization", b"content-length", b"connection", b"keep-alive",
    b"transfer-encoding", b"te", b"upgrade", b"accept-encoding", b"proxy-authorization",
    b"expect", b"x-api-key",  # Anthropic's place for the client's key: llamactl's, too
})
RESPONSE_DROP = frozenset({
    b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
    b"proxy-authenticate",
    b"x-content-type-options",  # llamactl sets its own on every answer
    b"x-request-id",  # and its own id (request_ids.py), not a backend's
})
# An event stream's answer must reach the client as it is written: no cache, no buffering in
# a reverse proxy in front of llamactl (nginx honours X-Accel-Buffering).
SSE_REPLACED = frozenset({b"cache-control", b"x-accel-buffering"})
SSE_HEADERS = ((b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


def status_line(status: int) -> bytes:
    """An answer's first line to the client, with the status's reason phrase."""
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status


# Added to every request to a backend
ACCEPT_IDENTITY = (b"accept-encoding", b"identity")
_ACCEPT_IDENTITY_LINE = b"%s: %s\r\n" % ACCEPT_IDENTITY


def request_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client's headers that go on to the backend; names are lower-case, as uvicorn
    and Starlette give them."""
    return [(name, value) for name, value in headers if name not in REQUEST_DROP]


def request_head(method: str, target: bytes, headers: Iterable[tuple[bytes, bytes]],
                 host: str, port: int, api_key: str | None) -> list[bytes]:
    """A ``/v1`` request's head to its backend, as parts to join, up to the body's framing
    (the caller's). request_headers' filter, inlined: it runs for every request."""
    parts = [b"%s %s HTTP/1.1\r\nhost: %s:%d\r\n" % (method.encode(), target, host.encode(),
                                                        port)]
    parts += [name + b": " + value + b"\r\n" for name, value in headers
              if name not in REQUEST_DROP]
    parts.append(_ACCEPT_IDENTITY_LINE)
    if api_key:
        parts.append(b"authorization: " + backend_authorization(api_key) + b"\r\n")
    return parts


def json_answer(status: int, document: dict[str, Any], keep_alive: bool, headers: bytes
                ) -> bytes:
    """A whole answer of llamactl's own (the model list), with ``headers`` (lines) added."""
    body = json.dumps(document, separators=(",", ":")).encode()
    return (status_line(status)
            + b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
            + (b"" if keep_alive else b"connection: close\r\n") + headers + b"\r\n" + body)


def backend_authorization(api_key: str) -> bytes:
    """The value of the Authorization header that every request to a backend carries."""
    return b"Bearer " + api_key.encode()


def answer_header_kept(name: bytes, event_stream: bool) -> bool:
    """Whether a backend answer's header (lower-case) goes to the client. CORS headers are
    llamactl's to give, not the backend's."""
    return not (name in RESPONSE_DROP or name.startswith(b"access-control-")
                or (event_stream and name in SSE_REPLACED))


def is_event_stream(content_type: bytes) -> bool:
    return content_type.lower().startswith(b"text/event-stream")


def not_answering(instance: str, error: str) -> str:
    """The message of the 502 UPSTREAM_UNAVAILABLE (upstream_unavailable on /v1)."""
    return f"Instance '{instance}' did not answer: {error}"
