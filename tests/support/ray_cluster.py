"""A three-node Ray cluster on loopback, inside a ``LoopbackNamespace`` (issue 18).

Nodes are told apart by a custom resource each was started with (``box_a``, ``box_b``,
``box_c``); ``box_b`` and ``box_c`` nodes also have ``shared``, so an instance that needs
``shared`` can be placed again on the other after one is lost. Ray is started with
``ray start`` (which daemonises); its processes are found and stopped through the namespace
(every process in it is the cluster's or the tests'), by pid and bounded in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.helpers import free_port
from tests.support.netns import LoopbackNamespace

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT = 90.0
# Failure detection in seconds rather than half a minute: 0.5 s checks, 4 misses.
FAST_FAILURE_DETECTION = {"RAY_health_check_period_ms": "500",
                          "RAY_health_check_failure_threshold": "4",
                          "RAY_health_check_initial_delay_ms": "0"}
NODES = {"box_a": {"box_a": 1}, "box_b": {"box_b": 1, "shared": 1},
         "box_c": {"box_c": 1, "shared": 1}}


@dataclass
class RayCluster:
    namespace: LoopbackNamespace
    temp_dir: Path
    address: str = ""
    started: list[str] = field(default_factory=list)

    def start(self) -> RayCluster:
        env = {**os.environ, **FAST_FAILURE_DETECTION, "RAY_USAGE_STATS_ENABLED": "0"}
        head_port = free_port()
        self.address = f"127.0.0.1:{head_port}"
        first, *others = NODES.items()
        self._ray_start(env, first[1], ["--head", f"--port={head_port}",
                                        "--include-dashboard=false",
                                        f"--temp-dir={self.temp_dir}"])
        for _, resources in others:
            self._ray_start(env, resources, [f"--address={self.address}"])
        self.started = list(NODES)
        self._wait_for_nodes(len(NODES))
        return self

    def _ray_start(self, env: dict[str, str], resources: dict[str, int],
                   extra: list[str]) -> None:
        subprocess.run(
            [RAY, "start", *extra, "--num-cpus=1", "--num-gpus=0",
             f"--resources={json.dumps(resources)}", "--disable-usage-stats",
             "--node-ip-address=127.0.0.1",
             f"--dashboard-agent-listen-port={free_port()}",
             f"--metrics-export-port={free_port()}"],
            check=True, env=env, timeout=START_TIMEOUT, capture_output=True,
            # A session of its own: Ray's process reaper SIGTERMs its whole process group when
            # its parent dies, which on a node's loss took the benchmark that started it along.
            start_new_session=True)

    def _wait_for_nodes(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.raylets()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} raylets did not start")
            time.sleep(0.2)

    def raylets(self) -> dict[str, psutil.Process]:
        """Ray node id → that node's raylet process."""
        found: dict[str, psutil.Process] = {}
        for pid in self.namespace.processes():
            try:
                process = psutil.Process(pid)
                if process.name() != "raylet":
                    continue
                args = process.cmdline()
            except psutil.Error:
                continue
            for arg in args:
                if arg.startswith("--node_id="):
                    found[arg.split("=", 1)[1]] = process
        return found

    def stop(self) -> list[int]:
        """Every Ray process, by pid: TERM, then KILL after a bound. Those that needed KILL."""
        return self.namespace.end_processes(timeout=5.0)
