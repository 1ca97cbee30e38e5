"""``Client``: the blocking client, one method per operation of the contract."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar, Unpack

import httpx

from llamactl.client import _calls as calls
from llamactl.client._activity_models import ActivityGroup, ActivityPage, QuotaUsage
from llamactl.client._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    POLL_INTERVAL,
    START_WAIT_TIMEOUT,
    STOP_WAIT_TIMEOUT,
    BaseClient,
    Call,
    TimeoutTypes,
    api_error,
    import_openai,
    not_in_time,
    openai_arguments,
    retry_delay,
    start_failed,
    transport_error,
    wait_timeout,
)
from llamactl.client._exceptions import APIError
from llamactl.client._exceptions import TimeoutError as ClientTimeoutError
from llamactl.client._library import LibraryMethods
from llamactl.client._models import (
    APIKey,
    BatchResult,
    ConfigUpdated,
    Health,
    ImportedCommand,
    Instance,
    InstanceChanges,
    InstanceFields,
    InstanceHistory,
    InstanceUpdated,
    KeyCreated,
    LogEntry,
    Model,
    OperationResult,
    SystemInfo,
    SystemStatus,
    Token,
)
from llamactl.client._pool_models import Pool
from llamactl.client._raw import RawResponses
from llamactl.client._streaming import LogStream

if TYPE_CHECKING:
    import openai

    from llamactl.client._events import EventStream

T = TypeVar("T")


class Client(BaseClient, LibraryMethods):
    """A blocking client for llamactl's REST API.

    >>> client = Client("http://localhost:8080")
    >>> instances = client.list_instances()

    ``token=`` is a JWT from a login (``client.login(...)`` gets and keeps one, and the client
    refreshes it before it expires); ``api_key=`` is an inference key for the ``/v1``
    gateway, used by ``openai()``. ``base_url`` and ``token`` default to ``$LLAMACTL_URL``
    and ``$LLAMACTL_TOKEN`` (else ``http://127.0.0.1:8080``, no token). Failed calls are
    retried ``max_retries`` times (429 always; a lost connection and 502/503/504 for
    idempotent methods), honouring ``Retry-After``; ``with_options(max_retries=...,
    timeout=...)`` overrides both for some calls. ``http_client=`` is a configured
    ``httpx.Client`` (proxies, TLS, event hooks); ``transport=`` replaces httpx's network
    transport (tests use ``httpx.MockTransport``). Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self, base_url: str | None = None, *, token: str | None = None,
        api_key: str | None = None, timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES, http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, token=token, api_key=api_key, timeout=timeout,
                         headers=headers, max_retries=max_retries)
        if http_client is not None:
            if transport is not None:
                raise ValueError("give transport= or http_client=, not both")
            http_client.headers.update(self._headers)
            self._http = http_client
        else:
            self._http = httpx.Client(timeout=self.timeout, transport=transport,
                                      headers=self._headers, verify=self._tls())
        self._refresh_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Client({self._repr_fields()})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.base_url) from None

    def _call(self, call: Call[T]) -> T:
        if call.authenticated and call.refresh_first:
            self._refresh_if_due()
        request = self._http.build_request(**self._request_args(call))
        return self._parse(call, self._send_retrying(call, request))

    def _send_retrying(self, call: Call[Any], request: httpx.Request) -> httpx.Response:
        """Send, and send again as ``retry_delay`` allows (the request's body is bytes by
        now, so it can be sent as many times as needed)."""
        attempt = 0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                delay = retry_delay(call, attempt, self.max_retries, None)
                if delay is None:
                    raise transport_error(exc, self.base_url) from None
            else:
                if not response.is_error:
                    return response
                delay = retry_delay(call, attempt, self.max_retries, response)
                if delay is None:
                    return response
                response.close()
            time.sleep(delay)
            attempt += 1

    @property
    def with_raw_response(self) -> RawResponses:
        """The same methods, each answering a ``RawResponse`` (``.headers``,
        ``.status_code``, ``.request_id``, ``.parse()``): ``client.with_raw_response
        .list_instances().headers["x-ratelimit-remaining"]``."""
        return RawResponses(self)

    def with_options(self, *, timeout: TimeoutTypes | None = None,
                     max_retries: int | None = None) -> Client:
        """This client with another timeout or retry count, for some calls:
        ``client.with_options(max_retries=0).get_instance("a")``. It shares the connection
        pool and the token; closing either closes both."""
        clone: Client = self._copy_with(timeout, max_retries)
        return clone

    def _refresh_if_due(self) -> None:
        if not self._tokens.refresh_due():
            return
        with self._refresh_lock:  # one refresh, however many threads notice at once
            if not self._tokens.refresh_due():
                return
            try:
                self.refresh_token()
            except APIError:
                self._tokens.stop_refreshing()

    def _open_stream(self, call: Call[Any]) -> httpx.Response:
        self._refresh_if_due()
        request = self._http.build_request(**self._request_args(call))
        response = self._send(request, stream=True)
        if response.is_error:
            response.read()
            response.close()
            raise api_error(response)
        return response

    def _wait_status(self, name: str, wanted: tuple[str, ...], seconds: float) -> Instance:
        deadline = time.monotonic() + seconds
        while True:
            instance = self.get_instance(name)
            if instance.status in wanted:
                return instance
            if time.monotonic() >= deadline:
                raise not_in_time(f"instance {name!r} was not {' or '.join(wanted)}", seconds)
            time.sleep(POLL_INTERVAL)

    # -- authentication ------------------------------------------------------------------

    def login(self, username: str, password: str) -> Token:
        """Log in; the client keeps the token and refreshes it before it expires."""
        return self._keep_token(self._call(calls.login(username, password)))

    def refresh_token(self) -> Token:
        """Exchange the current (still valid) token for a new one, and keep it."""
        return self._keep_token(self._call(calls.refresh()))

    # -- instances -----------------------------------------------------------------------

    def list_instances(self) -> list[Instance]:
        return self._call(calls.list_instances())

    def get_instance(self, name: str) -> Instance:
        return self._call(calls.get_instance(name))

    def create_instance(self, name: str, model_path: str | os.PathLike[str],
                        **fields: Unpack[InstanceFields]) -> Instance:
        """Create a stopped instance: ``create_instance("a", "/m.gguf", port=8081,
        options={"context_size": 2048})``. A relative ``model_path`` is made absolute against
        this process's working directory (the server refuses relative ones)."""
        return self._call(calls.create_instance(name, model_path, fields))

    def update_instance(self, name: str, *, restart: bool = False,
                        **changes: Unpack[InstanceChanges]) -> InstanceUpdated:
        """Change some fields; ``restart=True`` restarts a running instance to apply them."""
        return self._call(calls.update_instance(name, changes, restart))

    def delete_instance(self, name: str) -> None:
        self._call(calls.delete_instance(name))

    def start_instance(self, name: str, *, wait: bool = False,
                       timeout: float | None = None) -> OperationResult:
        """Start; with ``wait=True`` return once running, or raise ``StartFailedError`` with
        the backend's last log lines in ``details`` (``TimeoutError`` after ``timeout`` s)."""
        if not wait:
            return self._call(calls.start_instance(name, wait=False, timeout=None))
        seconds = START_WAIT_TIMEOUT if timeout is None else timeout
        call = calls.start_instance(name, wait=True,
                                    timeout=wait_timeout(self.timeout, seconds))
        try:
            return self._call(call)
        except ClientTimeoutError:
            raise not_in_time(f"instance {name!r} was not running", seconds) from None

    def stop_instance(self, name: str, *, force: bool = False, grace: float | None = None,
                      wait: bool = False, timeout: float | None = None) -> OperationResult:
        """Stop: SIGTERM, then SIGKILL after ``grace`` s (the server's ``stop_timeout`` when
        None), or SIGKILL at once with ``force``. ``wait=True`` returns once it is stopped,
        giving up after ``timeout`` s (as start and restart do; default ``grace`` + 30 s, at
        least 120 s)."""
        result = self._call(calls.stop_instance(name, force=force, grace=grace))
        if wait:
            bound = max(STOP_WAIT_TIMEOUT, (grace or 0) + 30) if timeout is None else timeout
            instance = self._wait_status(name, ("stopped", "failed"), bound)
            result = OperationResult(message="Instance stopped", status=instance.status)
        return result

    def restart_instance(self, name: str, *, wait: bool = False,
                         timeout: float | None = None) -> OperationResult:
        """Restart; ``wait=True`` returns once running again (or raises as a start would)."""
        result = self._call(calls.restart_instance(name))
        if wait:
            seconds = START_WAIT_TIMEOUT if timeout is None else timeout
            instance = self._wait_status(name, ("running", "failed"), seconds)
            if instance.status == "failed":
                raise start_failed(name, instance.last_error)
            result = OperationResult(message="Instance restarted", status=instance.status)
        return result

    def instance_health(self, name: str) -> Health:
        return self._call(calls.instance_health(name))

    def instance_history(self, name: str) -> InstanceHistory:
        """Memory and CPU over the last hour, one sample per stats event, oldest first."""
        return self._call(calls.instance_history(name))

    def instance_logs(self, name: str, *, lines: int = 100,
                      level: str | None = None) -> list[LogEntry]:
        """The last ``lines`` entries, oldest first; ``level`` is a minimum (warn = warn
        and error)."""
        return self._call(calls.instance_logs(name, lines=lines, level=level))

    def follow_logs(self, name: str, *, lines: int = 10,
                    level: str | None = None) -> LogStream:
        """The last ``lines`` entries, then each new one as it is written:
        ``with client.follow_logs("a") as logs: for entry in logs: ...``."""
        # No read timeout: a quiet instance may write nothing for hours.
        call = calls.follow_logs(name, lines=lines, level=level,
                                 timeout=wait_timeout(self.timeout, None))
        return LogStream(lambda: self._open_stream(call), what=name)

    def start_all(self) -> BatchResult:
        return self._call(calls.start_all())

    def stop_all(self) -> BatchResult:
        return self._call(calls.stop_all())

    # -- system and configuration --------------------------------------------------------

    def system_status(self) -> SystemStatus:
        return self._call(calls.system_status())

    def parse_command(self, command: str, backend: str = "llama_cpp") -> ImportedCommand:
        """Read a ``llama-server`` (``vllm serve``, ``mlx_lm.server``) command line as an
        instance: ``create_instance(name, **imported.instance.model_dump())`` creates it."""
        return self._call(calls.parse_command(backend, command))

    def system_info(self) -> SystemInfo:
        return self._call(calls.system_info())

    def get_config(self) -> dict[str, Any]:
        """The effective configuration, secrets shown as ``"***"``."""
        return self._call(calls.get_config())

    def update_config(self, changes: Mapping[str, Any]) -> ConfigUpdated:
        """Merge a partial document into the config file (admin); most changes need a
        restart of llamactl (``restart_required``)."""
        return self._call(calls.update_config(changes))

    # -- API keys and models --------------------------------------------------------------

    def list_pools(self) -> list[Pool]:
        """The replica pools, their members and the requests waiting for them."""
        return self._call(calls.list_pools())

    def list_keys(self) -> list[APIKey]:
        """The inference API keys of the /v1 gateway (admin)."""
        return self._call(calls.list_keys())

    def create_key(self, name: str, *, instances: Sequence[str] | None = None,
                   expires_at: datetime | None = None) -> KeyCreated:
        """A new inference API key (admin): ``created.key`` is shown this once. ``instances``
        limits it (None: every instance); ``expires_at`` (aware) ends it."""
        return self._call(calls.create_key(name, instances, expires_at))

    # -- activity (issue 30) ---------------------------------------------------------------

    def list_activity(self, *, instance: str | None = None, model: str | None = None,
                      user: str | None = None, key: str | None = None,
                      status: int | str | None = None, since: datetime | None = None,
                      until: datetime | None = None, limit: int | None = None,
                      before: str | None = None) -> ActivityPage:
        """One page of the requests on record, newest first; ``page.next`` as ``before``
        gives the next. ``status``: a code (429) or a class ("4xx")."""
        return self._call(calls.list_activity({
            "instance": instance, "model": model, "user": user, "key": key, "status": status,
            "since": since, "until": until, "limit": limit, "before": before}))

    def activity_summary(self, by: str = "key", *, since: datetime | None = None,
                         until: datetime | None = None) -> list[ActivityGroup]:
        """Requests, errors, tokens and speeds per key, user, instance or model."""
        return self._call(calls.activity_summary(by, {"since": since, "until": until}))

    def export_activity(self, out: IO[bytes], *, format: str = "jsonl",
                        **filters: Any) -> int:
        """Stream the records (the list's filters) into ``out`` as CSV or JSON Lines; the
        bytes written. Never the whole export in memory."""
        call = calls.export_activity(format, filters, wait_timeout(self.timeout, None))
        written = 0
        with contextlib.closing(self._open_stream(call)) as response:
            for chunk in response.iter_bytes():
                out.write(chunk)
                written += len(chunk)
        return written

    def key_usage(self, name: str) -> QuotaUsage:
        """A key's quotas: limits, what each window holds, and when each frees (admin)."""
        return self._call(calls.key_usage(name))

    def revoke_key(self, name: str) -> None:
        """Revoke a key by name (admin): the gateway refuses it from then on."""
        self._call(calls.revoke_key(name))

    def list_models(self) -> list[Model]:
        """``/v1/models``: the instances this client's API key (else token) may use."""
        return self._call(calls.list_models(self.api_key))

    # -- streams and helpers -------------------------------------------------------------

    def events(self, instances: Sequence[str] | None = None, *, reconnect: bool = True,
               max_backoff: float = 30.0) -> EventStream:
        """Events from ``/api/events`` as they happen (``InstanceStatusChanged``,
        ``InstanceStatsUpdated``, ``SystemAlert``), through this client's httpx client;
        ``instances`` keeps only their events (and alerts about no instance). Reconnects with
        exponential backoff (at most ``max_backoff`` s apart) when the connection drops:
        ``with client.events(["a"]) as events: for event in events: ...``."""
        from llamactl.client._events import EventStream, events_call

        call = events_call(instances, self.timeout)
        return EventStream(lambda: self._open_stream(call), self._refresh_if_due,
                           reconnect=reconnect, max_backoff=max_backoff, what=self.base_url)

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        """An ``openai.OpenAI`` client for llamactl's ``/v1`` gateway, with this client's API
        key (else its current token). Needs the ``openai`` package."""
        module = import_openai()
        client: openai.OpenAI = module.OpenAI(**openai_arguments(self, kwargs))
        return client
