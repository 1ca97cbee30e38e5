"""``llamactl serve`` refuses to start with a clear message, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import free_port


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llamactl", "serve", "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=60, env=env,
    )


def assert_refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("llamactl: error:")
    assert message in result.stderr


def test_corrupt_database(tmp_path: Path) -> None:
    (tmp_path / "llamactl.db").write_bytes(b"garbage" * 1000)
    assert_refused(serve("--data-dir", str(tmp_path)), "corrupt")


def test_data_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert_refused(serve("--data-dir", str(tmp_path / "file" / "data")), "cannot create data dir")


def test_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("instances: {max_restarts: lots}\n")
    result = serve("--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "instances.max_restarts")


def test_missing_config(tmp_path: Path) -> None:
    result = serve("--config", str(tmp_path / "nope.yaml"), "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "does not exist")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_non_loopback_host_without_users_is_refused(tmp_path: Path, host: str) -> None:
    result = serve("--host", host, "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "not a loopback address")
    assert "llamactl users add admin --role admin" in result.stderr


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "llamactl", "--version"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.startswith("llamactl, version ")
