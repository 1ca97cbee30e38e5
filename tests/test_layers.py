"""What may import what: the layers of ``src/llamactl``, written down once, here.

A unit is a top-level module or package of ``llamactl`` (``supervisor``, ``api``, ``cli``, ...).
A unit may import units of lower layers only; two units of one layer may not import each
other. CONTRIBUTING.md explains the layers; this test reads every module's imports (with
``ast``, so nothing is imported) and fails on an arrow that points up or sideways, and on a
unit that has no layer yet.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "llamactl"

# Lowest first.
LAYERS: list[set[str]] = [
    # leaves: the standard library and third parties only
    {"errors", "atomic_file", "events", "version", "_version", "request_ids"},
    {"client"},  # the Python client: leaves only (its version number among them)
    {"config", "instances"},  # settings; the instance data model and its option table
    {"store", "backends"},  # SQLite, its writer thread, the data dir's lock; each backend
    # the ledger of requests: records, their meter, writing and reading them; the model
    # library: the models on disk and pulls from the Hub
    {"activity", "library"},
    {"security"},  # tokens, users, keys (cached over the store's writer), rate limits
    {"supervisor"},  # one owner per instance, the manager, capacity
    {"monitoring", "gateway", "cluster"},  # host and metrics; the /v1 gateway; Ray placement
    {"api"},  # the REST API's routes, schemas and middleware
    {"services", "dashboard"},  # the running services; the web dashboard's page and assets
    {"app"},  # create_app: builds the services and mounts the routes
    {"serving"},  # what `llamactl serve` does around the app
    {"cli", "devtools"},  # the command line; tools for the tests and benchmarks
    {"__main__", "llamactl"},  # ``python -m llamactl``; the package's root (the client's names)
]

# Arrows that break the rule today, each with where it is and why it is still there. The test
# also fails when one of them is gone, so that the list only ever shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "llamactl"


def imports() -> dict[tuple[str, str], list[str]]:
    """(importer unit, imported unit) -> the files with that arrow."""
    arrows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("llamactl", *path.relative_to(PACKAGE).with_suffix("").parts))
        importer = unit_of(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "llamactl" or name.startswith("llamactl."):
                    imported = unit_of(name)
                    if imported != importer:
                        arrows[(importer, imported)].append(str(path.relative_to(PACKAGE)))
    return arrows


def layer_of(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"llamactl.{unit} has no layer: add it to LAYERS in {__file__}")


def test_every_unit_has_a_layer() -> None:
    units = {path.stem if path.is_file() else path.name
             for path in PACKAGE.iterdir()
             if (path.suffix == ".py" and path.stem != "__init__")
             or (path.is_dir() and (path / "__init__.py").exists())}
    units.add("llamactl")
    for unit in sorted(units):
        layer_of(unit)


def test_imports_point_down_only() -> None:
    arrows = imports()
    wrong = {arrow: files for arrow, files in arrows.items()
             if layer_of(arrow[1]) >= layer_of(arrow[0]) and arrow not in KNOWN}
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(
        f"  {a} -> {b}: {', '.join(sorted(set(files)))}" for (a, b), files in wrong.items())
    gone = [arrow for arrow in KNOWN if arrow not in arrows]
    assert not gone, f"fixed, so take them out of KNOWN: {gone}"


def test_the_client_imports_nothing_of_the_server() -> None:
    arrows = imports()
    # llamactl._version is a constant, shared so that both distributions agree on it.
    assert [b for (a, b) in arrows if a == "client" and b != "_version"] == []
