"""Tokens and speeds, read from an answer as it passes to the client.

The answer is never held back, re-chunked or delayed for this: each piece the relay writes is
also handed to ``feed``, which looks at it and returns. An event stream is read line by line
only around the lines that can hold numbers (``"usage"``, ``"timings"``): llama.cpp puts
``timings`` in the last chunk of every stream, OpenAI clients ask for ``usage`` with
``stream_options.include_usage``, Anthropic's ``/v1/messages`` sends ``usage`` in
``message_start`` and ``message_delta``, the Responses API in ``response.completed``. A
whole JSON answer is kept (up to ``MAX_JSON_BYTES``) beside the relay and read once, when it
has ended.
"""

from __future__ import annotations

from typing import Any

import orjson

from llamactl.activity.record import Usage

MAX_JSON_BYTES = 8 * 1024 * 1024  # a bigger answer (embeddings of a batch) is not read
MAX_LINE_BYTES = 1024 * 1024  # an event line longer than this cannot hold numbers we read
_MARKERS = (b'"usage"', b'"timings"')


class UsageMeter:
    __slots__ = ("_body", "_kept", "_partial", "event_stream", "found")

    def __init__(self, *, event_stream: bool, json_body: bool):
        self.event_stream = event_stream
        self.found = Usage()
        self._partial = b""
        self._body: list[bytes] | None = [] if json_body and not event_stream else None
        self._kept = 0

    def feed(self, chunk: bytes) -> None:
        if self.event_stream:
            self._feed_stream(chunk)
        elif self._body is not None:
            self._kept += len(chunk)
            if self._kept > MAX_JSON_BYTES:
                self._body = None
            else:
                self._body.append(chunk)

    def usage(self) -> Usage:
        """What the answer said, once it has ended."""
        if self._body:
            try:
                document = orjson.loads(b"".join(self._body))
            except orjson.JSONDecodeError:
                document = None
            self._body = None
            if isinstance(document, dict):
                read_numbers(document, self.found)
        return self.found

    def _feed_stream(self, chunk: bytes) -> None:
        data = self._partial + chunk if self._partial else chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._partial = data if len(data) <= MAX_LINE_BYTES else b""
            return
        self._partial = data[end + 1:]
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""
        complete = data[:end]
        if _MARKERS[0] not in complete and _MARKERS[1] not in complete:
            return
        for line in complete.split(b"\n"):
            if line.startswith(b"data:") and (_MARKERS[0] in line or _MARKERS[1] in line):
                try:
                    document = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(document, dict):
                    read_numbers(document, self.found)


def read_numbers(document: dict[str, Any], usage: Usage) -> None:
    """Fold what one answer document says into ``usage``: OpenAI's and vLLM's ``usage``,
    Anthropic's (also inside ``message``: its stream's ``message_start``), the Responses
    API's (inside ``response`` in its stream's ``response.completed``), llama.cpp's
    ``timings``."""
    found = document.get("usage")
    if not isinstance(found, dict):
        inner = document.get("message") or document.get("response")
        found = inner.get("usage") if isinstance(inner, dict) else None
    timings = document.get("timings")
    if isinstance(timings, dict):
        _read_timings(timings, usage)
    if isinstance(found, dict):
        _read_usage(found, usage)


def _read_usage(found: dict[str, Any], usage: Usage) -> None:
    # Once per answer on the event loop: plain type tests, not a call of _int each (a JSON
    # integer is an int, never a subclass of one; ``type(True) is bool``, not int).
    prompt = found["prompt_tokens"] if "prompt_tokens" in found else found.get("input_tokens")
    if type(prompt) is int:
        usage.prompt_tokens = prompt
    completion = (found["completion_tokens"] if "completion_tokens" in found
                  else found.get("output_tokens"))
    if type(completion) is int:
        usage.completion_tokens = completion
    details = found.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if type(details) is dict else None
    if type(cached) is not int:
        cached = found.get("cache_read_input_tokens")
    if type(cached) is int:
        usage.cached_tokens = cached


def _read_timings(timings: dict[str, Any], usage: Usage) -> None:
    prompt_n, cache_n = _int(timings.get("prompt_n")), _int(timings.get("cache_n"))
    predicted_n = _int(timings.get("predicted_n"))
    # usage, when the answer has it too, is what the client was told: it wins (_read_usage
    # runs after this); timings count only what was evaluated, the cache apart.
    if prompt_n is not None and usage.prompt_tokens is None:
        usage.prompt_tokens = prompt_n + (cache_n or 0)
    if predicted_n is not None and usage.completion_tokens is None:
        usage.completion_tokens = predicted_n
    if cache_n is not None and usage.cached_tokens is None:
        usage.cached_tokens = cache_n
    usage.draft_tokens = _int(timings.get("draft_n"), usage.draft_tokens)
    usage.draft_accepted = _int(timings.get("draft_n_accepted"), usage.draft_accepted)
    usage.prompt_tps = _float(timings.get("prompt_per_second"), usage.prompt_tps)
    usage.generation_tps = _float(timings.get("predicted_per_second"), usage.generation_tps)


def _int(value: Any, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(float(value), 3)
    return default
