"""Settings: defaults < YAML file < LLAMACTL_* environment < flags; bad files are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamactl.config import load_settings
from llamactl.errors import StartupError


def test_defaults_without_a_file(tmp_path: Path) -> None:
    loaded = load_settings(environ={"XDG_CONFIG_HOME": str(tmp_path)})
    settings = loaded.settings
    assert not loaded.config_file_exists
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.instances.port_range == (8100, 8999)
    assert settings.rate_limit.regular_per_minute == 100
    assert settings.auth.enabled is None
    assert not settings.auth_enabled  # loopback


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server: {host: 127.0.0.2, port: 9001}\ndata_dir: /tmp/from-file\n")
    env = {"LLAMACTL_CONFIG": str(config), "LLAMACTL_PORT": "9002"}
    settings = load_settings(environ=env).settings
    assert settings.server.host == "127.0.0.2"
    assert settings.server.port == 9002
    assert settings.data_dir == Path("/tmp/from-file")
    settings = load_settings(environ=env, overrides={"server.port": 9003,
                                                     "data_dir": "/tmp/flag"}).settings
    assert settings.server.port == 9003
    assert settings.data_dir == Path("/tmp/flag")


def test_auth_defaults_on_for_other_hosts(tmp_path: Path) -> None:
    settings = load_settings(environ={"XDG_CONFIG_HOME": str(tmp_path),
                                      "LLAMACTL_HOST": "0.0.0.0"}).settings
    assert settings.auth_enabled


@pytest.mark.parametrize(("text", "message"), [
    ("server: [1, 2", "not valid YAML"),
    ("- a\n- b\n", "mapping"),
    ("server: {prot: 1}\n", "server.prot"),
    ("instances: {port_range: [9000, 100]}\n", "port_range"),
    ("server: {port: 99999}\n", "server.port"),
    ("backends: {llama_cpp: {command: ''}}\n", "command"),
])
def test_bad_files_are_startup_errors(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(StartupError) as caught:
        load_settings(config_path=config, environ={})
    assert message in caught.value.message


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="does not exist"):
        load_settings(config_path=tmp_path / "missing.yaml", environ={})
