"""A small booking step for the HTTP figure, served by gunicorn: the
details page of a hotel booking, with and without the conversation code.

``create_app("conversation")`` keeps the booking in a long-running
conversation in ``RedisStore`` (``BENCH_REDIS_URL``); ``create_app("session")``
keeps it by hand in a Flask-Session Redis session; ``create_app("plain")``
is the same page with no state: it renders the same template from a
booking it makes up on the spot.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask
from flask import render_template
from jinja2 import DictLoader

PAGE = """<!doctype html>
<title>Book {{ booking.hotel }}</title>
<h1>{{ booking.hotel }}</h1>
<form method="post" action="{{ action }}">
  {{ field }}
  <label>Check-in <input name="checkin" value="{{ booking.checkin }}"></label>
  <label>Nights <input name="nights" value="{{ booking.nights }}"></label>
  <label>Guests <input name="guests" value="{{ booking.guests }}"></label>
  <label>Room <select name="room">
  {% for room in rooms -%}
    <option{% if room == booking.room %} selected{% endif %}>{{ room }}</option>
  {%- endfor %}
  </select></label>
  <p>Step {{ booking.step }} of 3</p>
  <button>Next</button>
</form>
"""

ROOMS = ["single", "double", "suite"]


def _booking(hotel_id: int) -> dict[str, t.Any]:
    return {
        "hotel": f"Hotel {hotel_id}",
        "checkin": "2026-12-01",
        "nights": 3,
        "guests": 2,
        "room": "double",
        "step": 1,
    }


def _session_app(app: Flask) -> Flask:
    """The page hand-rolled on a Flask-Session Redis session: each booking
    in ``session["tabs"][tab]``, the tab id in the URL.
    """
    import secrets

    import redis
    from flask import abort
    from flask import request
    from flask import session
    from flask import url_for
    from flask_session import Session
    from markupsafe import Markup

    app.config.update(
        SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    )
    Session(app)

    @app.post("/hotels/<int:hotel_id>/begin")
    def begin(hotel_id: int) -> str:
        tab = secrets.token_urlsafe(16)
        session.setdefault("tabs", {})[tab] = {"booking": _booking(hotel_id)}
        session.modified = True
        return tab

    @app.get("/hotels/<int:hotel_id>/book")
    def book(hotel_id: int) -> str:
        tab = request.args.get("cid", "")
        state = session.get("tabs", {}).get(tab)
        if state is None:
            abort(404)
        booking = state["booking"]
        booking["step"] = 1
        state["views"] = state.get("views", 0) + 1
        session.modified = True
        return render_template(
            "book.html",
            booking=booking,
            rooms=ROOMS,
            action=url_for("book", hotel_id=hotel_id, cid=tab),
            field=Markup(f'<input type="hidden" name="cid" value="{tab}">'),
        )

    return app


def create_app(variant: str = "conversation") -> Flask:
    """The booking page.

    :param variant: ``"conversation"``, ``"session"`` (hand-rolled on a
        Flask-Session Redis session) or ``"plain"`` (no state).
    """
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "bench-secret-key"
    app.jinja_loader = DictLoader({"book.html": PAGE})

    if variant == "plain":

        @app.get("/hotels/<int:hotel_id>/book")
        def book(hotel_id: int) -> str:
            return render_template(
                "book.html", booking=_booking(hotel_id), rooms=ROOMS, action="", field=""
            )

        return app

    if variant == "session":
        return _session_app(app)

    if variant != "conversation":
        raise ValueError(f"unknown variant {variant!r}")

    from flask_conversation import begin_conversation
    from flask_conversation import conversation
    from flask_conversation import conversation_field
    from flask_conversation import conversation_required
    from flask_conversation import ConversationScope
    from flask_conversation import url_for_cid

    app.config.update(CONVERSATION_STORE="redis", CONVERSATION_REDIS=os.environ["BENCH_REDIS_URL"])
    ConversationScope(app)

    @app.post("/hotels/<int:hotel_id>/begin")
    @begin_conversation()
    def begin(hotel_id: int) -> str:
        conversation["booking"] = _booking(hotel_id)
        return t.cast(str, conversation.id)

    @app.get("/hotels/<int:hotel_id>/book")
    @conversation_required
    def book(hotel_id: int) -> str:
        booking = conversation["booking"]
        booking["step"] = 1
        conversation["views"] = conversation.get("views", 0) + 1
        return render_template(
            "book.html",
            booking=booking,
            rooms=ROOMS,
            action=url_for_cid("book", hotel_id=hotel_id),
            field=conversation_field(),
        )

    return app
