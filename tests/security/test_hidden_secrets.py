"""What a viewer or an operator sees of an admin's secrets (issue 27, point 4): an instance's
``environment`` values (an ``HF_TOKEN``) and the values of secret flags in its
``extra_args`` read as "***" below admin, in the list the dashboard reads and in each
instance's answer; an edit that sends the "***" back keeps the real values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import Server

TOKEN = "hf_instance_secret_value"


@pytest.fixture
def with_secrets(secured_server: Server, models_dir: Path) -> Iterator[str]:
    with secured_server.client("admin") as admin:
        created = admin.post("/api/instances", json={
            "name": "holds-secrets", "model_path": str(models_dir / "tiny.gguf"),
            "environment": {"HF_TOKEN": TOKEN, "HF_HOME": "/cache"},
            "extra_args": ["--hf-token", TOKEN, "--threads-http", "2"]})
        assert created.status_code == 201, created.text
        assert created.json()["instance"]["environment"]["HF_TOKEN"] == TOKEN  # an admin's
        yield "holds-secrets"
        assert admin.delete("/api/instances/holds-secrets").status_code == 200


@pytest.mark.parametrize("user", ["view", "op"])
def test_below_admin_secret_values_read_as_stars(
    secured_server: Server, with_secrets: str, user: str,
) -> None:
    with secured_server.client(user) as client:
        listed = client.get("/api/instances")
        one = client.get(f"/api/instances/{with_secrets}")
    for answer in (listed, one):
        assert answer.status_code == 200
        assert TOKEN not in answer.text
    instance = one.json()
    assert instance["environment"] == {"HF_TOKEN": "***", "HF_HOME": "***"}
    assert instance["extra_args"] == ["--hf-token", "***", "--threads-http", "2"]
    with secured_server.client("admin") as admin:
        shown = admin.get(f"/api/instances/{with_secrets}").json()
    assert shown["environment"]["HF_TOKEN"] == TOKEN
    assert shown["extra_args"][1] == TOKEN


def test_stars_sent_back_keep_the_values(secured_server: Server, with_secrets: str) -> None:
    path = f"/api/instances/{with_secrets}"
    with secured_server.client("op") as operator, secured_server.client("admin") as admin:
        read = operator.get(path).json()
        edit = operator.put(path, json={"environment": read["environment"],
                                        "extra_args": read["extra_args"], "idle_timeout": 5})
        assert edit.status_code == 200, edit.text
        assert TOKEN not in edit.text
        kept = admin.get(path).json()
        assert kept["environment"] == {"HF_TOKEN": TOKEN, "HF_HOME": "/cache"}
        assert kept["extra_args"] == ["--hf-token", TOKEN, "--threads-http", "2"]
        assert kept["idle_timeout"] == 5
        changed = operator.put(path, json={"environment": {"HF_TOKEN": "mine"}})
        assert (changed.status_code, changed.json()["code"]) == (403, "FORBIDDEN")
        stranger = admin.put(path, json={"environment": {"OTHER": "***"}})
        assert (stranger.status_code, stranger.json()["code"]) == (400, "VALIDATION_ERROR")
        assert "environment.OTHER" in stranger.json()["details"]
        assert admin.get(path).json()["environment"]["HF_TOKEN"] == TOKEN
