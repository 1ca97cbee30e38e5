"""llamactl's own Prometheus metrics.

Each app has its own ``CollectorRegistry``: the tests build many apps in one process, and the
global default registry would refuse the second app's metrics as duplicates. The object is
also the owners' ``SupervisorMetrics`` (launches, crashes, readiness) and what the rate
limiter and the WebSocket feed report to.

    llamactl_info{version}                         1
    llamactl_instances{status}                     instances by status (all six, zeros too)
    llamactl_instance_starts_total{instance}       backend processes launched
    llamactl_instance_crashes_total{instance}      crashes of running instances
    llamactl_instance_restarts_total{instance}     automatic restarts after a crash
    llamactl_instance_start_duration_seconds       launch to running (histogram)
    llamactl_http_requests_total{method,route,status}
    llamactl_gateway_requests_total{instance,status}   /v1 answers ("" instance: none chosen)
    llamactl_gateway_requests_in_flight{instance}      /v1 requests holding a lease
    llamactl_gateway_requests_waiting{instance}        /v1 requests waiting for a start or room
    llamactl_websocket_clients                     connected /api/ws clients
    llamactl_websocket_dropped_total               clients dropped for reading too slowly
    llamactl_rate_limited_requests_total           requests refused with 429
    llamactl_tokens_total{instance,principal,type}    tokens on record (prompt, completion)
    llamactl_request_ttft_seconds{instance}           arrival to first byte (histogram)
    llamactl_request_duration_seconds{instance}       arrival to the answer's end (histogram)
    llamactl_activity_dropped_total                records a burst made the ledger drop
    llamactl_pool_members{pool,status}             replica pools' members by status
    llamactl_pool_waiting_requests{pool}           requests waiting for a member's free slot
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from llamactl.activity.record import Record
from llamactl.instances.models import STATUSES

# Model loads take from under a second (tiny models) to minutes (big ones from slow disks).
START_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# A first token from milliseconds (a warm tiny model) to minutes (an on-demand start).
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _InstancesByStatus:
    """A collector that counts the instances when scraped, so the gauge is never stale."""

    def __init__(self) -> None:
        self.statuses: Callable[[], Iterable[str]] = lambda: ()

    def collect(self) -> Iterator[Metric]:
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for status in self.statuses():
            counts[status] = counts.get(status, 0) + 1
        family = GaugeMetricFamily("llamactl_instances", "Instances by status",
                                   labels=["status"])
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family


class _Gateway:
    """The gateway's counts, kept by the gateway as plain numbers (a Prometheus counter's
    labels() lookup per request would cost more than the rest of the bookkeeping) and turned
    into families when scraped."""

    def __init__(self) -> None:
        self.answered: Callable[[], dict[tuple[str, int], int]] = dict
        self.in_flight: Callable[[], Iterable[tuple[str, int]]] = lambda: ()
        self.waiting: Callable[[], dict[str, int]] = dict

    def collect(self) -> Iterator[Metric]:
        answered = CounterMetricFamily("llamactl_gateway_requests",
                                       "/v1 requests answered, by instance and status",
                                       labels=["instance", "status"])
        for (instance, status), count in sorted(self.answered().items()):
            answered.add_metric([instance, str(status)], count)
        yield answered
        in_flight = GaugeMetricFamily("llamactl_gateway_requests_in_flight",
                                      "/v1 requests being answered, by instance",
                                      labels=["instance"])
        for instance, count in self.in_flight():
            in_flight.add_metric([instance], count)
        yield in_flight
        waiting = GaugeMetricFamily(
            "llamactl_gateway_requests_waiting",
            "/v1 requests waiting for their instance: its start, or room to start it",
            labels=["instance"])
        for instance, count in sorted(self.waiting().items()):
            waiting.add_metric([instance], count)
        yield waiting


# (pool, requests waiting, its members' statuses), for each pool
PoolCounts = tuple[str, int, list[str]]


class _Pools:
    """Issue 32: the replica pools, counted when scraped."""

    def __init__(self) -> None:
        self.pools: Callable[[], Iterable[PoolCounts]] = lambda: ()

    def collect(self) -> Iterator[Metric]:
        members = GaugeMetricFamily("llamactl_pool_members",
                                    "Replica pools' members, by status", labels=["pool", "status"])
        waiting = GaugeMetricFamily("llamactl_pool_waiting_requests",
                                    "/v1 requests waiting for a pool member's free slot",
                                    labels=["pool"])
        for pool, queued, statuses in self.pools():
            for status in STATUSES:
                members.add_metric([pool, status], statuses.count(status))
            waiting.add_metric([pool], queued)
        yield members
        yield waiting


class LlamactlMetrics:
    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        Gauge("llamactl_info", "llamactl's version", ["version"],
              registry=registry).labels(version).set(1)
        self._instances = _InstancesByStatus()
        registry.register(self._instances)
        self._gateway = _Gateway()
        registry.register(self._gateway)
        self._pools = _Pools()
        registry.register(self._pools)
        self._starts = Counter("llamactl_instance_starts", "Backend processes launched",
                               ["instance"], registry=registry)
        self._crashes = Counter("llamactl_instance_crashes", "Crashes of running instances",
                                ["instance"], registry=registry)
        self._restarts = Counter("llamactl_instance_restarts",
                                 "Automatic restarts after a crash", ["instance"],
                                 registry=registry)
        self._start_duration = Histogram(
            "llamactl_instance_start_duration_seconds",
            "Seconds from launching a backend to its first healthy answer",
            buckets=START_BUCKETS, registry=registry)
        self._http = Counter("llamactl_http_requests", "HTTP requests by route template",
                             ["method", "route", "status"], registry=registry)
        self._ws_clients = Gauge("llamactl_websocket_clients", "Connected /api/ws clients",
                                 registry=registry)
        self._ws_dropped = Counter("llamactl_websocket_dropped",
                                   "WebSocket clients dropped for reading events too slowly",
                                   registry=registry)
        self._rate_limited = Counter("llamactl_rate_limited_requests",
                                     "Requests refused by the rate limiter (429)",
                                     registry=registry)
        self._activity(registry)

    def _activity(self, registry: CollectorRegistry) -> None:
        """Issue 30: what the requests on record add up to."""
        self._tokens = Counter("llamactl_tokens", "Tokens of the requests on record",
                               ["instance", "principal", "type"], registry=registry)
        self._ttft = Histogram("llamactl_request_ttft_seconds",
                               "Seconds from a request's arrival to its answer's first byte",
                               ["instance"], buckets=REQUEST_BUCKETS, registry=registry)
        self._duration = Histogram("llamactl_request_duration_seconds",
                                   "Seconds from a request's arrival to its answer's end",
                                   ["instance"], buckets=REQUEST_BUCKETS, registry=registry)
        self._token_series: dict[tuple[str, str, str | None], tuple[Any, Any]] = {}
        self._timing_series: dict[str, tuple[Any, Any]] = {}
        self._dropped = Counter("llamactl_activity_dropped",
                                "Activity records dropped: a burst the database could not take",
                                registry=registry)

    def request_completed(self, record: Record) -> None:
        """A request's record (the ledger's observer, on the event loop, for every request:
        the labelled series are looked up once, not by ``labels()`` each time)."""
        instance = record.instance or ""
        usage = record.usage
        if usage.prompt_tokens or usage.completion_tokens:
            who = (instance, record.principal_kind, record.principal_name)
            tokens = self._token_series.get(who)
            if tokens is None:
                principal = f"{record.principal_kind}:{record.principal_name or ''}"
                tokens = self._token_series[who] = (
                    self._tokens.labels(instance, principal, "prompt"),
                    self._tokens.labels(instance, principal, "completion"))
            if usage.prompt_tokens:
                tokens[0].inc(usage.prompt_tokens)
            if usage.completion_tokens:
                tokens[1].inc(usage.completion_tokens)
        timing = self._timing_series.get(instance)
        if timing is None:
            timing = self._timing_series[instance] = (self._ttft.labels(instance),
                                                      self._duration.labels(instance))
        if record.ttft_ms is not None:
            timing[0].observe(record.ttft_ms / 1000)
        if record.duration_ms is not None:
            timing[1].observe(record.duration_ms / 1000)

    def activity_dropped(self) -> None:
        self._dropped.inc()

    def track_instances(self, statuses: Callable[[], Iterable[str]]) -> None:
        """Where the instances gauge reads the current statuses from, at each scrape."""
        self._instances.statuses = statuses

    def track_gateway(self, answered: Callable[[], dict[tuple[str, int], int]],
                      in_flight: Callable[[], Iterable[tuple[str, int]]],
                      waiting: Callable[[], dict[str, int]] = dict) -> None:
        """Where the gateway metrics are read from, at each scrape."""
        self._gateway.answered = answered
        self._gateway.in_flight = in_flight
        self._gateway.waiting = waiting

    def track_pools(self, pools: Callable[[], Iterable[PoolCounts]]) -> None:
        """Where the pools' metrics are read from, at each scrape."""
        self._pools.pools = pools

    def render(self) -> bytes:
        """The registry in Prometheus' text format (0.0.4)."""
        return generate_latest(self.registry)

    # ---- SupervisorMetrics ----

    def launched(self, name: str, *, retry: bool) -> None:
        self._starts.labels(name).inc()
        if retry:
            self._restarts.labels(name).inc()

    def crashed(self, name: str) -> None:
        self._crashes.labels(name).inc()

    def ready(self, name: str, launched_at: datetime | None) -> None:
        if launched_at is not None:
            seconds = (datetime.now(UTC) - launched_at).total_seconds()
            self._start_duration.observe(max(0.0, seconds))

    # ---- the web layer ----

    def http_request(self, method: str, route: str, status: int) -> None:
        self._http.labels(method, route, str(status)).inc()

    def websocket_opened(self) -> None:
        self._ws_clients.inc()

    def websocket_closed(self) -> None:
        self._ws_clients.dec()

    def websocket_dropped(self) -> None:
        self._ws_dropped.inc()

    def record_rate_limited(self) -> None:
        self._rate_limited.inc()
