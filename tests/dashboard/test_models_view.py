"""The Models view (issue 34) in a real browser: the library of a real ``llamactl serve`` that
pulls from the stand-in Hub (tests/support/stand_in_hub.py): a pull whose progress bar moves
live and ends in the table, one cancelled, failing ones with their message, Delete (409
MODEL_IN_USE explained), "New instance from this model", what each role sees, and the view at
390 pixels."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Dashboard, open_view, sign_in
from tests.support.clients import PASSWORDS, ServerProcess, auth_section, server_document
from tests.support.helpers import free_port, write_config
from tests.support.stand_in_hub import REPO, StandInHub, tiny_repo

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
HALF = 256 * 1024  # the stand-in Hub holds a file's stream here while a test looks
OWN_MODEL = "own-tiny.gguf"  # in instances.model_dirs, outside models.dir
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


@dataclass
class Library:
    server: Dashboard
    hub: StandInHub
    tiny: bytes

    def add_repo(self, repo: str, *, sha256: str | None = None) -> str:
        """A repo of its own holding the tiny model as Q8_0; its pull source."""
        self.hub.add(repo, "tiny-Q8_0.gguf", self.tiny, sha256=sha256)
        return f"{repo}:Q8_0"

    def hold(self) -> None:
        self.hub.release.clear()
        self.hub.hold_after = HALF

    def let_go(self) -> None:
        self.hub.hold_after = None
        self.hub.release.set()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, llama_server_bin: str,
            tiny_model_file: Path) -> Iterator[Library]:
    root = tmp_path_factory.mktemp("models-view")
    hub = tiny_repo(StandInHub().start(), root / "hub", tiny_model_file)
    own = root / "own"  # the user's own folder (instances.model_dirs): never deleted
    own.mkdir()
    (own / OWN_MODEL).write_bytes(tiny_model_file.read_bytes())
    document = server_document(llama_server_bin, auth=auth_section(),
                               models={"dir": str(root / "library"), "hub_url": hub.url})
    document["instances"]["model_dirs"] = [str(own)]
    process = ServerProcess(root / "data", write_config(root / "config.yaml", document),
                            free_port())
    try:
        process.start()
        tokens = {user: httpx.post(f"{process.url}/api/auth/login", trust_env=False, json={
            "username": user, "password": password}).json()["token"]
            for user, password in PASSWORDS.items()}
        yield Library(Dashboard(process.url, root / "library", tokens), hub,
                      tiny_model_file.read_bytes())
    finally:
        hub.release.set()
        process.stop()
        hub.stop()


def pull_bar(page: Page, source: str) -> Locator:
    return page.get_by_role("progressbar", name=source, exact=True)


def model_row(page: Page, model_id: str) -> Locator:
    return page.locator("#model-table").get_by_role("row").filter(
        has=page.get_by_role("cell", name=model_id, exact=True))


def start_pull(page: Page, source: str) -> None:
    page.get_by_label("Source", exact=True).fill(source)
    page.get_by_role("button", name="Pull", exact=True).click()


def test_a_pull_progresses_live_and_lands_in_the_table(library: Library, page: Page) -> None:
    source = library.add_repo("tester/progress-GGUF")
    sign_in(page, library.server, "op")
    open_view(page, "Models")
    library.hold()
    try:
        start_pull(page, source)
        bar = pull_bar(page, source)
        # Held at HALF of 551 KiB by the Hub: the bar shows the bytes so far, from events.
        expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^(4[0-9]|5[0-9])$"))
        expect(page.locator("#pull-list")).to_contain_text("downloading")
        drawn = bar.evaluate("e => e.firstElementChild.getBoundingClientRect().width"
                             " / e.getBoundingClientRect().width")
        assert 0.35 < drawn < 0.65, f"the bar's fill is drawn at {drawn:.0%}"
        expect(page.get_by_label("Source", exact=True)).to_have_value("")
    finally:
        library.let_go()
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#pull-list")).to_contain_text("done")
    row = model_row(page, "tester/progress-GGUF/tiny-Q8_0.gguf")
    expect(row).to_have_count(1)  # the table reloads when the pull is done
    expect(row).to_contain_text("F32")
    expect(row).to_contain_text("KiB")
    with library.server.api() as api:
        listed = {m["id"]: m for m in api.get("/api/models").json()["models"]}
    context = listed["tester/progress-GGUF/tiny-Q8_0.gguf"]["context_length"]
    expect(row.get_by_role("cell").nth(3)).to_have_text(f"{context:,}")
    expect(row.get_by_role("button", name="Pull")).to_have_count(0)


def test_a_pull_is_cancelled_with_the_keyboard(library: Library, page: Page) -> None:
    source = library.add_repo("tester/cancel-GGUF")
    sign_in(page, library.server, "op")
    open_view(page, "Models")
    library.hub.rate = 100_000  # bytes a second: progress events keep coming for seconds
    try:
        start_pull(page, source)
        item = page.locator("#pull-list li").filter(has=pull_bar(page, source))
        expect(item).to_contain_text("downloading")
        cancel = item.get_by_role("button", name=f"Cancel {source}", exact=True)
        cancel.focus()
        before = pull_bar(page, source).get_attribute("aria-valuenow")
        expect(pull_bar(page, source)).not_to_have_attribute("aria-valuenow", before or "")
        expect(cancel).to_be_focused()  # the item was updated in place, not redrawn
        page.keyboard.press("Enter")
        expect(item).to_contain_text("cancelled")
        expect(item.get_by_role("button")).to_have_count(0)
        expect(page.get_by_label("Source", exact=True)).to_be_focused()
    finally:
        library.hub.rate = None
    with library.server.api() as api:
        states = {p["source"]: p["status"] for p in api.get("/api/models/pulls").json()["pulls"]}
    assert states[source] == "cancelled"
    expect(model_row(page, "tester/cancel-GGUF/tiny-Q8_0.gguf")).to_have_count(0)


def test_failing_pulls_say_why(library: Library, page: Page) -> None:
    sign_in(page, library.server, "op")
    open_view(page, "Models")
    source = page.get_by_label("Source", exact=True)
    start_pull(page, f"{REPO}:Q5_K_S")  # the Hub has no such quant: refused at once
    error = page.locator("#pull-error")
    expect(error).to_contain_text("Q5_K_S")
    expect(source).to_have_value(f"{REPO}:Q5_K_S")  # kept, to be corrected
    expect(source).to_have_attribute("aria-invalid", "true")
    start_pull(page, "not a repo")
    expect(error).not_to_contain_text("Q5_K_S")
    expect(error).to_contain_text("source")
    source.fill("")
    expect(error).to_be_empty()
    # A file whose bytes are not what the Hub says: fails after the download, with why.
    bad = library.add_repo("tester/bad-GGUF", sha256="0" * 64)
    start_pull(page, bad)
    item = page.locator("#pull-list li").filter(has=pull_bar(page, bad))
    expect(item).to_contain_text("failed")
    expect(item).to_contain_text("SHA-256 is not the Hub's")
    expect(model_row(page, "tester/bad-GGUF/tiny-Q8_0.gguf")).to_have_count(0)


def pulled(library: Library, repo: str) -> str:
    """A model of its own in the library (pulled through the API); its id."""
    source = library.add_repo(repo)
    with library.server.api() as api:
        job = api.post("/api/models/pull", json={"source": source}).json()
        for _ in range(300):
            job = api.get(f"/api/models/pulls/{job['id']}").json()
            if job["status"] not in ("queued", "downloading", "verifying"):
                break
            time.sleep(0.05)
    assert job["status"] == "done", job
    return str(job["model"])


def test_new_instance_from_this_model_fills_the_form(library: Library, page: Page) -> None:
    model_id = pulled(library, "tester/new-GGUF")
    sign_in(page, library.server, "op")
    open_view(page, "Models")
    model_row(page, model_id).get_by_role(
        "button", name="New instance from this model", exact=True).click()
    expect(page.get_by_role("heading", name="New instance", exact=True)).to_be_visible()
    assert page.url.endswith("#/instances")
    path = str(library.server.models / model_id)
    expect(page.get_by_label("Model path", exact=True)).to_have_value(path)
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    expect(page.locator("#estimate")).to_contain_text("Estimated memory:")
    page.get_by_label("Name", exact=True).fill("from-library")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("cell", name="from-library", exact=True)).to_be_visible()
    with library.server.api() as api:
        assert api.get("/api/instances/from-library").json()["model_path"] == path
        assert api.delete("/api/instances/from-library").status_code == 200


def test_delete_explains_a_model_in_use_then_deletes(library: Library, page: Page) -> None:
    model_id = pulled(library, "tester/delete-GGUF")
    with library.server.api() as api:
        made = api.post("/api/instances", json={"name": "uses-it", "model": model_id})
        assert made.status_code == 201, made.text
    sign_in(page, library.server, "admin")
    open_view(page, "Models")
    row = model_row(page, model_id)
    expect(row).to_contain_text("uses-it")
    row.get_by_role("button", name=f"Delete {model_id}", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(model_id)
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#model-error")).to_contain_text("in use")
    expect(page.locator("#model-error")).to_contain_text("uses-it")
    expect(row).to_have_count(1)
    with library.server.api() as api:
        assert api.delete("/api/instances/uses-it").status_code == 200
    row.get_by_role("button", name=f"Delete {model_id}", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(row).to_have_count(0)
    expect(page.locator("#model-error")).to_be_empty()
    assert not (library.server.models / model_id).exists()


@pytest.mark.parametrize(("user", "pulls", "creates", "deletes"), [
    ("view", False, False, False), ("op", True, True, False), ("admin", True, True, True)])
def test_each_role_sees_what_it_may_do(library: Library, page: Page, user: str, pulls: bool,
                                       creates: bool, deletes: bool) -> None:
    model_id = pulled(library, "tester/roles-GGUF")
    sign_in(page, library.server, user)
    open_view(page, "Models")
    row = model_row(page, model_id)
    expect(row).to_have_count(1)
    box = page.get_by_label("Source", exact=True)
    expect(box).to_be_visible() if pulls else expect(box).to_be_hidden()
    expect(page.get_by_role("button", name="Pull", exact=True)).to_have_count(1 if pulls else 0)
    expect(row.get_by_role("button", name="New instance from this model")).to_have_count(
        1 if creates else 0)
    expect(row.get_by_role("button", name=f"Delete {model_id}")).to_have_count(
        1 if deletes else 0)


def test_delete_is_offered_only_for_the_librarys_own_files(library: Library,
                                                            page: Page) -> None:
    model_id = pulled(library, "tester/own-GGUF")
    with library.server.api() as api:
        listed = {m["id"]: m["deletable"] for m in api.get("/api/models").json()["models"]}
    assert (listed[model_id], listed[OWN_MODEL]) == (True, False)
    sign_in(page, library.server, "admin")
    open_view(page, "Models")
    pulled_row = model_row(page, model_id)
    expect(pulled_row.get_by_role("button", name=f"Delete {model_id}")).to_have_count(1)
    own = model_row(page, OWN_MODEL)
    expect(own).to_have_count(1)
    expect(own.get_by_role("button", name="New instance from this model")).to_have_count(1)
    expect(own.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_narrow_screens_show_cards_and_no_sideways_scroll(library: Library, page: Page,
                                                         scheme: str) -> None:
    model_id = pulled(library, "tester/a-rather-long-repository-name-for-phones-GGUF")
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, library.server, "admin")
    open_view(page, "Models")
    row = model_row(page, model_id)
    expect(row).to_be_visible()
    expect(page.locator("#model-table thead")).to_be_hidden()  # a card per model
    expect(row.get_by_role("cell").nth(1)).to_be_visible()
    label = row.get_by_role("cell").nth(1).evaluate(
        "e => getComputedStyle(e, '::before').content")
    assert label == '"Size: "'
    source = library.add_repo("tester/phone-GGUF")
    library.hold()
    try:
        start_pull(page, source)
        expect(pull_bar(page, source)).to_be_visible()
        assert page.evaluate(NO_SIDEWAYS), "the Models view scrolls sideways at 390 px"
        button = page.get_by_role("button", name=f"Cancel {source}", exact=True)
        expect(button).to_be_in_viewport()
        button.click()
    finally:
        library.let_go()
    for width in (360, 768, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        assert page.evaluate(NO_SIDEWAYS), f"the Models view scrolls sideways at {width} px"


def test_the_form_picks_a_model_of_the_library(library: Library, page: Page) -> None:
    model_id = pulled(library, "tester/pick-GGUF")
    sign_in(page, library.server, "op")
    page.get_by_role("button", name="New instance", exact=True).click()
    pick = page.get_by_label("or from the library", exact=True)
    expect(pick).to_be_visible()
    choice = pick.locator("option", has_text=model_id)
    expect(choice).to_have_count(1)
    pick.select_option(label=choice.text_content())
    path = str(library.server.models / model_id)
    expect(page.get_by_label("Model path", exact=True)).to_have_value(path)
    expect(page.locator("#estimate")).to_contain_text("Estimated memory:")
