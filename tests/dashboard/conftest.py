"""A real ``llamactl serve`` (auth on: an admin, an operator, a viewer) and Debian's chromium
driven by Playwright, shared by the dashboard's tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.clients import PASSWORDS, ServerProcess, auth_section, server_document
from tests.support.helpers import free_port, write_config, write_unloadable_model

CHROMIUM = "/usr/bin/chromium"

# An init script (BrowserContext.add_init_script): counts the page's fetches still waiting for
# their answer's headers, so that a test can wait for a view's data (settle), not sleep.
COUNT_FETCHES = """(() => {
  window.__pendingFetches = 0;
  const fetch0 = window.fetch;
  window.fetch = (...args) => {
    window.__pendingFetches += 1;
    return fetch0(...args).finally(() => { window.__pendingFetches -= 1; });
  };
})();"""


@dataclass
class Dashboard:
    url: str
    models: Path  # the tiny model and a broken one
    tokens: dict[str, str]

    def api(self, user: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, trust_env=False,
                            headers={"Authorization": f"Bearer {self.tokens[user]}"})


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory, llama_server_bin: str,
                     tiny_model_file: Path) -> Iterator[Dashboard]:
    root = tmp_path_factory.mktemp("dashboard")
    models = root / "models"
    models.mkdir()
    shutil.copy(tiny_model_file, models / "tiny.gguf")
    write_unloadable_model(models / "broken.gguf")  # llama-server fails to load it
    document = server_document(llama_server_bin, auth=auth_section())
    document["instances"]["auto_restart"] = False  # a broken model fails once, then stays
    config = write_config(root / "config.yaml", document)
    process = ServerProcess(root / "data", config, free_port())
    try:
        process.start()
        tokens: dict[str, str] = {}
        for user, password in PASSWORDS.items():
            answer = httpx.post(f"{process.url}/api/auth/login", trust_env=False,
                                json={"username": user, "password": password})
            tokens[user] = answer.json()["token"]
        yield Dashboard(process.url, models, tokens)
    finally:
        process.stop()


# Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the
# main thread while it is open, and every asyncio test after it would then fail to start its
# own ("Runner.run() cannot be called from a running event loop").
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: scripts/setup installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Page, server: Dashboard, user: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Username", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="Instances").wait_for()


def open_view(page: Page, view: str) -> None:
    """Follow the navigation's link to a view (Instances, Activity, System ...)."""
    page.get_by_role("navigation", name="Views").get_by_role("link", name=view, exact=True).click()


def running_instance(server: Dashboard, name: str) -> Iterator[str]:
    """A tiny-model instance ``name``, started for a module's tests and stopped after them
    (a module fixture yields from this)."""
    with server.api() as api:
        made = api.post("/api/instances", json={
            "name": name, "model_path": str(server.models / "tiny.gguf"),
            "options": {"context_size": 256}, "port": free_port()})
        assert made.status_code == 201, made.text
        assert api.post(f"/api/instances/{name}/start?wait=true").status_code == 200
    yield name
    with server.api() as api:
        api.post(f"/api/instances/{name}/stop")


def settle(page: Page) -> None:
    """Every fetch answered (COUNT_FETCHES), and two frames drawn with what they brought."""
    page.wait_for_function("() => window.__pendingFetches === 0")
    page.evaluate("""() => document.fonts.ready.then(() => new Promise((done) =>
        requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 0)))))""")
