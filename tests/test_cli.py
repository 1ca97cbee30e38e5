"""``llamactl serve`` refuses to start with a clear message, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import SERVER_START_TIMEOUT, free_port


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


def llamactl(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamactl", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_users_commands_edit_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    added = llamactl("users", "add", "admin", "--role", "admin", "--password-stdin",
                     "--config", str(config), stdin="correct-horse\n")
    assert added.returncode == 0, added.stderr
    assert "correct-horse" not in config.read_text()
    assert "$argon2id$" in config.read_text()
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    short = llamactl("users", "add", "bob", "--password-stdin", "--config", str(config),
                     stdin="short\n")
    assert short.returncode == 1
    assert "at least 8" in short.stderr
    again = llamactl("users", "add", "admin", "--password-stdin", "--config", str(config),
                     stdin="another-password\n")
    assert again.returncode == 1
    assert llamactl("users", "list", "--config", str(config)).stdout == "admin\tadmin\n"
    assert llamactl("users", "passwd", "admin", "--password-stdin", "--config", str(config),
                    stdin="battery-staple\n").returncode == 0
    assert llamactl("users", "remove", "admin", "--config", str(config)).returncode == 0
    assert llamactl("users", "list", "--config", str(config)).stdout == ""
    assert (tmp_path / "config.yaml.bak").exists()


def test_keys_commands(tmp_path: Path) -> None:
    where = ["--config", str(tmp_path / "none.yaml"), "--data-dir", str(tmp_path / "d")]
    (tmp_path / "none.yaml").write_text("{}\n")
    created = llamactl("keys", "create", "ci", "--instances", "a,b", "--expires", "2099-01-01",
                       *where)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("llk_")
    listed = llamactl("keys", "list", *where).stdout
    header, row = listed.splitlines()
    assert header.split() == ["NAME", "PREFIX", "INSTANCES", "EXPIRES", "LAST", "USED"]
    assert row.startswith("ci ")
    assert "a,b" in row
    assert "2099-01-01 00:00 UTC" in row
    assert row.endswith("never")
    assert key not in listed
    assert llamactl("keys", "revoke", "ci", *where).returncode == 0
    assert llamactl("keys", "revoke", "ci", *where).returncode == 3  # not found
    assert llamactl("keys", "list", *where).stdout == ""


def test_serving_on_all_interfaces_with_a_user_requires_tokens(tmp_path: Path) -> None:
    import httpx

    from tests.support.helpers import wait_until

    config = tmp_path / "config.yaml"
    llamactl("users", "add", "admin", "--role", "admin", "--password-stdin",
             "--config", str(config), stdin="correct-horse\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llamactl", "serve", "--host", "0.0.0.0", "--port", str(port),
         "--config", str(config), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/instances").status_code == 401
            except httpx.HTTPError:
                return False

        wait_until(up, SERVER_START_TIMEOUT, "llamactl with auth")
        login = httpx.post(f"{url}/auth/login",
                           json={"username": "admin", "password": "correct-horse"})
        assert login.status_code == 200
        token = login.json()["token"]
        listed = httpx.get(f"{url}/instances", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        secret = (tmp_path / "data" / "auth_secret")
        assert oct(secret.stat().st_mode & 0o777) == "0o600"
    finally:
        server.terminate()
        server.wait(30)


def test_help_imports_neither_the_client_nor_the_server() -> None:
    """What keeps the command line quick to start (bench/cli_startup.py has the times):
    ``--help`` imports no HTTP client, no pydantic, no argon2; a client command no server.
    (A None entry is a module kept from being imported: llamactl/__init__'s httpx._main.)"""
    code = ("import sys\n"
            "from llamactl.cli import main\n"
            "try:\n"
            "    main([*sys.argv[1:], '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = ('httpx', 'pydantic', 'argon2', 'fastapi', 'uvicorn', 'starlette',\n"
            "         'llamactl.app', 'llamactl.client', 'llamactl.supervisor', 'yaml')\n"
            "print(sorted({'.'.join(m.split('.')[:2 if m.startswith('llamactl') else 1])\n"
            "              for m, module in sys.modules.items()\n"
            "              if m.startswith(heavy) and module is not None}), file=sys.stderr)\n")

    def imported(*args: str) -> str:
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                                text=True, timeout=60, check=True)
        return result.stderr.strip().splitlines()[-1]

    assert imported() == "[]"
    assert imported("instances", "list") == (
        "['httpx', 'llamactl.client', 'pydantic', 'pydantic_core']")
