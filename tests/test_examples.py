"""The example applications, driven through the Flask test client with
:class:`~flask_conversation.testing.ConversationClient` tabs: every flow a
user can take, fast. ``tests/browser/`` repeats the main ones in Chromium.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import typing as t
from datetime import date
from datetime import timedelta

import pytest
from flask import Flask

from examples import booking
from examples import bot
from examples import wizard
from examples.bot.console import chat
from examples.bot.views import SECRET_HEADER
from flask_conversation.testing import ConversationClient
from tests.csrf import with_csrf
from tests.live_server import LiveServer

Tab = ConversationClient


def make(factory: t.Callable[..., Flask], **config: t.Any) -> Flask:
    app = factory({"TESTING": True, "SECRET_KEY": "test", **config})
    app.test_client_class = ConversationClient
    return app


def day(offset: int) -> str:
    return (date.today() + timedelta(days=offset)).isoformat()


def text_of(html: str, css_class: str) -> str:
    """The text of the first ``<dd class=css_class>``, whitespace folded."""
    match = re.search(rf'<dd class="{css_class}">(.*?)</dd>', html, re.S)
    assert match is not None, css_class
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


# -- booking -------------------------------------------------------------------


@pytest.fixture(params=["session", "memory", "sqlalchemy"])
def booking_app(request: pytest.FixtureRequest) -> t.Iterator[Flask]:
    if request.param != "sqlalchemy":
        yield make(booking.create_app, CONVERSATION_STORE=request.param)
        return
    from flask_conversation import ConversationScope

    url = request.getfixturevalue("sqlite_url")
    app = make(booking.create_app, CONVERSATION_STORE="sqlalchemy", CONVERSATION_SQLALCHEMY=url)
    yield app
    ConversationScope.get_store(app).engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def tab(booking_app: Flask) -> Tab:
    return with_csrf(t.cast(Tab, booking_app.test_client()), "/hotels/1")


def start_booking(
    tab: Tab, hotel_id: int, nights: tuple[int, int] = (10, 12), guests: int = 2
) -> str:
    rv = tab.post(f"/hotels/{hotel_id}/book")
    assert rv.status_code == 302 and tab.cid is not None
    assert f"cid={tab.cid}" in rv.location
    rv = tab.post(
        "/booking/dates",
        data={"check_in": day(nights[0]), "check_out": day(nights[1]), "guests": str(guests)},
    )
    assert rv.status_code == 302, rv.text
    return tab.cid


def choose_room(tab: Tab, room: str, bed: str = "double", breakfast: bool = False) -> None:
    parent = tab.cid
    tab.post("/booking/room")
    assert tab.cid not in (None, parent)
    assert tab.post("/booking/rooms", data={"room": room}).status_code == 302
    data = {"bed": bed, **({"breakfast": "yes"} if breakfast else {})}
    rv = tab.post("/booking/rooms/extras", data=data)
    assert rv.status_code == 302
    assert tab.cid == parent


def test_search_and_hotel_pages(tab: Tab) -> None:
    rv = tab.get("/?q=lisbon")
    assert "Harbour View" in rv.text and "Alpine Lodge" not in rv.text
    assert "No hotel matches" in tab.get("/?q=atlantis").text
    assert "Book" in tab.get("/hotels/2").text
    assert tab.get("/hotels/99").status_code == 404
    # Nothing of this touched a conversation.
    assert tab.cid is None


def test_unknown_hotel_begins_nothing(tab: Tab) -> None:
    assert tab.post("/hotels/99/book").status_code == 404
    assert tab.cid is None
    assert "None open right now" in tab.get("/").text


def test_book_begins_described_conversation(tab: Tab) -> None:
    tab.post("/hotels/3/book")
    page = tab.get("/booking/dates").text
    assert "When are you coming to Canal House?" in page
    assert 'class="breadcrumbs"' in page and "Booking: Canal House" in page
    assert f'name="cid" value="{tab.cid}"' in page
    assert "no-store" in tab.get("/booking/dates").headers["Cache-Control"]


def test_invalid_dates_rerender_with_input(tab: Tab) -> None:
    tab.post("/hotels/1/book")
    rv = tab.post(
        "/booking/dates",
        data={"check_in": day(5), "check_out": day(3), "guests": "9"},
    )
    assert rv.status_code == 422
    assert "The departure must be after the arrival." in rv.text
    assert "Enter a number of guests from 1 to 6." in rv.text
    assert f'value="{day(3)}"' in rv.text and 'value="9"' in rv.text
    # Nothing was kept: the booking still asks for its dates.
    assert tab.get("/booking").location.startswith("/booking/dates")
    rv = tab.post("/booking/dates", data={"check_in": "", "check_out": "x", "guests": "2"})
    assert "Enter the arrival date." in rv.text


def test_two_tabs_two_bookings(tab: Tab) -> None:
    other = tab.new_tab()
    first = start_booking(tab, 1, (30, 33), 2)
    second = start_booking(other, 2, (60, 62), 3)
    assert first != second
    choose_room(other, "loft")
    choose_room(tab, "river", bed="twin", breakfast=True)

    sidebar = tab.get("/").text
    assert "Booking: Harbour View" in sidebar and "Booking: Alpine Lodge" in sidebar

    # Confirm both, then each tab follows its own redirect.
    to_a = tab.post("/booking/confirm")
    to_b = other.post("/booking/confirm")
    assert to_a.location.endswith(f"cid={first}") and to_b.location.endswith(f"cid={second}")
    rv_a = tab.get(to_a.location)
    rv_b = other.get(to_b.location)
    assert rv_a.status_code == rv_b.status_code == 200
    assert text_of(rv_a.text, "hotel-name") == "Harbour View, Lisbon"
    assert text_of(rv_a.text, "check-in") == day(30)
    assert text_of(rv_a.text, "room") == "River view double, Two single beds, breakfast included"
    assert text_of(rv_b.text, "hotel-name") == "Alpine Lodge, Innsbruck"
    assert text_of(rv_b.text, "check-in") == day(60)
    assert text_of(rv_b.text, "room") == "Loft for four, One double bed"
    assert text_of(rv_a.text, "total") == f"€{3 * (145 + 2 * 15)}"


def sidebar(html: str) -> list[str]:
    """The open bookings in the sidebar, in order, nested choices indented."""
    match = re.search(r'<ul class="open-bookings">(.*?)</ul>', html, re.S)
    assert match is not None
    links = re.findall(r'<a (?:class="sub" )?href="[^"]*">([^<]*)</a>', match.group(1))
    return [" ".join(link.split()) for link in links]


def test_sidebar_keeps_the_order_bookings_were_begun_in(tab: Tab) -> None:
    other = tab.new_tab()
    start_booking(tab, 1)
    start_booking(other, 3)
    third = tab.new_tab()
    start_booking(third, 2)
    order = ["Booking: Harbour View", "Booking: Canal House", "Booking: Alpine Lodge"]
    # Using a booking makes it the most recently used; the sidebar stays put.
    for page in (tab, other, third, other, tab):
        assert sidebar(page.get("/booking").text) == order
    other.post("/booking/room")
    assert sidebar(tab.get("/").text) == [*order[:2], "↳ Choosing a room", order[2]]
    choose_room(tab, "standard")
    assert sidebar(other.get("/booking/rooms").text) == [*order[:2], "↳ Choosing a room", order[2]]


def test_sidebar_after_confirmed_bookings(tab: Tab) -> None:
    assert "None open right now" in tab.get("/").text
    for hotel, room in ((1, "standard"), (4, "triple")):
        start_booking(tab, hotel, guests=2)
        choose_room(tab, room)
        page = tab.post("/booking/confirm", follow_redirects=True).text
        assert "Booking confirmed" in page
    page = tab.get("/").text
    assert sidebar(page) == []
    assert "None open right now. Pick a hotel and press <em>Book</em> to" in page
    assert "None yet" not in page


def test_confirmation_is_shown_once(tab: Tab) -> None:
    cid = start_booking(tab, 4, (5, 7), 3)
    choose_room(tab, "triple")
    rv = tab.post("/booking/confirm", follow_redirects=True)
    assert "Booking confirmed" in rv.text and "Old Town Inn" in rv.text
    assert tab.cid is None
    again = tab.get(f"/booking/confirmation?cid={cid}")
    assert again.status_code == 404 and "This booking is closed" in again.text
    back = tab.get(f"/booking?cid={cid}")
    assert back.status_code == 404 and "This booking is closed" in back.text
    double = tab.post("/booking/confirm", data={"cid": cid})
    assert double.status_code == 404 and "This booking is closed" in double.text
    assert "None open right now" in tab.get("/").text


def test_confirm_needs_a_room(tab: Tab) -> None:
    cid = start_booking(tab, 1)
    rv = tab.post("/booking/confirm", follow_redirects=True)
    assert "Choose a room before you confirm." in rv.text
    assert tab.cid == cid and rv.request.path == "/booking"


def test_nested_room_choice(tab: Tab) -> None:
    root = start_booking(tab, 1)
    choose_room(tab, "standard")

    tab.post("/booking/room")
    child = tab.cid
    page = tab.get("/booking/rooms").text
    assert "Choosing a room" in page and f"/booking?cid={root}" in page
    assert "↳ Choosing a room" in page  # the sidebar shows the nested choice
    tab.post("/booking/rooms", data={"room": "family"})
    assert "Family suite" in tab.get("/booking/rooms/extras").text

    # The half-made choice reads the booking but has not changed it.
    review = tab.get(f"/booking?cid={root}", follow_redirects=True)
    assert text_of(review.text, "room") == "Standard double, One double bed"

    tab.cid = child
    rv = tab.post("/booking/rooms/leave", follow_redirects=True)
    assert tab.cid == root
    assert text_of(rv.text, "room") == "Standard double, One double bed"
    assert tab.get(f"/booking/rooms?cid={child}").status_code == 404


def test_confirm_from_room_choice_keeps_both_open(tab: Tab) -> None:
    root = start_booking(tab, 1)
    choose_room(tab, "standard")
    tab.post("/booking/room")
    child = tab.cid
    rv = tab.post("/booking/confirm")
    assert rv.location == f"/booking/rooms?cid={child}"
    assert tab.get(f"/booking?cid={root}").status_code == 200
    assert tab.get(f"/booking/rooms?cid={child}").status_code == 200


def test_room_must_fit_guests(tab: Tab) -> None:
    start_booking(tab, 1, guests=4)
    tab.post("/booking/room")
    rv = tab.post("/booking/rooms", data={"room": "river"})
    assert rv.status_code == 200 and "sleeps 2, not 4" in rv.text
    assert "Choose one of the rooms." in tab.post("/booking/rooms", data={}).text


def test_more_guests_drop_a_room_too_small(tab: Tab) -> None:
    start_booking(tab, 1, guests=2)
    choose_room(tab, "river")
    rv = tab.post(
        "/booking/dates",
        data={"check_in": day(10), "check_out": day(12), "guests": "4"},
        follow_redirects=True,
    )
    assert "does not sleep 4" in rv.text
    assert "not chosen yet" in text_of(rv.text, "room")


def test_cancel_from_nested_choice_ends_the_stack(tab: Tab) -> None:
    root = start_booking(tab, 2)
    tab.post("/booking/room")
    child = tab.cid
    rv = tab.post("/booking/cancel", follow_redirects=True)
    assert "Booking: Alpine Lodge was cancelled." in rv.text
    assert "None open right now" in rv.text and tab.cid is None
    assert tab.get(f"/booking?cid={root}").status_code == 404
    assert tab.get(f"/booking/rooms?cid={child}").status_code == 404


def test_resume_from_sidebar(tab: Tab) -> None:
    other = tab.new_tab()
    first = start_booking(tab, 1)
    other.post("/hotels/5/book")
    other.post("/booking/room")  # a nested choice without dates is fine to resume
    child = other.cid
    page = tab.get("/").text
    assert f"/booking/resume?cid={first}" in page and f"/booking/resume?cid={child}" in page
    fresh = tab.new_tab()
    assert fresh.get(f"/booking/resume?cid={first}").location.endswith(f"/booking?cid={first}")
    assert fresh.get(f"/booking/resume?cid={child}").location.endswith(
        f"/booking/rooms?cid={child}"
    )
    assert tab.new_tab().get("/booking/resume").location == "/"


def test_pages_of_a_booking_need_one(tab: Tab) -> None:
    for path in ("/booking", "/booking/dates", "/booking/rooms", "/booking/resume"):
        assert tab.get(path).location == "/", path
    assert tab.get("/booking/confirmation").location == "/"
    assert tab.post("/booking/confirm").location == "/"
    assert tab.post("/booking/cancel").location == "/"


# -- wizard ----------------------------------------------------------------------


@pytest.fixture
def wizard_app() -> Flask:
    return make(wizard.create_app)


def sign_up_to_step_3(tab: Tab) -> str:
    rv = tab.post("/", data={"email": "ada@example.com", "password": "correct horse"})
    assert rv.location.startswith("/profile?cid=")
    assert tab.post("/profile", data={"name": "Ada", "country": "Portugal"}).status_code == 302
    assert tab.cid is not None
    return tab.cid


def test_wizard_flow(wizard_app: Flask) -> None:
    tab = with_csrf(t.cast(Tab, wizard_app.test_client()))
    cid = sign_up_to_step_3(tab)
    tab.post("/preferences", data={"topics": ["Events", "Bogus"]})
    review = tab.get("/review").text
    assert text_of(review, "topics").startswith("Events change")
    # The back links carry the cid and show the answers again.
    assert f'href="/profile?cid={cid}"' in review
    step1 = tab.get("/").text
    assert 'value="ada@example.com"' in step1 and "leave empty to keep it" in step1
    # Step 1 again joins the same sign-up; an empty password keeps the old one.
    tab.post("/", data={"email": "ada@lovelace.example", "password": ""})
    assert tab.cid == cid
    rv = tab.post("/finish", follow_redirects=True)
    assert "Welcome, Ada!" in rv.text and "ada@lovelace.example" in rv.text
    assert tab.cid is None
    # The finished sign-up is gone: its links lead back to step 1.
    rv = tab.get(f"/review?cid={cid}", follow_redirects=True)
    assert rv.request.path == "/" and "no longer open" in rv.text


def test_wizard_validation(wizard_app: Flask) -> None:
    tab = with_csrf(t.cast(Tab, wizard_app.test_client()))
    rv = tab.post("/", data={"email": "nope", "password": "short"})
    assert rv.status_code == 422
    assert "Enter an e-mail address" in rv.text and "at least 8 characters" in rv.text
    assert 'value="nope"' in rv.text
    sign_up_to_step_3(tab)
    rv = tab.post("/profile", data={"name": "", "country": "Mars"})
    assert rv.status_code == 422 and "Tell us your name." in rv.text


def test_wizard_steps_need_a_sign_up(wizard_app: Flask) -> None:
    tab = with_csrf(t.cast(Tab, wizard_app.test_client()))
    for path in ("/profile", "/preferences", "/review"):
        rv = tab.get(path)
        assert rv.status_code == 302 and rv.location == "/", path
    # Without a cid there is nothing to expire: no message.
    assert "no longer open" not in tab.get("/").text


def test_wizard_expired_goes_to_step_one_with_message(wizard_app: Flask) -> None:
    from flask_conversation import ConversationScope

    clock = Clock()
    ConversationScope.get_store(wizard_app).clock = clock
    tab = with_csrf(t.cast(Tab, wizard_app.test_client()))
    sign_up_to_step_3(tab)
    clock.now += 16 * 60
    rv = tab.post("/preferences", data={"topics": ["Events"]})
    assert rv.status_code == 302 and rv.location == "/"
    page = tab.get("/").text
    assert "no longer open" in page and 'class="flash flash-warning"' in page
    assert tab.cid is None


def test_wizard_tabs_are_separate(wizard_app: Flask) -> None:
    one = with_csrf(t.cast(Tab, wizard_app.test_client()))
    two = one.new_tab()
    sign_up_to_step_3(one)
    two.post("/", data={"email": "bob@example.com", "password": "12345678"})
    two.post("/profile", data={"name": "Bob", "country": "Poland"})
    assert "Ada" in one.get("/review").text
    assert "Bob" in two.get("/review").text and "Ada" not in two.get("/review").text


class Clock:
    """A store clock that the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# -- bot -----------------------------------------------------------------------


BOT_SECRET = "the-bot-secret"


@pytest.fixture
def bot_app() -> Flask:
    # A webhook caller is not a browser tab: it never sends a cid back, so
    # the plain test client stands for it.
    return bot.create_app({"TESTING": True, "BOT_WEBHOOK_SECRET": BOT_SECRET})


def sender(app: Flask, user_id: str, platform: str = "console") -> t.Callable[[str], list[str]]:
    client = app.test_client()

    def send(text: str) -> list[str]:
        rv = client.post(
            "/webhook",
            json={"platform": platform, "user_id": user_id, "text": text},
            headers={SECRET_HEADER: BOT_SECRET},
        )
        assert rv.status_code == 200, rv.text
        # Webhooks carry no cookie and no cid: the namespace finds the chat.
        assert "Set-Cookie" not in rv.headers
        return t.cast(list[str], rv.json["replies"])  # type: ignore[index]

    return send


def test_bot_counts_and_asks_nickname(bot_app: Flask) -> None:
    send = sender(bot_app, "42")
    assert send("Hi") == ["Count: 1", "Hi, what's your nickname?"]
    assert send("Tim") == ["Count: 2", "Hello Tim"]
    assert send("Hi again") == ["Count: 3", "Nice to hear from you, Tim."]
    assert json.loads(send("/state")[0]) == {"asking": False, "count": 3, "nickname": "Tim"}
    send("/reset")
    assert json.loads(send("/state")[0]) == {"asking": False, "count": 0, "nickname": None}


def test_bot_chats_are_separate(bot_app: Flask) -> None:
    ada, bob = sender(bot_app, "1"), sender(bot_app, "2")
    telegram_ada = sender(bot_app, "1", platform="telegram")
    ada("Hi")
    ada("Ada")
    bob("Hi")
    assert json.loads(bob("/state")[0])["nickname"] is None
    assert json.loads(ada("/state")[0])["nickname"] == "Ada"
    assert telegram_ada("Hi") == ["Count: 1", "Hi, what's your nickname?"]


def test_bot_forgets_quiet_chats(bot_app: Flask) -> None:
    from flask_conversation import ConversationScope

    clock = Clock()
    ConversationScope.get_store(bot_app).clock = clock
    send = sender(bot_app, "42")
    send("Hi")
    send("Tim")
    clock.now += 4 * 60
    assert send("still here")[0] == "Count: 3"
    clock.now += 5 * 60 + 1
    assert send("Hi") == ["Count: 1", "Hi, what's your nickname?"]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"platform": "console", "user_id": "1"},
        {"platform": "", "user_id": 1, "text": "x"},
    ],
)
def test_bot_refuses_bad_messages(bot_app: Flask, payload: t.Any) -> None:
    rv = bot_app.test_client().post("/webhook", json=payload, headers={SECRET_HEADER: BOT_SECRET})
    assert rv.status_code == 400


def test_bot_console(bot_app: Flask) -> None:
    out = io.StringIO()
    chat(sender(bot_app, "7"), ["Hi\n", "\n", "Tim\n", "/state\n", "/quit\n", "ignored\n"], out)
    assert out.getvalue().splitlines() == [
        "Bot > Count: 1",
        "Bot > Hi, what's your nickname?",
        "Bot > Count: 2",
        "Bot > Hello Tim",
        'Bot > {"asking": false, "count": 2, "nickname": "Tim"}',
    ]


def test_bot_refuses_messages_without_the_secret(bot_app: Flask) -> None:
    """The body names the chat: without the webhook's secret nobody may
    read or reset it (``/state`` and ``/reset`` of user 1001 below).
    """
    send = sender(bot_app, "1001")
    send("Hi")
    send("Tim")
    client = bot_app.test_client()
    forged = {"platform": "console", "user_id": "1001"}
    for headers in ({}, {SECRET_HEADER: "guess"}, {SECRET_HEADER: BOT_SECRET + "x"}):
        for text in ("/state", "/reset"):
            rv = client.post("/webhook", json={**forged, "text": text}, headers=headers)
            assert rv.status_code == 403, headers
            assert "Tim" not in rv.text
    # A malformed body without the secret is refused for the secret, unread.
    assert client.post("/webhook", data="not json").status_code == 403
    assert json.loads(send("/state")[0]) == {"asking": False, "count": 2, "nickname": "Tim"}


def test_bot_secret_from_environment_or_made_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BOT_WEBHOOK_SECRET", "from-the-environment")
    assert bot.create_app().config["BOT_WEBHOOK_SECRET"] == "from-the-environment"
    assert "BOT_WEBHOOK_SECRET" not in caplog.text

    monkeypatch.delenv("BOT_WEBHOOK_SECRET")
    one, two = bot.create_app(), bot.create_app()
    secret = one.config["BOT_WEBHOOK_SECRET"]
    assert len(secret) >= 40 and secret != two.config["BOT_WEBHOOK_SECRET"]
    # The log says how to talk to this run's bot.
    assert f"BOT_WEBHOOK_SECRET={secret} python -m examples.bot.console" in caplog.text


def test_bot_console_sends_the_secret(bot_app: Flask) -> None:
    """The console over real HTTP: with the secret it chats, without it it
    says what to set.
    """
    from examples.bot.console import main

    with LiveServer(bot_app) as server:
        url = f"{server.url}/webhook"
        out = io.StringIO()
        argv = ["--url", url, "--user", "ada", "--secret", BOT_SECRET]
        assert main(argv, stdin=io.StringIO("Hi\nAda\n"), stdout=out) == 0
        assert out.getvalue().splitlines() == [
            "Bot > Count: 1",
            "Bot > Hi, what's your nickname?",
            "Bot > Count: 2",
            "Bot > Hello Ada",
        ]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["--url", url, "--secret", ""], stdin=io.StringIO("Hi\n")) == 1
        assert "set BOT_WEBHOOK_SECRET" in err.getvalue()


# -- the web examples against other sites -----------------------------------------


@pytest.mark.parametrize("factory", [booking.create_app, wizard.create_app])
def test_secret_key_from_environment_or_random(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    factory: t.Callable[..., Flask],
) -> None:
    """Never a fixed, published key: the environment's, or a random one
    per start, with a log line that says so (``flask run`` still works).
    """
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert factory().secret_key == "from-the-environment"
    assert "SECRET_KEY is not set" not in caplog.text

    monkeypatch.delenv("SECRET_KEY")
    one, two = factory(), factory()
    assert one.secret_key and two.secret_key and one.secret_key != two.secret_key
    assert len(t.cast(str, one.secret_key)) == 64
    assert "SECRET_KEY is not set: generated a random one" in caplog.text


@pytest.mark.parametrize(
    ("factory", "page"), [(booking.create_app, "/hotels/1"), (wizard.create_app, "/")]
)
def test_session_cookie_is_samesite_lax(factory: t.Callable[..., Flask], page: str) -> None:
    client = make(factory).test_client()
    client.get(page)  # the form's CSRF token starts the session
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.same_site == "Lax"


def cross_site(tab: Tab) -> Tab:
    """Another site's form, posting from the user's browser: it sends the
    user's session cookie (as a browser without ``SameSite`` would), but
    cannot read the user's pages, so it has no CSRF token.
    """
    cookie = tab.get_cookie("session")
    assert cookie is not None
    forged = t.cast(Tab, tab.application.test_client())
    forged.set_cookie("session", cookie.value)
    return forged


def test_forged_cross_site_posts_are_refused(booking_app: Flask) -> None:
    """Another site's form posts with the user's cookie but cannot know the
    token of the user's session: 32 forged ``POST /hotels/2/book`` are
    refused (400) and the user's open booking is untouched, where before
    they would have begun 32 conversations and evicted it.
    """
    booking_app.config["CONVERSATION_MAX_COUNT"] = 3
    tab = with_csrf(t.cast(Tab, booking_app.test_client()), "/hotels/1")
    cid = start_booking(tab, 1)
    forged = cross_site(tab)
    for _ in range(32):
        rv = forged.post("/hotels/2/book", headers={"Origin": "https://evil.example"})
        assert rv.status_code == 400 and "CSRF" in rv.text
    assert forged.cid is None
    assert tab.get(f"/booking?cid={cid}").status_code == 200
    sidebar = tab.get("/").text
    assert "Booking: Harbour View" in sidebar and "Booking: Alpine Lodge" not in sidebar


def test_forged_wizard_post_is_refused(wizard_app: Flask) -> None:
    tab = with_csrf(t.cast(Tab, wizard_app.test_client()))
    cid = sign_up_to_step_3(tab)
    forged = cross_site(tab)
    rv = forged.post("/profile", data={"cid": cid, "name": "Mallory", "country": "Other"})
    assert rv.status_code == 400
    assert "Ada" in tab.get("/review").text
