"""Fixtures for the browser tests: Debian's Chromium driven by Playwright,
the example applications served by a real WSGI server on 127.0.0.1, each
started here and stopped by the tests, and the session's throwaway
redis-server (``redis_url``, from :mod:`tests.redis_servers`).

Every test runs once per store (``session``: the cookie session, ``redis``:
a :class:`~flask_conversation.stores.RedisStore`) and leaves a screenshot
of each of its tabs in ``tests/artifacts/``, whether it passed or not.
"""

from __future__ import annotations

import contextlib
import re
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from tests.live_server import LiveServer

if t.TYPE_CHECKING:
    import redis
    from playwright.sync_api import Browser
    from playwright.sync_api import BrowserContext
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent.parent / "artifacts"


@pytest.fixture(scope="package")
def browser() -> t.Iterator[Browser]:
    # Package scope: Playwright's sync API keeps an event loop running in
    # this thread until it stops, which async Flask views in later tests
    # would trip over.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(params=["session", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    """Which store the application keeps conversations in."""
    return str(request.param)


@pytest.fixture
def store_redis(store: str, request: pytest.FixtureRequest) -> redis.Redis | None:
    """A client of the test redis-server for the ``redis`` store, emptied
    before the test and closed after it; ``None`` for the session store.
    """
    if store != "redis":
        return None
    return t.cast("redis.Redis", request.getfixturevalue("redis_client"))


@pytest.fixture
def store_config(store: str, store_redis: redis.Redis | None) -> dict[str, t.Any]:
    """The configuration that selects the store, as a user would write it."""
    if store == "redis":
        return {"CONVERSATION_STORE": "redis", "CONVERSATION_REDIS": store_redis}
    return {"CONVERSATION_STORE": "session"}


@pytest.fixture
def serve() -> t.Iterator[t.Callable[[Flask], str]]:
    """Serve an application; returns its base URL. Stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(app: Flask) -> str:
            return stack.enter_context(LiveServer(app)).url

        yield start


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> t.Iterator[BrowserContext]:
    """One browser window: its tabs share cookies, like a user's. Each tab
    is saved as a screenshot when the test ends.
    """
    context = browser.new_context(viewport={"width": 1100, "height": 640})
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
        for number, page in enumerate(context.pages, 1):
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{name}-tab{number}.png"), full_page=True)
        context.close()


@pytest.fixture
def snap(store: str) -> t.Callable[[Page, str], None]:
    """Save a screenshot of a moment worth showing, named after it and the
    store, in ``tests/artifacts/``.
    """

    def save(page: Page, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{store}.png"))

    return save
