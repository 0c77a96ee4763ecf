"""A small hotel booking site: the classic conversation example.

Run it with ``flask --app examples.booking run``. Conversations are kept in
the session cookie; set ``REDIS_URL`` (e.g. ``redis://localhost:6379/0``)
to keep them in Redis instead, or ``DATABASE_URL`` (a SQLAlchemy URL, e.g.
``sqlite:///booking.db`` or ``postgresql+psycopg://localhost/booking``) to
keep them in a SQL database.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask
from flask import render_template

from flask_conversation import ConversationScope
from flask_conversation import NonexistentConversation

from ..security import protect
from .hotels import HotelConverter
from .views import bp

scope = ConversationScope()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the booking site.

    :param test_config: settings that override the defaults and the
        environment, for tests.
    """
    app = Flask(__name__)
    app.config.update(
        # The cookie is signed with this key; without one, a random key is
        # made at start (see examples.security).
        SECRET_KEY=os.environ.get("SECRET_KEY"),
        # The browser sends the session cookie with no other site's form.
        SESSION_COOKIE_SAMESITE="Lax",
        CONVERSATION_TIMEOUT=30 * 60,
    )
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    if redis_url:
        app.config.update(CONVERSATION_STORE="redis", CONVERSATION_REDIS=redis_url)
    elif database_url:
        app.config.update(CONVERSATION_STORE="sqlalchemy", CONVERSATION_SQLALCHEMY=database_url)
    if test_config is not None:
        app.config.update(test_config)

    app.url_map.converters["hotel"] = HotelConverter
    protect(app)
    scope.init_app(app)
    app.register_blueprint(bp)
    app.register_error_handler(NonexistentConversation, booking_ended)
    return app


def booking_ended(error: NonexistentConversation) -> tuple[str, int]:
    """The page for a link or form of a booking that is over: confirmed,
    cancelled or expired. It explains instead of failing.

    :param error: the error raised for the unknown cid.
    """
    return render_template("ended.html"), 404
