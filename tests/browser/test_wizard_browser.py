"""The sign-up wizard in a real browser: back links keep the answers, and
a tab whose conversation expired starts again at step 1 with a message.
"""

from __future__ import annotations

import time
import typing as t

import pytest
import redis
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Page

from examples.wizard import create_app
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import SessionStore


class ShiftedClock:
    """Wall-clock time, plus however far the test moved it forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def shifted_clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def site(
    serve: t.Callable[..., str],
    store: str,
    store_redis: redis.Redis | None,
    shifted_clock: ShiftedClock,
) -> str:
    # The store is built here only to give it the test's clock.
    conv_store: ConversationStore
    if store_redis is not None:
        from flask_conversation.stores import RedisStore

        conv_store = RedisStore(store_redis, prefix="wizard-test:", clock=shifted_clock)
    else:
        conv_store = SessionStore(clock=shifted_clock)
    app = create_app({"SECRET_KEY": "browser-tests", "CONVERSATION_STORE": conv_store})
    return serve(app)


def heading(page: Page) -> t.Any:
    return expect(page.get_by_role("heading", level=1))


def start(page: Page, site: str) -> None:
    page.goto(site + "/")
    page.fill("#email", "ada@example.com")
    page.fill("#password", "correct horse")
    page.get_by_role("button", name="Next").click()
    heading(page).to_have_text("Step 2: about you")
    page.fill("#name", "Ada Lovelace")
    page.select_option("#country", "Portugal")
    page.get_by_role("button", name="Next").click()
    heading(page).to_contain_text("Step 3")


def test_back_links_keep_answers(context: BrowserContext, site: str) -> None:
    page = context.new_page()
    start(page, site)
    page.get_by_role("checkbox", name="Events").check()
    page.get_by_role("button", name="Next").click()
    heading(page).to_have_text("Step 4: check and create")

    page.get_by_role("link", name="← Back").click()
    expect(page.get_by_role("checkbox", name="Events")).to_be_checked()
    page.get_by_role("link", name="← Back").click()
    expect(page.locator("#name")).to_have_value("Ada Lovelace")
    expect(page.locator("#country")).to_have_value("Portugal")
    page.get_by_role("link", name="Account").click()
    expect(page.locator("#email")).to_have_value("ada@example.com")

    page.fill("#email", "ada@lovelace.example")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("dd.email")).to_contain_text("ada@lovelace.example")
    expect(page.locator("dd.topics")).to_contain_text("Events")
    page.get_by_role("button", name="Create my account").click()
    heading(page).to_have_text("Welcome, Ada Lovelace!")


def test_expired_tab_lands_on_step_one_with_message(
    context: BrowserContext,
    site: str,
    shifted_clock: ShiftedClock,
    snap: t.Callable[[Page, str], None],
) -> None:
    page = context.new_page()
    start(page, site)

    # Sixteen minutes later (the wizard's timeout is fifteen) the user
    # goes on in the same tab.
    shifted_clock.offset += 16 * 60
    page.get_by_role("checkbox", name="Travel deals").check()
    page.get_by_role("button", name="Next").click()

    heading(page).to_have_text("Step 1: your account")
    assert page.url == site + "/"
    expect(page.get_by_role("alert")).to_contain_text("Please start again")
    expect(page.locator("#email")).to_have_value("")
    snap(page, "wizard-expired")

    # Starting again works, and the message is gone.
    start(page, site)
    expect(page.get_by_role("alert")).to_have_count(0)
