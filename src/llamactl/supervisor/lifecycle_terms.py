"""The words of an instance's lifecycle: its state, the messages it takes, the effects it asks for.

``supervisor/lifecycle.py`` decides (a pure function from a state and a message to the next
state and a list of effects); ``supervisor/owner.py`` carries the effects out. Everything here
is plain frozen data: no I/O, no clock, no asyncio, so the decision can be tested on its own
and rendered as the lifecycle's documentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llamactl.instances.models import Status

# What the exit of a process killed on purpose means: a failed start, a crash, or a start
# whose node has no such model file (a Ray node: MODEL_NOT_FOUND).
Outcome = Literal["fail", "crash", "model"]
TimerKind = Literal["kill", "restart", "idle"]
Level = Literal["debug", "info", "warn", "error"]
RefusalKind = Literal["already_running", "not_running", "stopping", "busy", "running"]


@dataclass(frozen=True)
class Policy:
    """An instance's lifecycle settings, the config's defaults filled in."""

    auto_restart: bool = True
    max_restarts: int = 3
    restart_delay: float = 5.0  # seconds, doubled after each crash restart
    stop_timeout: float = 30.0  # seconds from SIGTERM to SIGKILL
    idle_minutes: float = 0.0  # 0 = never stop for idleness


@dataclass(frozen=True)
class State:
    name: str = "instance"
    status: Status = "stopped"
    process: bool = False  # a backend process of ours exists (spawned or adopted, not reaped)
    restart_count: int = 0
    last_error: str | None = None
    # Set when we SIGKILL a process for a failed load or failed health checks: its exit is
    # then a failed start or a crash, not a stop.
    after_kill: tuple[Outcome, str] | None = None
    restart_after_stop: bool = False  # a restart is stopping the process: start it again
    retrying: bool = False  # the current launch is an automatic restart after a crash
    closing: bool = False  # llamactl is shutting down and stopping this instance
    closed: bool = False  # the owner ends: shut down or deleted
    timer: Literal["kill", "restart"] | None = None  # the kill timer or the restart backoff
    idle_armed: bool = False
    policy: Policy = Policy()


# ---- messages: requests from the API, notices from the owner's watchers and timers ----

@dataclass(frozen=True)
class Start:
    wait: bool = False  # the caller waits until running (start?wait=true)


@dataclass(frozen=True)
class Stop:
    force: bool = False
    timeout: float | None = None  # the grace period; None = the policy's stop_timeout
    if_idle: bool = False  # an eviction: refused while requests are in flight
    inflight: int = 0  # requests in flight now


@dataclass(frozen=True)
class Acquire:
    """A lease for a request: now if running, when ready if starting, else refused."""


@dataclass(frozen=True)
class Restart:
    pass


@dataclass(frozen=True)
class Delete:
    pass


@dataclass(frozen=True)
class Update:
    restart: bool = False  # restart now to apply it


@dataclass(frozen=True)
class Shutdown:
    stop: bool = True  # False: leave the process running for the next llamactl to adopt


@dataclass(frozen=True)
class Boot:
    """llamactl started and found this instance in the store."""

    recorded_pid: bool = False


@dataclass(frozen=True)
class Launched:
    pid: int | None  # None: on a Ray node, being placed (Placed follows)


@dataclass(frozen=True)
class Placed:
    """The backend runs on a Ray node now."""

    pid: int | None
    node: str


@dataclass(frozen=True)
class LaunchFailed:
    reason: str


@dataclass(frozen=True)
class Adopted:
    pid: int | None


@dataclass(frozen=True)
class AdoptFailed:
    pid: int | None


@dataclass(frozen=True)
class Exited:
    pid: int | None
    what: str  # "exited with code 1", "was killed by SIGKILL", ...
    cause: str | None = None  # the backend's first error since it started, if any


@dataclass(frozen=True)
class Ready:
    inflight: int = 0


@dataclass(frozen=True)
class LoadFailed:
    reason: str
    model_missing: bool = False  # the node had no such model file


@dataclass(frozen=True)
class Unhealthy:
    reason: str


@dataclass(frozen=True)
class KillTimer:
    pass


@dataclass(frozen=True)
class RestartTimer:
    pass


@dataclass(frozen=True)
class Stable:
    """Running without trouble for a while: crash restarts are counted afresh."""


@dataclass(frozen=True)
class IdleTimer:
    inflight: int = 0
    idle_for: float = 0.0  # seconds since the last request ended


@dataclass(frozen=True)
class Idle:
    """The last request in flight ended."""


@dataclass(frozen=True)
class PullEnded:
    """The pull of the instance's model ended (issue 33); ``error``: why it is not there."""

    error: str | None = None


Message = (Start | Stop | Acquire | Restart | Delete | Update | Shutdown | Boot | Launched
           | Placed | LaunchFailed | Adopted | AdoptFailed | Exited | Ready | LoadFailed | Unhealthy
           | KillTimer | RestartTimer | Stable | IdleTimer | Idle | PullEnded)


# ---- effects: what the runner does, in order ----

@dataclass(frozen=True)
class Launch:
    """Spawn the backend; the runner answers with Launched or LaunchFailed."""

    retry: bool


@dataclass(frozen=True)
class TryAdopt:
    """Take back the recorded process; the runner answers with Adopted or AdoptFailed."""


@dataclass(frozen=True)
class Signal:
    signal: Literal["SIGTERM", "SIGKILL"]
    level: Level
    text: str  # for the instance's log; "{pid}" is replaced by the process id
    grace: float = 0.0  # SIGTERM: the seconds until SIGKILL (a container's stop is given it)


@dataclass(frozen=True)
class ArmTimer:
    kind: TimerKind
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True)
class WatchExit:
    pass


@dataclass(frozen=True)
class WatchReadiness:
    pass


@dataclass(frozen=True)
class WatchLiveness:
    pass


@dataclass(frozen=True)
class CancelWatchers:
    pass


@dataclass(frozen=True)
class SetStatus:
    """Record the status, save it, publish the change (and wake stop waiters, capacity)."""

    status: Status


@dataclass(frozen=True)
class Persist:
    pass


@dataclass(frozen=True)
class Log:
    level: Level
    text: str


@dataclass(frozen=True)
class Alert:
    level: Literal["info", "warning", "error"]
    text: str


@dataclass(frozen=True)
class Count:
    """A metric: a launch (retry or not), a crash, a start that became ready."""

    what: Literal["launched", "relaunched", "crashed", "ready"]


@dataclass(frozen=True)
class SampleStats:
    pass


@dataclass(frozen=True)
class WaitReady:
    """Keep the request's waiter until the start ends: a lease (Acquire) or nothing (Start)."""

    lease: bool


@dataclass(frozen=True)
class ResolveWaiters:
    """The start succeeded: answer every waiter (with a lease where one was asked for)."""


@dataclass(frozen=True)
class FailWaiters:
    """The start ended without running: every waiter gets START_FAILED with this message
    (and the log's last lines when ``log_tail``)."""

    message: str
    log_tail: bool
    model_missing: bool = False  # MODEL_NOT_FOUND rather than START_FAILED


@dataclass(frozen=True)
class GrantLease:
    pass


@dataclass(frozen=True)
class CapacityChanged:
    pass


@dataclass(frozen=True)
class DeleteLogs:
    pass


@dataclass(frozen=True)
class Close:
    """The owner ends after this message."""


@dataclass(frozen=True)
class Answer:
    value: bool


@dataclass(frozen=True)
class Refuse:
    """The request is refused, nothing changes: the runner raises the matching error."""

    kind: RefusalKind
    message: str


Effect = (Launch | TryAdopt | Signal | ArmTimer | CancelTimer | WatchExit | WatchReadiness
          | WatchLiveness | CancelWatchers | SetStatus | Persist | Log | Alert | Count
          | SampleStats | WaitReady | ResolveWaiters | FailWaiters | GrantLease
          | CapacityChanged | DeleteLogs | Close | Answer | Refuse)
