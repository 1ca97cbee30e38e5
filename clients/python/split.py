"""Which files of ``src/llamactl`` each distribution ships, written down once.

``llamactl-client`` (this folder's pyproject.toml) and ``llamactl-server`` (the repository's
root pyproject.toml) are built from the one ``src/llamactl`` tree: the client's wheel holds the
modules below, the server's wheel everything else, so that no file is owned by both (pip would
let one distribution's uninstall delete the other's file). Both setup.py files import this.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools.command.build_py import build_py

# package -> its modules in the client's wheel; None: the whole package.
CLIENT_MODULES: dict[str, set[str] | None] = {
    "llamactl": {"__init__", "__main__", "_version", "atomic_file"},
    "llamactl.client": None,
    # the remote command line; serve.py and admin.py (users) are the server's, and keys.py
    # works on a local data dir only where the server is installed
    "llamactl.cli": {"__init__", "activity", "common", "completion", "instance_logs",
                     "instance_view", "instances",
                     "keys", "local_options", "models", "output", "pools", "system", "watch"},
}
CLIENT_PACKAGES = sorted(CLIENT_MODULES)
# package data (setuptools' package-data) of the client's wheel
CLIENT_DATA = {"llamactl": ["py.typed"]}


def in_client(package: str, module: str) -> bool:
    if package not in CLIENT_MODULES:
        return False
    modules = CLIENT_MODULES[package]
    return modules is None or module in modules


class FreshBuildPy(build_py):
    """build_py into an empty build/lib: setuptools packs whatever that folder holds into the
    wheel, so a file from an earlier build (before the split, or of the other half) would
    ship too."""

    def run(self) -> None:
        shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()


class ClientBuildPy(FreshBuildPy):
    """build_py that keeps the client's modules only."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        found = super().find_package_modules(package, package_dir)
        return [entry for entry in found if in_client(entry[0], entry[1])]


class ServerBuildPy(FreshBuildPy):
    """build_py that leaves out the client's modules (they come with llamactl-client)."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        found = super().find_package_modules(package, package_dir)
        return [entry for entry in found if not in_client(entry[0], entry[1])]

    def find_data_files(self, package: str, src_dir: str) -> list[str]:
        found: list[str] = super().find_data_files(package, src_dir)
        client_data = set(CLIENT_DATA.get(package, ()))
        return [path for path in found if Path(path).name not in client_data]
