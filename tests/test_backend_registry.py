"""A backend is one module (issue 28): registering tests/support/throwaway_backend.py, and
changing no other file, makes it a section of the config, a name the API and its OpenAPI
document take, a choice of the CLI's ``instances import --backend`` (the CLI asks the
server: llamactl-client has no backends), and a backend the estimate route answers for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from llamactl.backends import backend_names
from llamactl.cli import main
from llamactl.config import Settings
from llamactl.devtools.docs_reference import configuration_reference
from tests.conftest import AppHarness
from tests.support.throwaway_backend import NAME, registered


def test_its_settings_are_a_section_of_the_config_and_its_reference(tmp_path: Path) -> None:
    with registered():
        settings = Settings.model_validate({"data_dir": str(tmp_path), "backends": {
            NAME: {"command": ["python", "-m", "throwaway"]}}})
        assert settings.backends.section(NAME).command == ["python", "-m", "throwaway"]
        assert settings.model_dump()["backends"][NAME]["command"] == [
            "python", "-m", "throwaway"]
        with pytest.raises(ValidationError) as refused:
            Settings.model_validate({"backends": {NAME: {"command": ""}}})
        assert refused.value.errors()[0]["loc"] == ("backends", NAME, "command")
        reference = configuration_reference()
        assert f"| `backends.{NAME}.command` |" in reference
        assert "A backend the tests register and remove again." in reference
    assert NAME not in backend_names()
    with pytest.raises(ValidationError):  # gone with its module's registration
        Settings.model_validate({"backends": {NAME: {}}})


async def test_the_api_its_openapi_document_and_the_estimate_route_know_it(
    make_settings: Any, make_app: Any, tmp_path: Path
) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(b"w" * 4096)
    with registered():
        app: AppHarness = await make_app(make_settings())
        document = (await app.client.get("/openapi.json")).json()["components"]["schemas"]
        assert NAME in document["InstanceCreate"]["properties"]["backend"]["enum"]
        assert document["BackendsConfig"]["properties"][NAME] == {
            "$ref": "#/components/schemas/ThrowawayBackendConfig",
            "description": "A backend the tests register and remove again."}
        listed = (await app.client.get("/api/backends")).json()["backends"]
        assert NAME in [backend["name"] for backend in listed]
        estimate = await app.client.post(f"/api/backends/{NAME}/estimate", json={
            "model_path": str(model), "options": {"workers": 2}})
        assert estimate.status_code == 200, estimate.text
        assert estimate.json() == {"ram": 2 * 4096, "vram": None}
        unreadable = await app.client.post(f"/api/backends/{NAME}/estimate", json={
            "model_path": str(tmp_path)})  # a directory, which it takes but cannot size
        assert unreadable.status_code == 400
        assert "throwaway backend can size" in unreadable.json()["error"]
        created = await app.client.post("/api/instances", json={
            "name": "thrown", "backend": NAME, "model_path": str(model)})
        assert created.status_code == 201, created.text
        instance = (await app.client.get("/api/instances/thrown")).json()
        assert instance["memory_estimate"] == {"ram": 4096, "vram": None}


async def test_the_cli_takes_it_as_a_backend(make_settings: Any, make_app: Any,
                                             tmp_path: Path) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(b"w")
    with registered():
        app: AppHarness = await make_app(make_settings())
        url = str(app.client.base_url)

        def cli(*args: str) -> Any:
            return CliRunner().invoke(main, ["--url", url, "instances", "import", *args])

        imported = await asyncio.to_thread(
            cli, "via-cli", "--backend", NAME, "--", "throwaway-server", "--model", str(model),
            "--workers", "3")
        assert imported.exit_code == 0, imported.output
        instance = (await app.client.get("/api/instances/via-cli")).json()
        assert (instance["backend"], instance["options"]) == (NAME, {"workers": 3})
        unknown = await asyncio.to_thread(cli, "other", "--backend", "nosuch", "--", "x")
        assert unknown.exit_code != 0
        assert f"'{NAME}'" in unknown.output  # the server's list of the names it takes
