"""The htmx shop in a real browser, with the real htmx from its npm
package (htmx 2 and htmx 4), through a real server, with the session and
the Redis store: two tabs with a cart each, the nested delivery
conversation in a modal, the receipt after checkout, the badge that polls
read-only while a slow request holds the cart, and a cart gone while its
page is open.
"""

from __future__ import annotations

import re
import threading
import typing as t

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Locator
from playwright.sync_api import Page
from playwright.sync_api import Response

from examples.htmx import create_app
from examples.htmx import views
from tests.npm_packages import npm_file

#: Where the pages load htmx from; the browser gets it from the npm package.
HTMX_URL = "https://htmx.invalid/htmx.min.js"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # htmx 2 with both stores; htmx 4 with one, where the stores would add
    # nothing that htmx 2 does not show already.
    metafunc.parametrize(
        ("htmx_version", "store"),
        [("2", "session"), ("2", "redis"), ("4", "session")],
        ids=["htmx2-session", "htmx2-redis", "htmx4-session"],
    )


@pytest.fixture
def shot(snap: t.Callable[[Page, str], None], htmx_version: str) -> t.Callable[[Page, str], None]:
    """``snap``, for htmx 2 under the names the documentation's pictures
    have (``htmx-cart-session.png`` becomes ``docs/_static/screenshots/htmx-cart.png``).
    """

    def save(page: Page, name: str) -> None:
        snap(page, name if htmx_version == "2" else f"{name}-htmx{htmx_version}")

    return save


@pytest.fixture
def config(store_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The shop's settings; a test may change them before ``site``."""
    return {
        **store_config,
        "SECRET_KEY": "browser-tests",
        "HTMX_URL": HTMX_URL,
        "BADGE_POLL": "300ms",
    }


@pytest.fixture
def site(serve: t.Callable[..., str], config: dict[str, t.Any]) -> str:
    return serve(create_app(config))


@pytest.fixture
def shop(context: BrowserContext, htmx_version: str) -> t.Iterator[BrowserContext]:
    """The browser window, with htmx served from its npm package; no page
    may break the Content Security Policy or throw an error.
    """
    script = npm_file("htmx.org", htmx_version, "dist/htmx.min.js")
    context.route(
        HTMX_URL,
        lambda route: route.fulfill(path=str(script), content_type="text/javascript"),
    )
    problems: list[str] = []
    context.on(
        "console",
        lambda message: (
            problems.append(message.text) if message.type in ("error", "warning") else None
        ),
    )
    context.on("weberror", lambda error: problems.append(str(error.error)))
    yield context
    assert [p for p in problems if "Content Security Policy" in p or "Error" in p] == []


def open_shop(context: BrowserContext, site: str) -> Page:
    page = context.new_page()
    page.goto(site)
    expect(page.get_by_role("heading", level=1)).to_have_text("Fresh today")
    page.wait_for_function("() => window.htmx && window.flaskConversation")
    return page


def cid(page: Page) -> str | None:
    return t.cast("str | None", page.evaluate("window.flaskConversation.cid"))


def cart_of(page: Page) -> dict[str, int]:
    lines = page.locator("#cart .line")
    names = lines.locator(".name").all_inner_texts()
    quantities = [int(q.split()[0]) for q in lines.locator(".quantity").all_inner_texts()]
    return dict(zip(names, quantities, strict=True))


def expect_cart(page: Page, items: dict[str, int]) -> None:
    lines = page.locator("#cart .line")
    expect(lines).to_have_count(len(items))
    for name, quantity in items.items():
        expect(lines.filter(has_text=name).locator(".quantity")).to_have_text(f"{quantity} ×")
    expect(page.locator("#badge")).to_have_text(str(sum(items.values())))


def settled(page: Page) -> None:
    """Wait until htmx is done with every form's request: the response is
    handled (the page script learned from it), swapped and settled (htmx
    binds swapped content only then). The badge, which polls on its own
    every few hundred milliseconds, is left out: its swaps are not what a
    step waits for, and on a busy machine it may seldom be at rest.
    """
    # A function, not an expression: the page's policy forbids eval.
    page.wait_for_function(
        "() => !document.querySelector('form.htmx-request, "
        ".htmx-swapping:not(#badge), .htmx-settling:not(#badge), .htmx-added')"
    )


def press(button: Locator) -> None:
    """Click a button once htmx is done with the page."""
    settled(button.page)
    button.click()


def add(page: Page, name: str) -> None:
    with page.expect_response(re.compile(r"/cart/items$")) as response:
        press(page.get_by_role("button", name=f"Add {name}"))
    assert response.value.status == 200
    settled(page)


def remove(page: Page, name: str) -> None:
    with page.expect_response(re.compile(r"/remove$")) as response:
        press(page.get_by_role("button", name=f"Remove one {name}"))
    assert response.value.status == 200
    settled(page)


def choose_slot(page: Page, day_index: int, window: str) -> tuple[str, str]:
    """Open the modal, take both steps, and return the cids of the cart and
    of the nested conversation the modal ran in.
    """
    cart_cid = cid(page)
    press(page.get_by_role("button", name=re.compile("Choose a delivery slot|Change the slot")))
    modal = page.get_by_role("dialog")
    expect(modal.get_by_role("heading")).to_have_text("Choose a delivery slot")
    child = cid(page)
    assert child not in (None, cart_cid)
    modal.get_by_role("radio").nth(day_index).check()
    press(modal.get_by_role("button", name="Next"))
    modal.get_by_role("radio", name=window).check()
    press(modal.get_by_role("button", name="Use this slot"))
    expect(modal).to_have_count(0)
    assert cid(page) == cart_cid
    return t.cast(str, cart_cid), t.cast(str, child)


def test_two_tabs_two_carts_interleaved(
    shop: BrowserContext, site: str, shot: t.Callable[[Page, str], None]
) -> None:
    first, second = open_shop(shop, site), open_shop(shop, site)
    assert cid(first) is None and cid(second) is None

    add(first, "Apple")
    add(second, "Pear")
    add(first, "Apple")
    add(second, "Mountain cheese")
    add(first, "Sourdough bread")
    remove(second, "Pear")
    remove(first, "Apple")
    add(second, "Green tea")

    expect_cart(first, {"Apple": 1, "Sourdough bread": 1})
    expect_cart(second, {"Mountain cheese": 1, "Green tea": 1})
    assert None not in (cid(first), cid(second))
    assert cid(first) != cid(second)
    # The address names the cart, so a reload keeps it.
    expect(first).to_have_url(f"{site}/?cid={cid(first)}")
    kept = cid(second)
    second.reload()
    expect_cart(second, {"Mountain cheese": 1, "Green tea": 1})
    assert cid(second) == kept
    shot(first, "htmx-cart")


def test_delivery_slot_in_a_nested_conversation(
    shop: BrowserContext, site: str, shot: t.Callable[[Page, str], None]
) -> None:
    page, other = open_shop(shop, site), open_shop(shop, site)
    add(page, "Apple")
    add(other, "Pear")
    cart = cid(page)

    press(page.get_by_role("button", name="Choose a delivery slot"))
    modal = page.get_by_role("dialog")
    expect(modal.locator(".breadcrumbs")).to_have_text(re.compile(r"Cart\s*›\s*Delivery slot"))
    child = cid(page)
    assert child not in (None, cart)
    # The badge polls with the nested cid and reads the cart through it. A
    # poll sent just before the modal opened may still answer with the
    # cart's cid: wait for one sent from the child.
    with page.expect_response(
        lambda r: (
            r.url.endswith("/cart/badge") and r.request.headers.get("x-conversation-id") == child
        )
    ) as polled:
        pass
    assert (polled.value.status, polled.value.text()) == (200, "1")
    modal.get_by_role("radio").first.check()
    press(modal.get_by_role("button", name="Next"))
    expect(modal.get_by_role("group")).to_contain_text("Time on")
    shot(page, "htmx-delivery-modal")

    # Back to the cart without a slot: the cart is as it was.
    press(modal.get_by_role("button", name="Back to the cart"))
    expect(modal).to_have_count(0)
    expect(page.locator("#cart .slot")).to_have_text("not chosen yet")
    assert cid(page) == cart

    # Again, to the end: the slot is handed to the cart.
    _, second_child = choose_slot(page, 1, "12:00-16:00")
    assert second_child != child
    expect(page.locator("#cart .slot")).to_contain_text("12:00-16:00")
    expect_cart(page, {"Apple": 1})
    # The other tab's cart has no slot and its own items.
    other.reload()
    expect_cart(other, {"Pear": 1})
    expect(other.locator("#cart .slot")).to_have_text("not chosen yet")


def test_checkout_lands_on_the_receipt_once(
    shop: BrowserContext, site: str, shot: t.Callable[[Page, str], None]
) -> None:
    page = open_shop(shop, site)
    add(page, "Sourdough bread")
    add(page, "Mountain cheese")
    add(page, "Mountain cheese")
    press(page.get_by_role("button", name="Check out"))
    expect(page.get_by_role("alert")).to_have_text("Choose a delivery slot first.")
    cart, _ = choose_slot(page, 0, "08:00-12:00")
    page.get_by_label("Gift note").fill("Happy birthday!")
    press(page.get_by_role("button", name="Save the note"))
    expect(page.get_by_role("status")).to_have_text("Saved")

    with page.expect_navigation():
        press(page.get_by_role("button", name="Check out"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    assert page.url.endswith(f"/receipt?cid={cart}")
    expect(page.locator(".reference")).to_have_text(re.compile(r"CS-[0-9A-F]{6}"))
    expect(page.locator(".line .name")).to_have_text(["Sourdough bread", "Mountain cheese"])
    expect(page.locator(".total strong")).to_have_text("18.00 €")
    expect(page.locator(".slot")).to_contain_text("08:00-12:00")
    expect(page.locator(".note-text")).to_contain_text("Happy birthday!")
    assert cid(page) is None
    shot(page, "htmx-receipt")

    # The receipt lived for one request: a reload is a full page (the shop,
    # with a message), never a fragment.
    response = page.reload()
    assert response is not None and response.status == 200
    assert page.url == f"{site}/"
    expect(page).to_have_title("Fresh today · Corner Shop")
    expect(page.get_by_role("status")).to_have_text("That cart is closed: checked out or expired.")
    expect(page.locator("#cart .empty")).to_be_visible()
    shot(page, "htmx-closed")


def test_badge_answers_while_a_slow_save_holds_the_cart(
    shop: BrowserContext,
    site: str,
    config: dict[str, t.Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_check(note: str) -> None:
        started.set()
        release.wait(30)

    monkeypatch.setattr(views, "check_note", slow_check)
    config["CONVERSATION_LOCK_TIMEOUT"] = 1
    page = open_shop(shop, site)
    add(page, "Green tea")
    cart = cid(page)

    events: list[tuple[str, Response]] = []
    page.on("response", lambda r: events.append(("badge" if "/cart/badge" in r.url else r.url, r)))
    try:
        page.get_by_label("Gift note").fill("Slowly")
        press(page.get_by_role("button", name="Save the note"))
        assert started.wait(10)
        mark = len(events)
        # A request that takes the cart's lock waits for it and gives up.
        assert page.evaluate("fetch('/cart').then(r => r.status)") == 503
        # The badge keeps answering meanwhile, from the last committed state.
        for _ in range(200):
            if sum(1 for kind, _ in events[mark:] if kind == "badge") >= 3:
                break
            page.wait_for_timeout(50)
        assert not any(kind.endswith("/cart/note") for kind, _ in events)
        badges = [r for kind, r in events[mark:] if kind == "badge"]
        assert len(badges) >= 3
        assert {(r.status, r.text()) for r in badges} == {(200, "1")}
        # The 503 did not make the page forget its cart.
        assert cid(page) == cart
    finally:
        release.set()
    expect(page.get_by_role("status")).to_have_text("Saved")
    assert all(r.status == 200 for kind, r in events if kind == "badge")


def test_a_cart_gone_while_its_page_is_open(shop: BrowserContext, site: str) -> None:
    page = open_shop(shop, site)
    add(page, "Apple")
    assert cid(page) is not None
    # The session is gone (cleared cookies): the next poll of the badge names
    # a cart nobody has any more. htmx gets HX-Redirect and loads the shop
    # in full, with the message, instead of swapping a page into the badge.
    shop.clear_cookies()
    with page.expect_navigation(url=f"{site}/"):
        pass
    expect(page).to_have_title("Fresh today · Corner Shop")
    expect(page.get_by_role("status")).to_have_text("That cart is closed: checked out or expired.")
    expect(page.locator("#badge")).to_have_text("0")
    assert cid(page) is None
