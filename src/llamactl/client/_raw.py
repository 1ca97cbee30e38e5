"""``client.with_raw_response``: the same methods, answering the HTTP response with the value,
for headers a model does not hold (``X-RateLimit-Remaining``, ``X-Request-ID``) on success.

Each call runs on a shallow copy of the client that records the responses it receives, so
concurrent calls (threads, tasks) never see each other's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

if TYPE_CHECKING:
    from llamactl.client._base import BaseClient

T = TypeVar("T")


@dataclass(frozen=True)
class RawResponse(Generic[T]):
    """What a ``with_raw_response`` call answers: the parsed value and the last HTTP
    response of the call (the one it was parsed from)."""

    http_response: httpx.Response
    value: T

    @property
    def headers(self) -> httpx.Headers:
        """Case-insensitive: ``raw.headers["x-ratelimit-remaining"]``."""
        return self.http_response.headers

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def request_id(self) -> str | None:
        request_id: str | None = self.http_response.headers.get("x-request-id")
        return request_id

    def parse(self) -> T:
        """The value, as the openai SDK's ``parse()`` gives it."""
        return self.value


def _recording_copy(client: BaseClient) -> Any:
    clone = client._copy_with(None, None)
    clone._responses = []
    return clone


class RawResponses:
    """``client.with_raw_response.get_instance("a")`` -> ``RawResponse[Instance]``."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., RawResponse[Any]]:
        if name.startswith("_") or not callable(getattr(self._client, name, None)):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            clone = _recording_copy(self._client)
            value = getattr(clone, name)(*args, **kwargs)
            return RawResponse(_last(clone, name), value)

        return call


class AsyncRawResponses:
    """``await client.with_raw_response.get_instance("a")`` -> ``RawResponse[Instance]``."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Awaitable[RawResponse[Any]]]:
        if name.startswith("_") or not callable(getattr(self._client, name, None)):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            clone = _recording_copy(self._client)
            value = await getattr(clone, name)(*args, **kwargs)
            return RawResponse(_last(clone, name), value)

        return call


def _last(clone: Any, name: str) -> httpx.Response:
    responses: list[httpx.Response] = clone._responses
    if not responses:
        raise TypeError(f"{name}() makes no plain request: it has no raw response")
    return responses[-1]
