"""The Origin and Host rules on their own (security/origin.py): the one function the ASGI
middleware and the /v1 gateway both ask."""

from __future__ import annotations

import pytest

from llamactl.security.origin import (
    Decisions,
    OriginPolicy,
    Refusal,
    RequestHead,
    decide,
    host_name,
)

LOOPBACK = OriginPolicy.build(loopback_listener=True, allowed_hosts=[], cors_origins=[])
EVIL = "http://evil.example"
OWN = "127.0.0.1:8080"


def head(method: str = "GET", path: str = "/api/instances", host: str | None = OWN,
         **headers: str | bool) -> RequestHead:
    return RequestHead("http", method, path, host, **headers)  # type: ignore[arg-type]


CASES = [
    # curl, the clients, the CLI: no Origin, no Sec-Fetch-*
    (head("POST"), None),
    (head(host=None), None),
    # a browser on llamactl's own pages
    (head("POST", origin="http://127.0.0.1:8080", fetch_site="same-origin"), None),
    (head("POST", origin="http://127.0.0.1:8080/"), None),
    (head("POST", fetch_site="none"), None),
    (head(host="localhost:8080", origin="http://localhost:8080"), None),
    (head(host="[::1]:8080", origin="http://[::1]:8080"), None),
    (head(host="localhost", origin="http://localhost:80"), None),
    # another site
    (head("POST", origin=EVIL), Refusal.FORBIDDEN_ORIGIN),
    (head("POST", origin="null"), Refusal.FORBIDDEN_ORIGIN),
    (head("POST", origin="https://127.0.0.1:8080"), Refusal.FORBIDDEN_ORIGIN),
    (head("POST", origin="http://127.0.0.1:9999"), Refusal.FORBIDDEN_ORIGIN),
    (head("POST", origin="http://localhost:8080"), Refusal.FORBIDDEN_ORIGIN),
    (head(fetch_site="cross-site"), Refusal.FORBIDDEN_ORIGIN),
    (head(fetch_site="same-site"), Refusal.FORBIDDEN_ORIGIN),
    (head(path="/api/ws", origin=EVIL, websocket=True), Refusal.FORBIDDEN_ORIGIN),
    (head(path="/v1/chat/completions", method="POST", origin=EVIL), Refusal.FORBIDDEN_ORIGIN),
    # following a link to a page is no cross-site request; to the API, or posting, it is
    (head(path="/docs", fetch_site="cross-site", fetch_mode="navigate"), None),
    (head(path="/", fetch_site="cross-site", fetch_mode="navigate"), None),
    (head(fetch_site="cross-site", fetch_mode="navigate"), Refusal.FORBIDDEN_ORIGIN),
    (head(path="/metrics", fetch_site="cross-site", fetch_mode="navigate"),
     Refusal.FORBIDDEN_ORIGIN),
    (head(path="/v1/models", fetch_site="cross-site", fetch_mode="navigate"),
     Refusal.FORBIDDEN_ORIGIN),
    (head("POST", path="/docs", origin=EVIL, fetch_site="cross-site", fetch_mode="navigate"),
     Refusal.FORBIDDEN_ORIGIN),
    # DNS rebinding: a foreign name, whatever else the request says
    (head(host="evil.example:8080"), Refusal.FORBIDDEN_HOST),
    (head(host="evil.example"), Refusal.FORBIDDEN_HOST),
    (head(host="evil.example:8080", origin="http://evil.example:8080"), Refusal.FORBIDDEN_HOST),
    (head(path="/docs", host="evil.example", fetch_mode="navigate"), Refusal.FORBIDDEN_HOST),
    (head(host="127.0.0.2:8080"), Refusal.FORBIDDEN_HOST),
]


@pytest.mark.parametrize(("request_head", "expected"), CASES)
def test_loopback_listener(request_head: RequestHead, expected: Refusal | None) -> None:
    assert decide(LOOPBACK, request_head) is expected


def test_cors_origins_are_allowed_origins() -> None:
    policy = OriginPolicy.build(loopback_listener=True, allowed_hosts=[],
                                cors_origins=["https://app.example/"])
    assert decide(policy, head("POST", origin="https://app.example")) is None
    assert decide(policy, head(origin="https://app.example", fetch_site="cross-site")) is None
    assert decide(policy, head("POST", origin=EVIL)) is Refusal.FORBIDDEN_ORIGIN
    anyone = OriginPolicy.build(loopback_listener=True, allowed_hosts=[], cors_origins=["*"])
    assert decide(anyone, head("POST", origin=EVIL)) is None


def test_allowed_hosts() -> None:
    lan = OriginPolicy.build(loopback_listener=True, allowed_hosts=["LLM.lan"], cors_origins=[])
    assert decide(lan, head(host="llm.lan:8080", origin="http://llm.lan:8080")) is None
    assert decide(lan, head(host="other.lan:8080")) is Refusal.FORBIDDEN_HOST
    # on other addresses: empty = any name; else the list (loopback names always pass)
    open_ = OriginPolicy.build(loopback_listener=False, allowed_hosts=[], cors_origins=[])
    assert decide(open_, head(host="anything.example:8080")) is None
    named = OriginPolicy.build(loopback_listener=False, allowed_hosts=["gpu1"], cors_origins=[])
    assert decide(named, head(host="gpu1:8080")) is None
    assert decide(named, head(host="127.0.0.1:8080")) is None
    assert decide(named, head(host="10.0.0.5:8080")) is Refusal.FORBIDDEN_HOST
    star = OriginPolicy.build(loopback_listener=True, allowed_hosts=["*"], cors_origins=[])
    assert decide(star, head(host="evil.example")) is None


@pytest.mark.parametrize(("host", "name"), [
    ("127.0.0.1:8080", "127.0.0.1"), ("LOCALHOST", "localhost"), ("[::1]:80", "[::1]"),
    ("[::1]", "[::1]"), ("example.com", "example.com"),
])
def test_host_name(host: str, name: str) -> None:
    assert host_name(host) == name


def test_parse_reads_the_first_of_each_header() -> None:
    parsed = RequestHead.parse("http", "GET", "/x", [
        (b"host", b"localhost:1"), (b"origin", EVIL.encode()), (b"origin", b"http://localhost:1"),
        (b"sec-fetch-site", b"cross-site"), (b"sec-fetch-mode", b"cors"),
    ])
    assert parsed == RequestHead("http", "GET", "/x", "localhost:1", EVIL, "cross-site", "cors")


def raw_headers(request_head: RequestHead) -> list[tuple[bytes, bytes]]:
    found = [(b"host", request_head.host), (b"origin", request_head.origin),
             (b"sec-fetch-site", request_head.fetch_site),
             (b"sec-fetch-mode", request_head.fetch_mode)]
    return [(b"user-agent", b"test")] + [(name, value.encode()) for name, value in found
                                         if value is not None]


def test_remembered_decisions_are_decide_s() -> None:
    """The gateway's per-kind memory (Decisions) answers as decide() does for every case,
    asked in turns so that a key missing a field (the path of a navigation, one header)
    would hand one case another's answer; a new policy is decided afresh."""
    decisions = Decisions()
    cases = [(h, expected) for h, expected in CASES if not h.websocket]
    for _ in range(2):
        for request_head, expected in cases:
            assert decisions.of(LOOPBACK, request_head.scheme, request_head.method,
                                request_head.path, raw_headers(request_head)) is expected
    twice = [(b"host", b"localhost:1"), (b"host", b"evil.example")]
    assert decisions.of(LOOPBACK, "http", "POST", "/v1/x", twice) is Refusal.DUPLICATE_HOST
    lan = OriginPolicy.build(loopback_listener=True, allowed_hosts=["llm.lan"], cors_origins=[])
    lan_head = [(b"host", b"llm.lan:8080")]
    assert decisions.of(LOOPBACK, "http", "POST", "/v1/x", lan_head) is Refusal.FORBIDDEN_HOST
    assert decisions.of(lan, "http", "POST", "/v1/x", lan_head) is None
