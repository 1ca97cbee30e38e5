"""The Playground (issue 34) in a real browser: a real instance's answer streamed through
/v1 with the signed-in user's token, its figures after it, a raw Completion mode, and the
conversation kept in the tab across a reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, open_view, running_instance, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
NAME = "pg-tiny"


@pytest.fixture(scope="module")
def running(dashboard_server: Dashboard) -> Iterator[str]:
    yield from running_instance(dashboard_server, NAME)


def test_chat_streams_the_answer_and_its_figures(dashboard_server: Dashboard, running: str,
                                                 page: Page) -> None:
    sign_in(page, dashboard_server, "op")
    open_view(page, "Playground")
    page.get_by_label("Model", exact=True).select_option(running)
    page.get_by_text("Parameters").click()
    page.get_by_label("Max tokens", exact=True).fill("8")
    page.get_by_label("Message", exact=True).fill("Say hello")
    with page.expect_request(lambda r: r.url.endswith("/v1/chat/completions")) as asked:
        page.get_by_role("button", name="Send", exact=True).click()
    request = asked.value
    signed_in = page.evaluate("sessionStorage.getItem('llamactl.token')")
    assert request.headers["authorization"] == f"Bearer {signed_in}"
    body = request.post_data_json
    assert body["stream"] is True
    assert body["model"] == running
    assert body["messages"][-1] == {"role": "user", "content": "Say hello"}
    assert body["max_tokens"] == 8
    conversation = page.get_by_role("log", name="Conversation")
    expect(conversation.locator(".msg-user")).to_have_text("YouSay hello")
    answer = conversation.locator(".msg-assistant .msg-text")
    expect(answer).not_to_be_empty(timeout=60_000)
    stats = page.locator("#pg-stats")
    expect(stats).to_contain_text("tokens/s", timeout=60_000)
    expect(stats).to_contain_text("first token after")
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    said = answer.text_content()
    page.reload()
    expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible()
    expect(conversation.locator(".msg-assistant .msg-text")).to_have_text(said or "")


def test_completion_mode_sends_a_raw_prompt(dashboard_server: Dashboard, running: str,
                                            page: Page) -> None:
    sign_in(page, dashboard_server, "admin")
    open_view(page, "Playground")
    page.get_by_label("Model", exact=True).select_option(running)
    page.get_by_label("Completion", exact=True).check()
    page.get_by_text("Parameters").click()
    page.get_by_label("Max tokens", exact=True).fill("4")
    page.get_by_label("Message", exact=True).fill("Once upon a time")
    with page.expect_request(lambda r: r.url.endswith("/v1/completions")) as asked:
        page.get_by_role("button", name="Send", exact=True).click()
    assert asked.value.post_data_json["prompt"] == "Once upon a time"
    expect(page.locator("#pg-stats")).to_contain_text("tokens", timeout=60_000)
    expect(page.get_by_role("log", name="Conversation").locator(".msg-assistant .msg-text")
           ).not_to_be_empty()
