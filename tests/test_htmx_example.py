"""The htmx shop (``examples/htmx``) through the Flask test client, as htmx
would drive it: every fragment, the nested delivery conversation, checkout
with ``HX-Redirect``, the read-only badge, the security headers.
``tests/browser/test_htmx_browser.py`` does the same in Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import typing as t

import pytest
from flask import Flask

from examples import htmx
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import RedisStore
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient
from tests.npm_packages import npm_file

HX = {"HX-Request": "true"}


@pytest.fixture(params=["session", "memory"])
def shop_app(request: pytest.FixtureRequest) -> Flask:
    app = htmx.create_app(
        {"TESTING": True, "SECRET_KEY": "test", "CONVERSATION_STORE": request.param}
    )
    app.test_client_class = ConversationClient
    return app


class Shopper:
    """One tab of the shop: a :class:`ConversationClient` that posts the
    page's forms with their CSRF token, as htmx does.
    """

    def __init__(self, client: ConversationClient) -> None:
        self.client = client
        page = client.get("/").text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found is not None
        self.token = found.group(1)

    def post(self, path: str, **data: str) -> t.Any:
        return self.client.post(path, data={"csrf_token": self.token, **data}, headers=HX)

    def get(self, path: str) -> t.Any:
        return self.client.get(path, headers=HX)

    def add(self, product: int) -> t.Any:
        return self.post("/cart/items", product=str(product))

    @property
    def cid(self) -> str | None:
        return self.client.cid


@pytest.fixture
def tab(shop_app: Flask) -> Shopper:
    return Shopper(t.cast(ConversationClient, shop_app.test_client()))


def lines(html: str) -> dict[str, int]:
    found = re.findall(
        r'<span class="quantity">(\d+) ×</span>\s*<span class="name">([^<]+)</span>', html
    )
    return {name: int(quantity) for quantity, name in found}


def choose_slot(tab: Shopper, window: str = "12:00-16:00") -> tuple[str, str]:
    cart = t.cast(str, tab.cid)
    modal = tab.post("/delivery").text
    child = t.cast(str, tab.cid)
    assert child != cart
    day = re.findall(r'name="day" value="([^"]+)"', modal)[0]
    assert f'name="window" value="{window}"' in tab.post("/delivery/day", day=day).text
    done = tab.post("/delivery/done", window=window)
    assert '<div id="modal" hx-swap-oob="true"></div>' in done.text
    assert tab.cid == cart
    return day, child


def test_first_add_begins_the_cart(tab: Shopper) -> None:
    assert tab.get("/cart/badge").text == "0"
    rv = tab.add(1)
    assert tab.cid is not None
    assert lines(rv.text) == {"Apple": 1}
    assert rv.headers["HX-Trigger"] == "cart-changed"
    assert rv.headers["HX-Replace-Url"] == f"/?cid={tab.cid}"
    tab.add(1)
    assert lines(tab.add(3).text) == {"Apple": 2, "Sourdough bread": 1}
    assert tab.get("/cart/badge").text == "3"
    assert lines(tab.post("/cart/items/1/remove").text) == {"Apple": 1, "Sourdough bread": 1}
    assert lines(tab.post("/cart/items/3/remove").text) == {"Apple": 1}
    assert lines(tab.post("/cart/items/3/remove").text) == {"Apple": 1}
    assert tab.add(99).status_code == 404


def test_two_tabs_have_their_own_cart(shop_app: Flask, tab: Shopper) -> None:
    other = Shopper(tab.client.new_tab())
    tab.add(1)
    other.add(2)
    tab.add(4)
    assert tab.cid != other.cid
    assert lines(tab.get("/cart").text) == {"Apple": 1, "Mountain cheese": 1}
    assert lines(other.get("/cart").text) == {"Pear": 1}
    # The address of a tab names its cart: the page renders it.
    assert lines(tab.client.get(f"/?cid={tab.cid}").text) == {"Apple": 1, "Mountain cheese": 1}


def test_delivery_slot_is_a_nested_conversation(tab: Shopper) -> None:
    tab.add(5)
    cart = tab.cid
    modal = tab.post("/delivery").text
    assert re.search(r"Cart</span>\s*<span aria-hidden=\"true\">›</span>\s*<span", modal)
    child = tab.cid
    # The badge reads the cart through the nested conversation.
    assert tab.get("/cart/badge").text == "1"
    assert "Pick a day." in tab.post("/delivery/day", day="someday").text
    # Back to the cart: the nested conversation ends, the cart is untouched.
    back = tab.post("/delivery/cancel")
    assert "not chosen yet" in back.text
    assert tab.cid == cart
    assert tab.client.get(f"/cart?cid={child}").status_code == 302  # gone
    day, _ = choose_slot(tab)
    assert f"{day}, 12:00-16:00" in tab.get("/cart").text


def test_checkout_lands_on_the_receipt_once(shop_app: Flask, tab: Shopper) -> None:
    tab.add(3)
    assert "Choose a delivery slot first." in tab.post("/checkout").text
    day, _ = choose_slot(tab, "08:00-12:00")
    tab.post("/cart/note", note="Happy birthday!")
    cart = tab.cid
    rv = tab.post("/checkout")
    assert rv.status_code == 200
    assert rv.headers["HX-Redirect"] == f"/receipt?cid={cart}"
    receipt = tab.client.get(rv.headers["HX-Redirect"])
    assert receipt.headers["Cache-Control"] == "no-store"
    assert re.search(r'class="reference">CS-[0-9A-F]{6}<', receipt.text)
    assert f"{day}, 08:00-12:00" in receipt.text
    assert "Happy birthday!" in receipt.text
    assert lines(receipt.text) == {"Sourdough bread": 1}
    # Reloaded: the cart is closed, the shop says so.
    again = tab.client.get(f"/receipt?cid={cart}")
    assert (again.status_code, again.location) == (302, "/")
    assert "That cart is closed" in tab.client.get("/").text
    # From htmx (a poll of a page left open): a full page load, not a swap.
    poll = tab.client.get(f"/cart/badge?cid={cart}", headers=HX)
    assert (poll.status_code, poll.headers["HX-Redirect"]) == (200, "/")


def test_pages_of_a_cart_need_one(tab: Shopper) -> None:
    for path in ("/cart/items/1/remove", "/cart/note", "/delivery", "/checkout"):
        assert tab.post(path).status_code == 400, path
    assert tab.client.get("/receipt").location == "/"
    assert lines(tab.get("/cart").text) == {}


def test_forms_need_their_csrf_token(tab: Shopper) -> None:
    assert tab.client.post("/cart/items", data={"product": "1"}, headers=HX).status_code == 400


def test_scripts_run_by_nonce_only(shop_app: Flask) -> None:
    client = shop_app.test_client()
    rv = client.get("/")
    policy = rv.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)  # type: ignore[union-attr]
    tags = re.findall(r"<script [^>]*>", rv.text)
    assert len(tags) == 2 and all(f'nonce="{nonce}"' in tag for tag in tags)
    assert 'src="/_flask_conversation/static/conversation.js"' in tags[0]
    assert f'src="{htmx.HTMX_URL}"' in tags[1]
    assert f'integrity="{htmx.HTMX_INTEGRITY}"' in tags[1]
    # A new nonce for every response.
    assert client.get("/").headers["Content-Security-Policy"] != policy


def test_default_htmx_checksum_is_that_of_the_npm_package() -> None:
    version = re.search(r"htmx\.org@([\d.]+)/", htmx.HTMX_URL).group(1)  # type: ignore[union-attr]
    script = npm_file("htmx.org", version, "dist/htmx.min.js").read_bytes()
    digest = base64.b64encode(hashlib.sha384(script).digest()).decode()
    assert f"sha384-{digest}" == htmx.HTMX_INTEGRITY


def test_another_htmx_copy_drops_the_checksum() -> None:
    app = htmx.create_app({"SECRET_KEY": "test", "HTMX_URL": "/static/htmx.min.js"})
    page = app.test_client().get("/").text
    assert '<script src="/static/htmx.min.js"' in page
    assert "integrity=" not in page


def test_random_secret_key_when_unset(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with caplog.at_level(logging.WARNING, logger="examples.htmx"):
        first, second = htmx.create_app(), htmx.create_app()
    assert first.secret_key and first.secret_key != second.secret_key
    assert "SECRET_KEY is not set" in caplog.text
    assert type(ConversationScope.get_store(first)) is SessionStore
    assert first.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_redis_url_selects_redis(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    app = htmx.create_app({"SECRET_KEY": "test"})
    store = ConversationScope.get_store(app)
    try:
        assert isinstance(store, RedisStore)
    finally:
        store.client.close()  # type: ignore[attr-defined]


def test_memory_store_is_a_choice() -> None:
    app = htmx.create_app({"SECRET_KEY": "test", "CONVERSATION_STORE": "memory"})
    assert isinstance(ConversationScope.get_store(app), MemoryStore)
