"""API keys (``/api/keys``) and ``list_models()`` (``/v1/models``) through both clients,
against a real ``llamactl serve`` with authentication on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llamactl import (
    APIKey,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    KeyCreated,
    Model,
    NotFoundError,
    PermissionDeniedError,
)
from llamactl.devtools.tiny_model import N_CTX
from tests.support.clients import PASSWORDS, auth_section, running_server
from tests.support.helpers import LlamactlProcess

pytestmark = [pytest.mark.llama,
              pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]


@pytest.fixture
def server(tmp_path: Path, llama_server_bin: str) -> Iterator[LlamactlProcess]:
    with running_server(tmp_path, llama_server_bin, auth=auth_section()) as process:
        yield process


def test_keys_and_models(server: LlamactlProcess, model: Path) -> None:
    with Client(server.url) as admin:
        admin.login("admin", PASSWORDS["admin"])
        admin.create_instance("a", str(model))
        admin.create_instance("b", str(model), aliases=["bee"],
                              options={"embedding": True, "context_size": 256})
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        created = admin.create_key("only-a", instances=["a"], expires_at=expires)
        assert isinstance(created, KeyCreated)
        assert created.key.startswith(created.info.prefix)
        assert created.info.instances == ["a"]
        assert created.info.expires_at == expires
        everything = admin.create_key("all")
        assert everything.info.instances is None
        assert everything.info.expires_at is None

        listed = admin.list_keys()
        assert sorted(key.name for key in listed) == ["all", "only-a"]
        assert all(isinstance(key, APIKey) for key in listed)
        assert all(key.last_used_at is None for key in listed)
        with pytest.raises(ConflictError):
            admin.create_key("all")
        with pytest.raises(BadRequestError):
            admin.create_key("past", expires_at=datetime.now(UTC) - timedelta(days=1))

        # With a token, /v1/models lists every instance.
        models = admin.list_models()
        assert all(isinstance(entry, Model) for entry in models)
        assert {entry.id: entry.aliases for entry in models} == {"a": [], "b": ["bee"]}
        assert {entry.status for entry in models} == {"stopped"}
        # Issue 31: what each can do, from its options and its model's metadata
        assert {entry.id: (entry.context_length, entry.capabilities) for entry in models} == {
            "a": (N_CTX, ["completion", "chat"]), "b": (256, ["embedding"])}
        assert admin.get_instance("b").capabilities == ["embedding"]

    with Client(server.url, api_key=created.key) as limited:
        assert [entry.id for entry in limited.list_models()] == ["a"]
        with pytest.raises(AuthenticationError):
            limited.list_keys()  # an API key is no token for /api

    with Client(server.url) as viewer:
        viewer.login("view", PASSWORDS["view"])
        with pytest.raises(PermissionDeniedError):
            viewer.list_keys()

    with Client(server.url) as admin:
        admin.login("admin", PASSWORDS["admin"])
        admin.revoke_key("only-a")
        assert [key.name for key in admin.list_keys()] == ["all"]
        with pytest.raises(NotFoundError):
            admin.revoke_key("only-a")
    with Client(server.url, api_key=created.key) as revoked, \
            pytest.raises(AuthenticationError) as refused:
        revoked.list_models()
    assert refused.value.code == "invalid_api_key"  # /v1's OpenAI envelope, read


async def test_keys_and_models_async(server: LlamactlProcess, model: Path) -> None:
    async with AsyncClient(server.url) as admin:
        await admin.login("admin", PASSWORDS["admin"])
        await admin.create_instance("a", str(model))
        created = await admin.create_key("k", instances=[])
        assert created.info.instances == []
        assert [key.name for key in await admin.list_keys()] == ["k"]
        assert [entry.id for entry in await admin.list_models()] == ["a"]
        async with AsyncClient(server.url, api_key=created.key) as nothing:
            assert await nothing.list_models() == []  # an empty list allows no instance
        await admin.revoke_key("k")
        assert await admin.list_keys() == []
