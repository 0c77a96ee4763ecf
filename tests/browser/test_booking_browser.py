"""The booking example in a real browser: two tabs of one window, each
with its own booking, through a real server, with both stores.
"""

from __future__ import annotations

import re
import typing as t
from datetime import date
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Page

from examples.booking import create_app


@pytest.fixture
def site(serve: t.Callable[..., str], store_config: dict[str, t.Any]) -> str:
    return serve(create_app({**store_config, "SECRET_KEY": "browser-tests"}))


def day(offset: int) -> str:
    return (date.today() + timedelta(days=offset)).isoformat()


def book(page: Page, site: str, hotel_id: int) -> None:
    page.goto(f"{site}/hotels/{hotel_id}")
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("When are you coming")


def enter_dates(page: Page, check_in: str, check_out: str, guests: int) -> None:
    page.fill("#check_in", check_in)
    page.fill("#check_out", check_out)
    page.fill("#guests", str(guests))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your booking at")


def pick_room(page: Page, room: str) -> None:
    """Begin the nested room choice and take its first step."""
    page.get_by_role("button", name=re.compile("(Choose a|Change) room")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a room")
    page.get_by_role("radio", name=room).check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(room)


def finish_room(page: Page, bed: str, breakfast: bool) -> None:
    """The second step: ends the nested conversation."""
    page.get_by_role("radio", name=bed).check()
    page.get_by_role("checkbox", name="Breakfast").set_checked(breakfast)
    page.get_by_role("button", name="Use this room").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Your booking at")


def expect_summary(page: Page, hotel: str, check_in: str, check_out: str, room: str) -> None:
    expect(page.locator("dd.hotel-name")).to_contain_text(hotel)
    expect(page.locator("dd.check-in")).to_have_text(check_in)
    expect(page.locator("dd.check-out")).to_have_text(check_out)
    expect(page.locator("dd.room")).to_contain_text(room)


def confirm(page: Page) -> None:
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Booking confirmed")


def test_two_tabs_book_two_hotels_interleaved(
    context: BrowserContext, site: str, snap: t.Callable[[Page, str], None]
) -> None:
    lisbon, innsbruck = context.new_page(), context.new_page()

    book(lisbon, site, 1)
    book(innsbruck, site, 2)
    enter_dates(lisbon, day(30), day(33), 2)
    enter_dates(innsbruck, day(60), day(62), 3)

    # The sidebar of either tab lists both open bookings, in the order they
    # were begun, whichever tab was used last.
    begun = ["Booking: Harbour View", "Booking: Alpine Lodge"]
    for page in (innsbruck, lisbon, innsbruck):
        page.reload()
        expect(page.locator(".open-bookings li > a:not(.sub)")).to_have_text(begun)
    expect(innsbruck.locator(".open-bookings li.current")).to_contain_text("Alpine Lodge")
    expect(lisbon.locator(".open-bookings li.current")).to_contain_text("Harbour View")

    pick_room(innsbruck, "Loft for four")
    pick_room(lisbon, "River view double")
    # Both tabs are now in a nested room choice; the sidebar shows both.
    lisbon.goto(lisbon.url)
    expect(lisbon.locator(".open-bookings a.sub")).to_have_text(["↳ Choosing a room"] * 2)
    expect(lisbon.locator(".breadcrumbs")).to_contain_text("Booking: Harbour View")
    snap(lisbon, "booking-nested-room-choice")
    finish_room(lisbon, "Two single beds", breakfast=True)
    finish_room(innsbruck, "One double bed", breakfast=False)

    expect_summary(lisbon, "Harbour View", day(30), day(33), "River view double")
    expect_summary(innsbruck, "Alpine Lodge", day(60), day(62), "Loft for four")
    lisbon_room = "River view double, Two single beds, breakfast included"
    expect(lisbon.locator("dd.room")).to_have_text(lisbon_room)
    expect(innsbruck.locator("dd.room")).to_have_text("Loft for four, One double bed")
    snap(innsbruck, "booking-review")

    confirm(innsbruck)
    confirm(lisbon)
    # The confirmation shows the room as the review page did, beds included.
    expect_summary(lisbon, "Harbour View", day(30), day(33), "River view double")
    expect(lisbon.locator("dd.room")).to_have_text(lisbon_room)
    expect(lisbon.locator("dd.guests")).to_have_text("2")
    expect_summary(innsbruck, "Alpine Lodge", day(60), day(62), "Loft for four")
    expect(innsbruck.locator("dd.room")).to_have_text("Loft for four, One double bed")
    expect(innsbruck.locator("dd.guests")).to_have_text("3")
    snap(innsbruck, "booking-confirmation")
    assert lisbon.locator(".reference").inner_text() != innsbruck.locator(".reference").inner_text()
    # Both bookings are over: nothing is left open, and the sidebar says so
    # without pretending that nothing was ever booked.
    expect(lisbon.locator(".open-bookings")).to_have_text(
        "None open right now. Pick a hotel and press Book to start one."
    )


def test_nested_room_choice_does_not_disturb_other_tab(context: BrowserContext, site: str) -> None:
    lisbon, amsterdam = context.new_page(), context.new_page()

    book(lisbon, site, 1)
    enter_dates(lisbon, day(10), day(12), 2)
    pick_room(lisbon, "Standard double")
    finish_room(lisbon, "One double bed", breakfast=False)

    book(amsterdam, site, 3)
    enter_dates(amsterdam, day(20), day(25), 2)
    pick_room(amsterdam, "Canal-side double")
    # Amsterdam is now inside its nested room choice.
    expect(amsterdam.locator(".breadcrumbs")).to_contain_text("Booking: Canal House")
    expect(amsterdam.locator(".breadcrumbs [aria-current]")).to_have_text("Choosing a room")

    # Lisbon starts changing its room, picks another one, then gives up.
    pick_room(lisbon, "Family suite")
    amsterdam.reload()
    expect(amsterdam.get_by_role("heading", level=1)).to_have_text("Canal-side double")
    lisbon.get_by_role("link", name="← Other room").click()
    lisbon.get_by_role("button", name="Back to the booking").click()
    expect_summary(lisbon, "Harbour View", day(10), day(12), "Standard double")

    # Amsterdam finishes its nested choice: only its own booking changes.
    finish_room(amsterdam, "Two single beds", breakfast=True)
    expect_summary(amsterdam, "Canal House", day(20), day(25), "Canal-side double")
    lisbon.reload()
    expect_summary(lisbon, "Harbour View", day(10), day(12), "Standard double")
    expect(lisbon.locator("dd.room")).not_to_contain_text("breakfast")


def test_reload_and_back_after_confirm_show_closed_booking(
    context: BrowserContext, site: str, snap: t.Callable[[Page, str], None]
) -> None:
    page = context.new_page()
    book(page, site, 4)
    enter_dates(page, day(5), day(7), 3)
    pick_room(page, "Triple room")
    finish_room(page, "Two single beds", breakfast=False)
    confirm(page)
    expect_summary(page, "Old Town Inn", day(5), day(7), "Triple room")

    # The confirmation lived for one request: reloading it finds the
    # booking closed, with a page that says so (never a server error).
    response = page.reload()
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This booking is closed")
    snap(page, "booking-closed")

    # Back into the finished booking's review page: closed as well.
    response = page.go_back()
    assert response is not None and response.status == 404
    assert "/booking?cid=" in page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("This booking is closed")

    # Forward and back again, still no error; and a new booking works.
    response = page.go_forward()
    assert response is not None and response.status == 404
    page.get_by_role("link", name="Find a hotel").click()
    book(page, site, 4)


def test_double_confirm_from_a_stale_page(context: BrowserContext, site: str) -> None:
    """A second tab still shows the booking that the first confirmed."""
    first = context.new_page()
    book(first, site, 5)
    enter_dates(first, day(3), day(4), 1)
    pick_room(first, "Sea view double")
    finish_room(first, "One double bed", breakfast=True)
    stale = context.new_page()
    stale.goto(first.url)
    expect_summary(stale, "Seaside Rooms", day(3), day(4), "Sea view double")

    confirm(first)
    with stale.expect_response(lambda r: r.request.method == "POST") as posted:
        stale.get_by_role("button", name="Confirm").click()
    assert posted.value.status == 404
    expect(stale.get_by_role("heading", level=1)).to_have_text("This booking is closed")
