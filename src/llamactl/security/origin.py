"""Who may send a request at all: the Origin rule (cross-site requests, cross-site WebSocket
hijacking) and the Host rule (DNS rebinding), decided from a request's head alone.

A web page the user opens can make the browser send requests to llamactl: simple cross-site
``POST``s need no preflight, and a page whose name is rebound to 127.0.0.1 reads answers as
its own. Browsers say where a request comes from (``Origin``, ``Sec-Fetch-Site``) and what
name they think they talk to (``Host``); curl, the clients and the CLI send neither an
``Origin`` nor a ``Sec-Fetch-*`` header, so they are never refused by these rules.

``decide`` is pure: the ASGI middleware (api/request_guard.py) and the /v1 gateway
(gateway/exchange.py) both ask it, so every route follows the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

# The names a loopback listener answers to, whatever the port.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Requests a browser made for another site (or another port of this one: same-site).
_FOREIGN_SITES = frozenset({"cross-site", "same-site"})
# Paths whose top-level GET navigation is still refused: data, not web pages.
_API_PREFIXES = ("/api", "/v1", "/metrics")


class Refusal(Enum):
    FORBIDDEN_ORIGIN = "FORBIDDEN_ORIGIN"
    FORBIDDEN_HOST = "FORBIDDEN_HOST"
    # Two Host headers: which one names the site is anyone's guess (a proxy may route by one
    # and llamactl judge the other), so RFC 9112 (3.2) has the server answer 400.
    DUPLICATE_HOST = "VALIDATION_ERROR"

    @property
    def status(self) -> int:
        return 400 if self is Refusal.DUPLICATE_HOST else 403

    @property
    def message(self) -> str:
        if self is Refusal.FORBIDDEN_ORIGIN:
            return "Cross-site request refused"
        if self is Refusal.DUPLICATE_HOST:
            return "More than one Host header"
        return "Host not allowed"

    @property
    def details(self) -> str:
        if self is Refusal.FORBIDDEN_ORIGIN:
            return ("the request's Origin is neither llamactl's own nor in "
                    "server.cors_origins")
        if self is Refusal.DUPLICATE_HOST:
            return "a request carries exactly one Host header (RFC 9112, section 3.2)"
        return ("the request's Host is not a loopback name nor in server.allowed_hosts "
                "(DNS rebinding protection)")


@dataclass(frozen=True)
class RequestHead:
    """What the rules read of a request (header values as sent; None when absent)."""

    scheme: str  # "http" or "https" (a WebSocket's as its HTTP request's)
    method: str
    path: str
    host: str | None
    origin: str | None = None
    fetch_site: str | None = None
    fetch_mode: str | None = None
    websocket: bool = False
    hosts: int = 1  # how many Host headers came (more than one is refused)

    @classmethod
    def parse(cls, scheme: str, method: str, path: str, headers: Iterable[tuple[bytes, bytes]],
              *, websocket: bool = False) -> RequestHead:
        """From raw header pairs (lower-case names, as uvicorn and ASGI give them); the first
        of a repeated header counts."""
        found: dict[bytes, str] = {}
        hosts = 0
        for name, value in headers:
            if name == b"host":
                hosts += 1
            if name in _READ and name not in found:
                found[name] = value.decode("latin-1")
        return cls(scheme, method, path, found.get(b"host"), found.get(b"origin"),
                   found.get(b"sec-fetch-site"), found.get(b"sec-fetch-mode"), websocket,
                   hosts)


_READ = frozenset({b"host", b"origin", b"sec-fetch-site", b"sec-fetch-mode"})


@dataclass(frozen=True)
class OriginPolicy:
    """The settings behind the rules: ``server.host``, ``allowed_hosts``, ``cors_origins``."""

    loopback_listener: bool
    allowed_hosts: frozenset[str]  # lower case; "*" allows any
    cors_origins: frozenset[str]  # as configured; "*" allows any

    @classmethod
    def build(cls, *, loopback_listener: bool, allowed_hosts: list[str],
              cors_origins: list[str]) -> OriginPolicy:
        return cls(loopback_listener, frozenset(h.lower() for h in allowed_hosts),
                   frozenset(o.rstrip("/") for o in cors_origins))


def decide(policy: OriginPolicy, head: RequestHead) -> Refusal | None:
    """None when the request may go on; else why it is refused. Host first: a rebound name
    is refused whatever else the request says."""
    if head.hosts > 1:
        return Refusal.DUPLICATE_HOST
    if not host_allowed(policy, head.host):
        return Refusal.FORBIDDEN_HOST
    if _is_page_navigation(head):
        return None  # following a link to a page: the Host rule and the page's headers guard it
    if head.origin is not None:
        return None if _origin_allowed(policy, head) else Refusal.FORBIDDEN_ORIGIN
    if head.fetch_site is not None and head.fetch_site.lower() in _FOREIGN_SITES:
        return Refusal.FORBIDDEN_ORIGIN  # a browser's foreign request that named no origin
    return None


def host_allowed(policy: OriginPolicy, host: str | None) -> bool:
    if host is None:
        return True  # no browser sends a request without Host: nothing to rebind
    name = host_name(host)
    if name in LOOPBACK_NAMES or name in policy.allowed_hosts or "*" in policy.allowed_hosts:
        return True
    return not policy.loopback_listener and not policy.allowed_hosts


def host_name(host: str) -> str:
    """``Host`` without its port, lower case; IPv6 keeps its brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rpartition(":")[0] if ":" in host else host


def _origin_allowed(policy: OriginPolicy, head: RequestHead) -> bool:
    origin = head.origin.strip() if head.origin else ""
    if "*" in policy.cors_origins or origin.rstrip("/") in policy.cors_origins:
        return True
    own = _origin_tuple(f"{head.scheme}://{head.host}") if head.host else None
    return own is not None and _origin_tuple(origin) == own


def _origin_tuple(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, default ports made explicit; None if malformed
    (``null``, from sandboxed frames and files, is never anyone's own origin)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _is_page_navigation(head: RequestHead) -> bool:
    """A top-level GET navigation to a web page (a link to the dashboard or /docs): not a
    cross-site request to refuse. The API, other methods, WebSocket and streams are."""
    if head.websocket or head.method not in ("GET", "HEAD"):
        return False
    if (head.fetch_mode or "").lower() != "navigate":
        return False
    path = head.path
    return not any(path == p or path.startswith(p + "/") for p in _API_PREFIXES)


class Decisions:
    """``decide`` remembered by the header values it reads: a client sends the same Host,
    Origin and Sec-Fetch-* on each of its requests, so the gateway decides each kind once
    (the rules are pure: the same head and policy always get the same answer), not once a
    request. Bounded: forgotten whole past ``MAX`` kinds (a client inventing Hosts)."""

    MAX = 512

    def __init__(self) -> None:
        self._policy: OriginPolicy | None = None
        self._known: dict[tuple[object, ...], Refusal | None] = {}

    def of(self, policy: OriginPolicy, scheme: str, method: str, path: str,
           headers: list[tuple[bytes, bytes]]) -> Refusal | None:
        host = origin = site = mode = None
        hosts = 0
        for name, value in headers:  # the first of a repeated header counts, as in parse
            if name == b"host":
                hosts += 1
                if host is None:
                    host = value
            elif name == b"origin":
                origin = value if origin is None else origin
            elif name == b"sec-fetch-site":
                site = value if site is None else site
            elif name == b"sec-fetch-mode":
                mode = value if mode is None else mode
        # The path counts only for a navigation (_is_page_navigation), told by its mode.
        key = (scheme, method, host, origin, site, mode, hosts, path if mode else None)
        if policy is not self._policy or len(self._known) >= self.MAX:
            self._policy, self._known = policy, {}
        try:
            return self._known[key]
        except KeyError:
            refusal = self._known[key] = decide(policy, RequestHead.parse(scheme, method, path,
                                                                          headers))
            return refusal
