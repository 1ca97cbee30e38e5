"""``RayHost``: a ``ProcessHost`` whose backends run on the nodes of a Ray cluster.

Each start creates a detached, named actor (cluster/actor.py) that asks Ray for the instance's
resources; Ray picks the node. The actor's name starts with the instance's name, so a
restarted llamactl finds it again (adoption). When the actor's worker or node dies, the
backend dies too (cluster/shim.py) and the pending ``wait`` fails: the owner sees an exit and
counts a crash, and its restart is placed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from llamactl.backends.base import MemoryEstimate
from llamactl.config import ClusterConfig
from llamactl.supervisor.host import BackendProcess, PlacementError, SpawnRequest
from llamactl.supervisor.process import SpawnError

log = logging.getLogger(__name__)

ACTOR_PREFIX = "instance/"
ACTOR_THREADS = 4  # wait, signal, stats and info may all be pending at once
INFO_TIMEOUT_SECONDS = 10.0


def actor_name(instance: str) -> str:
    return f"{ACTOR_PREFIX}{instance}/{uuid.uuid4().hex[:8]}"


def actor_options(resources: dict[str, float], name: str, namespace: str) -> dict[str, Any]:
    """Ray's options for the actor: CPU, GPU and memory have their own keywords."""
    options: dict[str, Any] = {
        "name": name, "namespace": namespace, "lifetime": "detached", "max_restarts": 0,
        "max_concurrency": ACTOR_THREADS, "num_cpus": 0,
    }
    custom: dict[str, float] = {}
    for key, amount in resources.items():
        if key == "CPU":
            options["num_cpus"] = amount
        elif key == "GPU":
            options["num_gpus"] = amount
        elif key == "memory":
            options["memory"] = amount
        else:
            custom[key] = amount
    if custom:
        options["resources"] = custom
    return options


def placement_resources(resources: Mapping[str, float], memory: MemoryEstimate | None,
                        vram_declared: bool) -> dict[str, float]:
    """The instance's resources plus its memory estimate: RAM as Ray's ``memory``, VRAM as a
    ``vram`` custom resource when nodes declare one (Ray knows no GPU memory of its own).
    What the instance names itself wins."""
    out = dict(resources)
    if memory is not None and memory.ram and "memory" not in out:
        out["memory"] = float(memory.ram)
    if vram_declared and memory is not None and memory.vram and "vram" not in out:
        out["vram"] = float(memory.vram)
    return out


class RayProcess:
    """One instance's actor, seen as a ``BackendProcess``."""

    def __init__(self, ray: Any, actor: Any, *, start: Any = None,
                 info: dict[str, Any] | None = None,
                 resources: Mapping[str, float] | None = None):
        self._ray = ray
        self._actor = actor
        self._start = start  # the pending start call, until placed
        self._info = info or {}
        self.resources: Mapping[str, float] = dict(resources or {})

    @property
    def pid(self) -> int | None:
        pid = self._info.get("pid")
        return int(pid) if pid is not None else None

    @property
    def start_time(self) -> float:
        return float(self._info.get("start_time", 0.0))

    @property
    def command(self) -> list[str]:
        return list(self._info.get("command", []))

    @property
    def node(self) -> dict[str, str] | None:
        node = self._info.get("node")
        return dict(node) if node else None

    @property
    def address(self) -> str:
        node = self.node
        return node["address"] if node else "127.0.0.1"

    async def placed(self) -> None:
        if self._info or self._start is None:
            return
        try:
            self._info = await self._start
        except FileNotFoundError as exc:
            raise PlacementError(str(getattr(exc, "cause", exc)), model_missing=True) from None
        except self._ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            raise PlacementError(f"cannot start on its node: {cause or exc}") from None

    async def wait(self) -> int | None:
        try:
            code: int | None = await self._actor.wait.remote()
        except asyncio.CancelledError:
            raise  # llamactl is going away: the actor stays, for the next one to adopt
        except self._ray.exceptions.RayError:
            code = None  # the actor died with its worker or node: so did the backend
        self.kill_actor()
        return code

    def signal_group(self, signum: signal.Signals, grace: float = 0.0) -> None:
        if self.pid is None and signum == signal.SIGKILL:
            self.kill_actor()  # not placed (or not yet): nothing runs but the actor
            return
        self._actor.signal.remote(int(signum))

    def kill_actor(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.kill(self._actor, no_restart=True)

    async def node_stats(self) -> dict[str, float] | None:
        if self.pid is None:
            return None
        result: dict[str, float] = await self._actor.stats.remote()
        return result


@contextlib.contextmanager
def _keep_signal_handlers() -> Iterator[None]:
    """ray.init replaces SIGTERM's handler with one that exits at once (status 15): keep
    uvicorn's, which shuts llamactl down gracefully."""
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in kept.items():
                if handler is not None:  # None: set outside Python, left as it is
                    signal.signal(signum, handler)


class RayHost:
    """Connects to the Ray cluster at construction (``ray.init``)."""

    local = False

    def __init__(self, config: ClusterConfig):
        ray: Any = importlib.import_module("ray")  # Ray's API is untyped: held as Any

        self._ray = ray
        self._config = config
        with _keep_signal_handlers():
            ray.init(address=config.address or "auto", namespace=config.namespace,
                     log_to_driver=False, configure_logging=False, ignore_reinit_error=True)
        from llamactl.cluster.actor import BackendActor

        self._actor_class: Any = ray.remote(BackendActor)
        self._adopted: set[str] = set()  # names of the actors adopted at boot

    def spawn(self, request: SpawnRequest) -> BackendProcess:
        resources = placement_resources(request.resources, request.memory,
                                        "vram" in self._ray.cluster_resources())
        options = actor_options(resources, actor_name(request.name), self._config.namespace)
        spread_to = self._node_besides(request.avoid_nodes)
        if spread_to is not None:  # soft: a node that cannot take it is passed over
            strategies: Any = importlib.import_module("ray.util.scheduling_strategies")
            options["scheduling_strategy"] = strategies.NodeAffinitySchedulingStrategy(
                node_id=spread_to, soft=True)
        try:
            actor = self._actor_class.options(**options).remote()
        except (ValueError, self._ray.exceptions.RayError) as exc:
            raise SpawnError(f"cannot create its Ray actor: {exc}") from None
        start = actor.start.remote(list(request.argv), dict(request.env), str(request.log_path),
                                   request.model_path, self._config.host, request.port)
        return RayProcess(self._ray, actor, start=start, resources=resources)

    def adopt(self, name: str, pid: int, start_time: float,
              command: list[str]) -> BackendProcess | None:
        """The instance's actor whose backend is the recorded one; others of its are killed."""
        found: BackendProcess | None = None
        for actor_name, actor in self._actors_of(name):
            try:
                info = self._ray.get(actor.info.remote(), timeout=INFO_TIMEOUT_SECONDS)
            except self._ray.exceptions.RayError:
                info = {}
            if found is None and info.get("alive") and info.get("pid") == pid:
                found = RayProcess(self._ray, actor, info=info)
                self._adopted.add(actor_name)
            else:
                with contextlib.suppress(Exception):
                    self._ray.kill(actor, no_restart=True)
        return found

    def end_strays(self) -> list[str]:
        """After boot's adoptions: end every actor of llamactl's namespace not adopted (a
        start under way, or an instance deleted, when the last llamactl went away), so that
        none holds a node's resources forever. The names ended."""
        ended = []
        for name in self._names(ACTOR_PREFIX):
            if name in self._adopted:
                continue
            with contextlib.suppress(ValueError, self._ray.exceptions.RayError):
                self._ray.kill(self._ray.get_actor(name, namespace=self._config.namespace),
                               no_restart=True)
                ended.append(name)
        return ended

    def _names(self, prefix: str) -> list[str]:
        return [str(entry["name"])
                for entry in self._ray.util.list_named_actors(all_namespaces=True)
                if entry.get("namespace") == self._config.namespace
                and str(entry.get("name", "")).startswith(prefix)]

    def _actors_of(self, name: str) -> list[tuple[str, Any]]:
        actors = []
        for actor_name in self._names(f"{ACTOR_PREFIX}{name}/"):
            with contextlib.suppress(ValueError):
                actors.append((actor_name, self._ray.get_actor(
                    actor_name, namespace=self._config.namespace)))
        return actors

    def _node_besides(self, avoid: tuple[str, ...]) -> str | None:
        """An alive node other than those of ``avoid`` (a pool's other members), or None:
        no pool to spread, or every node holds one already (Ray chooses then)."""
        if not avoid:
            return None
        others = sorted(node["NodeID"] for node in self._ray.nodes()
                        if node["Alive"] and node["NodeID"] not in avoid)
        return others[0] if others else None

    def nodes(self) -> list[dict[str, Any]] | None:
        state: Any = importlib.import_module("ray._private.state").state
        available = state.available_resources_per_node()
        return [{
            "id": node["NodeID"], "address": node["NodeManagerAddress"],
            "alive": bool(node["Alive"]),
            "resources": {"total": dict(node.get("Resources") or {}),
                          "available": dict(available.get(node["NodeID"], {}))},
        } for node in self._ray.nodes()]

    def close(self) -> None:
        """Disconnect; the detached actors (and their backends) stay for adoption."""
        self._ray.shutdown()


def connect(config: ClusterConfig) -> RayHost:
    return RayHost(config)
