"""The Python client's model library (issue 33): list, pull and follow, cancel, delete, and an
instance from a model, against the app and the stand-in Hub."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llamactl import AsyncClient, LibraryModel, NotFoundError, PullJob
from tests.conftest import AppHarness
from tests.support.stand_in_hub import REPO, StandInHub, hub_settings


async def test_the_async_client_pulls_lists_and_deletes(
    make_settings: Any, make_app: Any, hub: StandInHub, tmp_path: Path,
) -> None:
    app: AppHarness = await make_app(hub_settings(make_settings, hub, tmp_path))
    async with AsyncClient(str(app.client.base_url)) as client:
        assert await client.list_library() == []
        job = await client.pull_model(f"{REPO}:Q8_0")
        assert isinstance(job, PullJob)
        while not job.finished:
            await asyncio.sleep(0.05)
            job = await client.get_pull(job.id)
        assert (job.status, job.model) == ("done", f"{REPO}/tiny-Q8_0.gguf")
        assert [p.id for p in await client.list_pulls()] == [job.id]
        (model,) = await client.list_library()
        assert isinstance(model, LibraryModel)
        assert model.source is not None
        assert model.source.repo == REPO
        instance = await client.create_instance_from_model("tiny", f"{REPO}:Q8_0")
        assert (instance.model_path, instance.pull) == (model.path, None)
        await client.delete_instance("tiny")
        await client.delete_model(model.id)
        assert await client.list_library() == []
        with pytest.raises(NotFoundError):
            await client.get_pull("nope")

        hub.hold_after = 100
        split = await client.pull_model(repo=REPO, file="big/big-Q2_K-00001-of-00002.gguf")
        assert len(split.files) == 2
        cancelled = await client.cancel_pull(split.id)
        assert cancelled.status == "cancelled"
        hub.release.set()
