"""What a long-open dashboard lives through: its token ending (refreshed before it does) and
its feed dropping (the server restarted), each against its own real ``llamactl serve``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, sign_in
from tests.support.clients import PASSWORDS, ServerProcess, auth_section, server_document
from tests.support.helpers import free_port, write_config, write_unloadable_model

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
SHORT_TTL = 5  # seconds; the page refreshes at 60 % of a short token's life


def fresh_api(url: str) -> httpx.Client:
    """An admin client with a token of its own: the test's tokens end quickly too."""
    token = httpx.post(f"{url}/api/auth/login", trust_env=False, json={
        "username": "admin", "password": PASSWORDS["admin"]}).json()["token"]
    return httpx.Client(base_url=url, timeout=60, trust_env=False,
                        headers={"Authorization": f"Bearer {token}"})


ServerFactory = Callable[[int], tuple[Dashboard, ServerProcess]]


@pytest.fixture
def own_server(tmp_path: Path, llama_server_bin: str,
               tiny_model_file: Path) -> Iterator[ServerFactory]:
    """A server of this test's own, with tokens of the given life, restartable on its port."""
    started: list[ServerProcess] = []

    def start(token_ttl: int) -> tuple[Dashboard, ServerProcess]:
        models = tmp_path / "models"
        models.mkdir()
        shutil.copy(tiny_model_file, models / "tiny.gguf")
        write_unloadable_model(models / "broken.gguf")
        document = server_document(llama_server_bin, auth=auth_section(token_ttl=token_ttl))
        document["instances"]["auto_restart"] = False
        process = ServerProcess(tmp_path / "data",
                                write_config(tmp_path / "config.yaml", document), free_port())
        started.append(process)
        process.start()
        return Dashboard(process.url, models, {}), process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


def wait_past(deadline: float) -> None:
    while time.time() < deadline:
        time.sleep(0.2)


def delete_in_the_page(page: Page, name: str) -> None:
    """An action that needs a good token: the API answers 401 to an ended one."""
    page.locator(f'tr[data-name="{name}"]').get_by_role("button", name="Delete",
                                                         exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(f'tr[data-name="{name}"]')).to_have_count(0)


def test_token_is_refreshed_before_it_ends_and_after_a_reload(own_server: ServerFactory,
                                                              page: Page) -> None:
    server, _ = own_server(SHORT_TTL)
    with fresh_api(server.url) as api:
        for name in ("keep-1", "keep-2"):
            made = api.post("/api/instances", json={
                "name": name, "model_path": str(server.models / "tiny.gguf")})
            assert made.status_code == 201, made.text
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if "/auth/refresh" in r.url else None)
    sign_in(page, server, "admin")
    first = page.evaluate("sessionStorage.getItem('llamactl.token')")
    wait_past(time.time() + 2 * SHORT_TTL)  # the first token has ended, twice over
    delete_in_the_page(page, "keep-1")
    expect(page.locator("#signin")).to_be_hidden()
    assert refreshes
    assert page.evaluate("sessionStorage.getItem('llamactl.token')") != first

    page.reload()  # the stored token goes on being refreshed after a reload
    page.get_by_role("heading", name="Instances").wait_for()
    wait_past(time.time() + 2 * SHORT_TTL)
    delete_in_the_page(page, "keep-2")
    expect(page.locator("#signin")).to_be_hidden()
    with fresh_api(server.url) as api:
        assert api.get("/api/instances").json()["instances"] == []


def test_feed_reconnects_after_a_restart_and_rows_update_again(own_server: ServerFactory,
                                                               page: Page) -> None:
    # Tokens of an hour: a 5-second one could end while the server is down, and that is the
    # sign-in form's business, not the feed's.
    server, process = own_server(3600)
    with fresh_api(server.url) as api:
        made = api.post("/api/instances", json={
            "name": "comes-back", "model_path": str(server.models / "broken.gguf")})
        assert made.status_code == 201, made.text
    sign_in(page, server, "op")
    page.evaluate("window.notReloaded = true")
    status = page.locator('tr[data-name="comes-back"] .status')
    expect(status).to_have_text("stopped")

    process.stop()  # the server side closes the socket
    notice = page.locator("#feed-state")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("reconnecting")
    process.start()
    expect(notice).to_be_hidden(timeout=60_000)

    with fresh_api(server.url) as api:  # a change after the reconnect reaches the row
        assert api.post("/api/instances/comes-back/start").status_code == 200
    expect(status).to_have_text("failed", timeout=60_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#signin")).to_be_hidden()
