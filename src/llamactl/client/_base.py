"""What ``Client`` and ``AsyncClient`` share: URLs, the token and when to refresh it, how a
request is described (``Call``) and how an answer becomes a model or an exception.

Nothing here does I/O, so the two clients differ only in ``send`` versus ``await send``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
import pydantic

from llamactl._version import __version__
from llamactl.client._exceptions import APIConnectionError as ClientConnectionError
from llamactl.client._exceptions import (
    APIError,
    LlamactlError,
    ProtocolError,
    RateLimitError,
    StartFailedError,
    error_class,
)
from llamactl.client._exceptions import APITimeoutError as ClientTimeoutError
from llamactl.client._models import Token

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = httpx.Timeout(30.0)
USER_AGENT = f"llamactl-python/{__version__}"
# Read by Client() and AsyncClient() as by the command line, when not given as arguments.
URL_ENV = "LLAMACTL_URL"
TOKEN_ENV = "LLAMACTL_TOKEN"  # noqa: S105 - a variable's name, not a secret

# Retries as the openai SDK makes them: 2 by default, 0.5 s doubling up to 8 s, less up to a
# quarter at random (so that many clients refused at once do not come back at once); a
# Retry-After of up to a minute is honoured as said.
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIED_SERVER_STATUSES = frozenset({502, 503, 504})

# Refresh a token when less than 10 % of its lifetime or 5 minutes remain, whichever is more,
# but never in the first half of its life: a 4-second token would otherwise be refreshed
# before every single request.
REFRESH_FRACTION = 0.1
REFRESH_MARGIN = 300.0
# The server truncates iat and exp to whole seconds: a token can be up to 1 s shorter-lived
# than ``exp - iat`` says.
CLAIM_ROUNDING = 1.0

TimeoutTypes = float | httpx.Timeout | None


def normalize_base_url(url: str) -> str:
    """The server's root URL: accepts ``host:port``, a trailing slash, or the ``/api`` base
    the contract names (``http://host:8080/api``), since users copy either."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    url = url.rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def refresh_window(lifetime: float) -> float:
    """How long before expiry a token of this lifetime is refreshed."""
    return min(max(lifetime * REFRESH_FRACTION, REFRESH_MARGIN), lifetime / 2)


def _jwt_claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT (only the server can verify it; we only read the
    times), or {} when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class TokenState:
    """The current token and the monotonic moment it should be refreshed by.

    A token just received from login or refresh is timed on our own clock from its lifetime
    (``exp - iat``), so a server whose clock differs from ours does not matter. A token handed
    in by the caller has an unknown age: it is timed from ``exp`` against our wall clock.
    """

    def __init__(self, token: str | None = None) -> None:
        self.value: str | None = None
        self._deadline: float | None = None
        self._lifetime = 0.0
        if token is not None:
            self.set(token, fresh=False)

    def set(self, token: str | None, *, fresh: bool, expires_at: datetime | None = None) -> None:
        self.value, self._deadline, self._lifetime = token, None, 0.0
        if token is None:
            return
        claims = _jwt_claims(token)
        exp, iat = claims.get("exp"), claims.get("iat")
        now = time.monotonic()
        if isinstance(exp, int | float):
            remaining = float(exp) - time.time()
            if isinstance(iat, int | float):
                self._lifetime = float(exp) - float(iat)
                if fresh:
                    remaining = self._lifetime - CLAIM_ROUNDING
        elif expires_at is not None:
            remaining = (expires_at - datetime.now(UTC)).total_seconds()
        else:
            return  # not a JWT and no expiry given: nothing to time
        self._lifetime = self._lifetime or max(remaining, 0.0)
        self._deadline = now + remaining

    def refresh_due(self) -> bool:
        if self.value is None or self._deadline is None:
            return False
        return self._deadline - time.monotonic() < refresh_window(self._lifetime)

    def stop_refreshing(self) -> None:
        """The server would not refresh this token (an API key, a removed user...): let
        requests go on with it and report their own errors."""
        self._deadline = None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request to send and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str | int | float | bool] | None = None
    body: Any = None
    timeout: TimeoutTypes | None = None  # None: the client's
    authenticated: bool = True  # False for login: no token, no refresh first
    refresh_first: bool = True  # False for the refresh call itself
    extra_headers: Mapping[str, str] = field(default_factory=dict)


def retry_delay(call: Call[Any], attempt: int, max_retries: int,
                response: httpx.Response | None) -> float | None:
    """Seconds to wait before retrying ``call`` after its ``attempt``-th try (0-based), or None
    not to retry. ``response`` is None when the connection failed or timed out.

    429 is retried whatever the method (the server refused before doing anything); a lost
    connection and 502/503/504 only for idempotent methods, since a POST may have been done.
    """
    if attempt >= max_retries:
        return None
    if response is None or response.status_code in RETRIED_SERVER_STATUSES:
        if call.method not in IDEMPOTENT_METHODS:
            return None
    elif response.status_code != 429:
        return None
    if response is not None:
        said = _retry_after(response)
        if said is not None and 0 <= said <= MAX_RETRY_AFTER:
            return said
    backoff = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    return backoff * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not a secret


class BaseClient:
    """Configuration and the I/O-free half of every call."""

    def __init__(
        self, base_url: str | None = None, *, token: str | None = None,
        api_key: str | None = None, timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if base_url is None:
            base_url = os.environ.get(URL_ENV) or DEFAULT_URL
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if max_retries < 0:
            raise ValueError("max_retries cannot be negative")
        self._base_url = normalize_base_url(base_url)
        self._tokens = TokenState(token)
        self.api_key = api_key
        self.max_retries = max_retries
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                         **(headers or {})}
        # Where a with_raw_response copy records the answers it parses; None: not recorded.
        self._responses: list[httpx.Response] | None = None

    def _copy_with(self, timeout: TimeoutTypes | None, max_retries: int | None) -> Any:
        """A shallow copy sharing the connection pool and the token, for ``with_options``."""
        if max_retries is not None and max_retries < 0:
            raise ValueError("max_retries cannot be negative")
        clone = copy.copy(self)
        if timeout is not None:
            clone.timeout = (timeout if isinstance(timeout, httpx.Timeout)
                             else httpx.Timeout(timeout))
        if max_retries is not None:
            clone.max_retries = max_retries
        return clone

    def _tls(self) -> ssl.SSLContext | bool:
        """What httpx verifies TLS with. Over plain http this client never makes a TLS
        connection (it only sends relative requests to ``base_url``), yet httpx would load
        the whole CA bundle at construction (~20 ms of every command-line call): a bare
        context trusting nothing stands in, refusing every certificate were it ever used."""
        if self._base_url.startswith("https:"):
            return True
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    @property
    def base_url(self) -> str:
        """The server's root URL (the API is under ``/api``)."""
        return self._base_url

    @property
    def token(self) -> str | None:
        """The JWT sent with each request; login and refresh replace it."""
        return self._tokens.value

    @token.setter
    def token(self, value: str | None) -> None:
        self._tokens.set(value, fresh=False)

    def _keep_token(self, token: Token) -> Token:
        """Parser tail for login and refresh: remember the new token, hand it back."""
        self._tokens.set(token.token, fresh=True, expires_at=token.expires_at)
        return token

    def _auth_headers(self) -> dict[str, str]:
        token = self._tokens.value
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _request_args(self, call: Call[Any]) -> dict[str, Any]:
        headers = dict(call.extra_headers)
        if call.authenticated:
            headers.update(self._auth_headers())
        # Absolute: an ``http_client=`` given by the caller has no base_url of ours.
        args: dict[str, Any] = {"method": call.method, "url": f"{self._base_url}{call.path}",
                                "headers": headers}
        if call.params:
            args["params"] = {k: _query_value(v) for k, v in call.params.items()}
        if call.body is not None:
            args["json"] = call.body
        args["timeout"] = call.timeout if call.timeout is not None else self.timeout
        return args

    def _parse(self, call: Call[T], response: httpx.Response) -> T:
        if self._responses is not None:
            self._responses.append(response)
        if response.is_error:
            raise api_error(response)
        try:
            body = response.json() if response.content else None
            return call.parse(body)
        except (ValueError, KeyError, TypeError, pydantic.ValidationError) as exc:
            raise ProtocolError(
                f"{call.method} {call.path}: unexpected answer ({type(exc).__name__}): "
                f"{response.text[:200]!r}"
            ) from None

    def _repr_fields(self) -> str:
        return f"{self._base_url!r}, authenticated={self._tokens.value is not None}"


def _query_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def api_error(response: httpx.Response) -> APIError:
    """The exception for an error answer; tolerant of bodies that are not the contract's
    (a proxy in front of llamactl may answer 502 in HTML)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        message, code, details = str(body.get("error", "")), body["code"], body.get("details")
    elif isinstance(envelope, dict) and isinstance(envelope.get("message"), str):
        # /v1 answers in OpenAI's envelope: {"error": {"message", "type", "code"}}
        code = envelope.get("code") or envelope.get("type") or f"HTTP_{status}"
        message, details = envelope["message"], None
    else:
        message = f"HTTP {status} {response.reason_phrase}".strip()
        code, details = f"HTTP_{status}", response.text[:500] or None
    cls = error_class(status, code)
    if cls is RateLimitError:
        return RateLimitError(message, status_code=status, code=code, details=details,
                              response=response, retry_after=_retry_after(response))
    return cls(message, status_code=status, code=code, details=details, response=response)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough not to parse


def transport_error(exc: httpx.TransportError, base_url: str) -> LlamactlError:
    """httpx's failure, as ours: the caller should not need httpx to catch it."""
    if isinstance(exc, httpx.TimeoutException):
        return ClientTimeoutError(f"llamactl at {base_url} did not answer in time ({exc})")
    return ClientConnectionError(f"cannot reach llamactl at {base_url}: {exc}")


# How long ``wait=True`` waits when not told: the server has its own load stall timeout, so
# this only bounds a server that never answers.
START_WAIT_TIMEOUT = 600.0
STOP_WAIT_TIMEOUT = 120.0
POLL_INTERVAL = 0.25


def wait_timeout(base: httpx.Timeout, seconds: float | None) -> httpx.Timeout:
    """The client's timeouts with the read timeout stretched for a long server-side wait
    (None: no read timeout at all, for streams)."""
    return httpx.Timeout(connect=base.connect, read=seconds, write=base.write, pool=base.pool)


def start_failed(name: str, last_error: str | None) -> StartFailedError:
    """What a start or restart that ended in ``failed`` raises, as the server's own
    ``?wait=true`` would."""
    return StartFailedError(f"Instance '{name}' failed to start", status_code=502,
                            code="START_FAILED", details=last_error)


def not_in_time(what: str, seconds: float) -> ClientTimeoutError:
    return ClientTimeoutError(f"{what} within {seconds:g} s")


def openai_arguments(client: BaseClient, overrides: dict[str, Any]) -> dict[str, Any]:
    """Arguments for ``openai.OpenAI``: the gateway under ``/v1`` and our key.

    Without an API key or a token a placeholder is sent rather than nothing: the openai
    package would otherwise pick up OPENAI_API_KEY from the environment and send the user's
    OpenAI secret to llamactl.
    """
    key = client.api_key or client.token or "llamactl-no-auth"
    return {"base_url": f"{client.base_url}/v1", "api_key": key, **overrides}


def import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise ImportError(
            "client.openai() needs the openai package: pip install 'llamactl-client[openai]' "
            "(or pip install openai)"
        ) from None
    return openai
