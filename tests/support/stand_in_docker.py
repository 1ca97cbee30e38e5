"""A stand-in ``docker`` command (no Docker daemon runs here): it records every command line
it is given and runs "containers" as local processes, with a small state directory for the
daemon's part.

    stand_in_docker.py --state DIR --image IMAGE=PROGRAM... <docker arguments>

``--state DIR`` holds ``calls.jsonl`` (one line per call: its argv after these options, and
the names of the variables set in its environment) and ``containers/<name>.json`` (pid, labels)
with ``<name>.log`` (the container's output). ``--image IMAGE=PROGRAM`` says what an image's
entrypoint is (the real llama-server for llama.cpp's image).

Implemented as the real ones behave, for what llamactl uses:

- ``run [--rm] [--init] --name N --label K=V -p A:P:P -v S:D:ro -e NAME[=VALUE] ... IMAGE
  ARGS``: the entrypoint runs with ARGS in its own session, with only the ``-e`` variables
  (``-e NAME`` takes the value from this command's environment) and PATH. The command stays
  attached: it copies the container's output to its own and exits with its code. SIGTERM and
  SIGINT to this command are ignored (stopping a container takes ``docker stop``); killing it
  leaves the container running, as with a daemon. An unknown option: exit 125.
- ``stop [-t N] NAME``: SIGTERM to the container, SIGKILL after N seconds (default 10).
- ``kill NAME``, ``rm [-f] NAME``, ``inspect --format {{.State.Running}} NAME``,
  ``ps [--all] [--filter label=K[=V]] [--format {{.Names}}]``, ``logs --follow [--since T]
  NAME`` (from now on, until the container stops).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

VALUE_FLAGS = {"--name", "--label", "-l", "-p", "--publish", "-v", "--volume", "-e", "--env",
               "--gpus", "--network", "--ipc", "--shm-size", "--runtime", "--user", "-u",
               "--device", "--ulimit"}
SWITCHES = {"--rm", "--init", "-d", "--detach", "-i", "-t", "--privileged"}


def main() -> int:
    argv = sys.argv[1:]
    state, images = None, {}
    while argv and argv[0] in ("--state", "--image"):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--state":
            state = Path(value)
        else:
            image, _, program = value.partition("=")
            images[image] = program
    assert state is not None, "--state DIR is required"
    (state / "containers").mkdir(parents=True, exist_ok=True)
    with (state / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"argv": argv, "env": sorted(os.environ)}) + "\n")
    if not argv:
        return fail("no command", 1)
    command, args = argv[0], argv[1:]
    daemon = Daemon(state / "containers")
    commands = {"run": lambda: run(daemon, images, args), "stop": lambda: stop(daemon, args),
                "kill": lambda: kill(daemon, args), "rm": lambda: remove(daemon, args),
                "inspect": lambda: inspect(daemon, args), "ps": lambda: ps(daemon, args),
                "logs": lambda: logs(daemon, args)}
    if command not in commands:
        return fail(f"unknown command: {command}", 1)
    return commands[command]()


def fail(message: str, code: int) -> int:
    print(f"docker: {message}", file=sys.stderr)
    return code


class Daemon:
    """The containers, one JSON file each (written by rename: never seen half-written)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads((self.folder / f"{name}.json").read_text())
        except FileNotFoundError:
            return None
        return found

    def put(self, name: str, container: dict[str, Any]) -> None:
        temporary = self.folder / f".{name}.json.tmp"
        temporary.write_text(json.dumps(container))
        temporary.rename(self.folder / f"{name}.json")

    def forget(self, name: str) -> None:
        (self.folder / f"{name}.json").unlink(missing_ok=True)

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.folder.glob("*.json"))

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"


def running(container: dict[str, Any]) -> bool:
    try:
        process = psutil.Process(container["pid"])
        return (process.create_time() == container["started"]
                and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def run(daemon: Daemon, images: dict[str, str], args: list[str]) -> int:
    options: dict[str, list[str]] = {}
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in SWITCHES:
            options.setdefault(flag, [])
        elif flag in VALUE_FLAGS and args:
            options.setdefault(flag, []).append(args.pop(0))
        else:
            return fail(f"unknown flag: {flag}", 125)
    if not args:
        return fail("\"docker run\" requires at least 1 argument", 125)
    image, container_args = args[0], args[1:]
    if image not in images:
        return fail(f"Unable to find image '{image}' locally", 125)
    name = (options.get("--name") or [f"c{os.getpid()}"])[-1]
    known = daemon.get(name)
    if known is not None and running(known):
        return fail(f'Conflict. The container name "/{name}" is already in use', 125)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    for variable in options.get("-e", []) + options.get("--env", []):
        key, equals, value = variable.partition("=")
        if equals:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    labels = dict(label.partition("=")[::2]
                  for label in options.get("--label", []) + options.get("-l", []))
    log_path = daemon.log(name)
    with log_path.open("wb") as output:
        process = subprocess.Popen([images[image], *container_args], env=env, cwd="/",
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                   start_new_session=True)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # signalling `docker run` stops nothing
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    daemon.put(name, {"pid": process.pid, "started": psutil.Process(process.pid).create_time(),
                      "labels": labels, "image": image, "args": container_args,
                      "env": sorted(env), "rm": "--rm" in options})
    follow(log_path, 0, lambda: process.poll() is not None)
    if "--rm" in options:
        daemon.forget(name)
    return process.returncode if process.returncode >= 0 else 128 - process.returncode


def follow(path: Path, offset: int, ended: Any) -> None:
    """Copy the log from ``offset`` to stdout until ``ended()``, then what is left."""
    with path.open("rb") as log:
        log.seek(offset)
        while True:
            done = ended()
            chunk = log.read()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            if done:
                return
            time.sleep(0.05)


def signal_container(container: dict[str, Any], signum: signal.Signals) -> None:
    if running(container):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(container["pid"], signum)


def wait_gone(container: dict[str, Any], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(container):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def lookup(daemon: Daemon, name: str) -> dict[str, Any] | None:
    container = daemon.get(name)
    if container is None:
        print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
    return container


def stop(daemon: Daemon, args: list[str]) -> int:
    grace = 10.0
    if args[:1] in (["-t"], ["--time"]):
        grace, args = float(args[1]), args[2:]
    container = lookup(daemon, args[0])
    if container is None:
        return 1
    signal_container(container, signal.SIGTERM)
    if not wait_gone(container, grace):
        signal_container(container, signal.SIGKILL)
        wait_gone(container, 10)
    if container["rm"]:
        daemon.forget(args[0])
    print(args[0])
    return 0


def kill(daemon: Daemon, args: list[str]) -> int:
    container = lookup(daemon, args[-1])
    if container is None:
        return 1
    signal_container(container, signal.SIGKILL)
    wait_gone(container, 10)
    print(args[-1])
    return 0


def remove(daemon: Daemon, args: list[str]) -> int:
    force = "-f" in args or "--force" in args
    name = next(arg for arg in args if not arg.startswith("-"))
    container = lookup(daemon, name)
    if container is None:
        return 1
    if running(container) and not force:
        return fail(f"cannot remove container {name}: it is running", 1)
    signal_container(container, signal.SIGKILL)
    wait_gone(container, 10)
    daemon.forget(name)
    print(name)
    return 0


def inspect(daemon: Daemon, args: list[str]) -> int:
    name = args[-1]
    container = daemon.get(name)
    if container is None:
        print(f"Error: No such object: {name}", file=sys.stderr)
        return 1
    assert args[:2] == ["--format", "{{.State.Running}}"], args
    print("true" if running(container) else "false")
    return 0


def ps(daemon: Daemon, args: list[str]) -> int:
    every = "--all" in args or "-a" in args
    wanted = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--filter"]
    for name in daemon.names():
        container = daemon.get(name)
        if container is None or not (every or running(container)):
            continue
        labels = container["labels"]
        if all(_has_label(labels, spec.removeprefix("label=")) for spec in wanted):
            print(name)
    return 0


def _has_label(labels: dict[str, str], wanted: str) -> bool:
    key, equals, value = wanted.partition("=")
    return key in labels and (not equals or labels[key] == value)


def logs(daemon: Daemon, args: list[str]) -> int:
    container = lookup(daemon, args[-1])
    if container is None:
        return 1
    log_path = daemon.log(args[-1])
    # --since: from now on (the only use llamactl has for it); --follow: until it stops.
    follow(log_path, log_path.stat().st_size, lambda: not running(container))
    return 0


if __name__ == "__main__":
    sys.exit(main())
