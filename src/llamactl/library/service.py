"""The model library as one of the app's services: the catalog of what is on disk, and the
pulls from the Hub in flight."""

from __future__ import annotations

import os

from llamactl.config import Settings
from llamactl.events import EventHub
from llamactl.library.catalog import ModelCatalog, ModelEntry
from llamactl.library.pulls import KEPT_JOBS, Pulls
from llamactl.store.pulls import PullRepository
from llamactl.store.writer import StoreWriter

PUBLIC_HUB = "https://huggingface.co"


class ModelLibrary:
    def __init__(self, settings: Settings, events: EventHub, writer: StoreWriter):
        self.settings = settings
        self.dir = settings.models_dir
        self.catalog = ModelCatalog(self.dir, settings.instances.model_dirs)
        hub_url = settings.models.hub_url or os.environ.get("HF_ENDPOINT") or PUBLIC_HUB
        # models.hub_token, else HF_TOKEN: huggingface_hub reads it (and its saved login)
        # itself when given no token.
        self.pulls = Pulls(self.dir, events, self.catalog.sources, hub_url,
                           settings.models.hub_token, PullRepository(writer, keep=KEPT_JOBS))

    def delete(self, entry: ModelEntry) -> None:
        """Remove a model of the library's folder: its files, their sources, and the folders
        it leaves empty. Blocking."""
        for path in entry.files:
            path.unlink(missing_ok=True)
        self.catalog.sources.forget(
            [path.relative_to(self.dir).as_posix() for path in entry.files])
        folder = entry.path.parent
        while folder != self.dir and folder.is_relative_to(self.dir):
            try:
                folder.rmdir()  # only an empty one
            except OSError:
                break
            folder = folder.parent

    async def close(self) -> None:
        """Stop the pulls in flight (their partial files stay, for the next pull to resume)."""
        await self.pulls.close()
