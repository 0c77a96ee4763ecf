"""Figure 6's page: the booking example's review page (``GET /booking``),
the page every step of a booking returns to, served by gunicorn.

``create_app("conversation")`` is the example itself with ``RedisStore``
(``BENCH_REDIS_URL``). ``create_app("plain")`` is the same page with the
conversation code removed: the example's templates rendered from constants
that stand in for the booking, with ``url_for`` for ``url_for_cid`` and a
fixed hidden field, so both send the same HTML.
"""

from __future__ import annotations

import http.client
import os
import re
import typing as t
import urllib.parse
from datetime import date
from datetime import timedelta

from flask import Blueprint
from flask import Flask
from flask import render_template
from flask import url_for
from markupsafe import Markup

from examples.security import csrf

from .apps import merge_cookies

#: The page measured.
PAGE = "/booking"
#: A cid for the plain page's links, as long as a generated one.
FAKE_CID = "x" * 22
#: The CSRF token in the example's forms.
_TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _stay() -> dict[str, t.Any]:
    check_in = date.today() + timedelta(days=7)
    return {
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=3)).isoformat(),
        "nights": 3,
        "guests": 2,
    }


class _Stand(dict):  # type: ignore[type-arg]
    """A dict that Jinja also reads as attributes, like the conversation."""

    def __getattr__(self, name: str) -> t.Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _plain_app() -> Flask:
    from examples import booking
    from examples.booking.hotels import BEDS
    from examples.booking.hotels import get_hotel
    from examples.booking.hotels import HotelConverter
    from examples.booking.stay import total_price

    root = os.path.dirname(booking.__file__)
    app = Flask(
        "bench_example_plain",
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    app.config["SECRET_KEY"] = "bench-secret-key"
    app.url_map.converters["hotel"] = HotelConverter
    # The same forms, with the same CSRF tokens, as the example's.
    csrf.init_app(app)
    bp = Blueprint("booking", __name__)
    hotel = get_hotel(1)
    assert hotel is not None
    room = hotel.room("standard")
    assert room is not None

    def nothing() -> str:
        return ""

    for rule, endpoint in [
        ("/", "index"),
        ("/booking/dates", "dates"),
        ("/booking/room", "choose_room"),
        ("/booking/confirm", "confirm"),
        ("/booking/cancel", "cancel"),
        ("/booking/resume", "resume"),
    ]:
        bp.add_url_rule(rule, endpoint, nothing)

    @bp.get("/booking")
    def review() -> str:
        booking = _Stand(_stay())
        booking["room"] = _Stand(
            id=room.id, name=room.name, price=room.price, bed="double", breakfast=True
        )
        booking.update(
            id=FAKE_CID, long_running=True, nested=False, description=f"Booking: {hotel.name}"
        )
        booking["root"] = booking
        booking["stack"] = [booking]
        info = _Stand(id=FAKE_CID, description=booking["description"], depth=0, parent_id=None)
        total = total_price(booking["nights"], booking["guests"], room.price, True)
        return render_template(
            "review.html",
            hotel=hotel,
            room=room,
            beds=BEDS,
            total=total,
            conversation=booking,
            conversations=lambda: [info],
            url_for_cid=lambda endpoint, **values: url_for(endpoint, cid=FAKE_CID, **values),
            conversation_field=lambda: Markup(
                f'<input type="hidden" name="cid" value="{FAKE_CID}">'
            ),
        )

    app.register_blueprint(bp)
    return app


def create_app(variant: str = "conversation") -> Flask:
    """The booking example, or its review page without conversations.

    :param variant: ``"conversation"`` or ``"plain"``.
    """
    if variant == "plain":
        return _plain_app()
    if variant != "conversation":
        raise ValueError(f"unknown variant {variant!r}")
    from examples.booking import create_app as create_example

    os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    # Every worker process signs with the same key, as in production.
    return create_example({"SECRET_KEY": "bench-secret-key"})


class _Browser:
    """Just enough of a browser for the setup: its cookies, no redirects
    followed, so every step is checked. It talks HTTP to ``port``, or
    drives ``app`` in process when one is given.
    """

    def __init__(self, port: int = 0, app: Flask | None = None) -> None:
        self.port = port
        self.app = app
        self.cookie = ""
        #: the session's CSRF token, sent with every form, as the pages do
        self.token = ""

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        status, location, _ = self._exchange(method, path, form)
        return status, location

    def read_token(self, path: str) -> None:
        """Open ``path`` and keep the CSRF token of its form."""
        status, _, body = self._exchange("GET", path, None)
        match = _TOKEN_RE.search(body)
        if status != 200 or match is None:
            raise RuntimeError(f"GET {path} answered {status} without a CSRF token")
        self.token = match.group(1)

    def _exchange(
        self, method: str, path: str, form: dict[str, str] | None
    ) -> tuple[int, str, str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if self.token:
            headers["X-CSRFToken"] = self.token
        if self.app is not None:
            return self._send_app(self.app, method, path, form, headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            rv = conn.getresponse()
            text = rv.read().decode()
            self.cookie = merge_cookies(self.cookie, rv.headers.get_all("Set-Cookie") or ())
            location = rv.headers.get("Location", "")
            return (
                rv.status,
                urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl(),
                text,
            )
        finally:
            conn.close()

    def _send_app(
        self,
        app: Flask,
        method: str,
        path: str,
        form: dict[str, str] | None,
        headers: dict[str, str],
    ) -> tuple[int, str, str]:
        client = app.test_client(use_cookies=False)
        rv = client.open(path, method=method, data=form, headers=headers)
        self.cookie = merge_cookies(self.cookie, rv.headers.getlist("Set-Cookie"))
        location = urllib.parse.urlsplit(rv.headers.get("Location", ""))
        return rv.status_code, location._replace(scheme="", netloc="").geturl(), rv.text

    def expect(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        status, location = self.send(method, path, form)
        if status not in (302, 303):
            raise RuntimeError(f"{method} {path} answered {status}, not a redirect")
        return location


def open_booking(port: int = 0, app: Flask | None = None) -> tuple[str, str]:
    """Book hotel 1 the way a user does (dates, then a room in the nested
    choice) and stop at the review page.

    :param port: where the example runs over HTTP.
    :param app: the example application, to drive it in process instead.
    :return: the review page's path with its cid, and the ``Cookie`` header.
    """
    browser = _Browser(port, app)
    browser.read_token("/hotels/1")
    dates = browser.expect("POST", "/hotels/1/book", {})
    cid = urllib.parse.parse_qs(urllib.parse.urlsplit(dates).query)["cid"][0]
    stay = _stay()
    review = browser.expect(
        "POST", dates, {k: str(stay[k]) for k in ("check_in", "check_out", "guests")}
    )
    rooms = browser.expect("POST", "/booking/room", {"cid": cid})
    extras = browser.expect("POST", rooms, {"room": "standard"})
    review = browser.expect("POST", extras, {"bed": "double", "breakfast": "yes"})
    if urllib.parse.urlsplit(review).path != PAGE or cid not in review:
        raise RuntimeError(f"the room choice ended at {review}, not the review page")
    status, _ = browser.send("GET", review)
    if status != 200:
        raise RuntimeError(f"GET {review} answered {status}")
    return review, browser.cookie


def open_plain_page(port: int) -> str:
    """Open the plain page once, as a user who comes back to it: the
    session cookie then already holds the forms' CSRF token, as the
    example's does after :func:`open_booking`.

    :param port: where the plain page runs over HTTP.
    :return: the ``Cookie`` header.
    """
    browser = _Browser(port)
    browser.read_token(PAGE)
    return browser.cookie
