"""A shopping cart built with htmx: the page never reloads while you shop,
and every tab has a cart of its own.

Run it with ``flask --app examples.htmx run``. htmx is loaded from a CDN;
set ``HTMX_URL`` (and ``HTMX_INTEGRITY``, or leave it empty) to serve another
copy. Conversations are kept in the session cookie; set ``REDIS_URL`` to keep
them in Redis.
"""

from __future__ import annotations

import os
import secrets
import typing as t

from flask import Flask
from flask import g
from werkzeug.wrappers import Response

from flask_conversation import ConversationScope

from ..security import protect
from .views import bp

scope = ConversationScope()

#: htmx 2 from its npm package, as a CDN serves it, with its checksum.
HTMX_URL = "https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js"
HTMX_INTEGRITY = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the shop.

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
        HTMX_URL=os.environ.get("HTMX_URL", HTMX_URL),
        HTMX_INTEGRITY=os.environ.get("HTMX_INTEGRITY", HTMX_INTEGRITY),
        # How often the cart badge asks for the number of items.
        BADGE_POLL="2s",
        # Seconds the gift note takes to save: a stand-in for a slow backend.
        SLOW_SAVE_SECONDS=float(os.environ.get("SLOW_SAVE_SECONDS", 0)),
        CONVERSATION_TIMEOUT=30 * 60,
        # A cart that is gone (checked out or expired) sends the tab back to
        # the shop with a message, also from an htmx request.
        CONVERSATION_MISSING_REDIRECT="shop.index",
        CONVERSATION_MISSING_FLASH_MESSAGE="That cart is closed: checked out or expired.",
    )
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        app.config.update(CONVERSATION_STORE="redis", CONVERSATION_REDIS=redis_url)
    if test_config is not None:
        app.config.update(test_config)
    if app.config["HTMX_URL"] != HTMX_URL and app.config["HTMX_INTEGRITY"] == HTMX_INTEGRITY:
        # The checksum is that of the default copy only.
        app.config["HTMX_INTEGRITY"] = None

    protect(app)
    scope.init_app(app)
    app.register_blueprint(bp)
    app.before_request(_make_nonce)
    app.after_request(_content_security_policy)
    app.context_processor(lambda: {"csp_nonce": g.csp_nonce})
    return app


def _make_nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


def _content_security_policy(response: Response) -> Response:
    # Scripts run only with this response's nonce: the page script of the
    # extension and htmx carry it.
    nonce = g.get("csp_nonce")
    if nonce is not None:
        response.headers["Content-Security-Policy"] = (
            f"script-src 'nonce-{nonce}'; object-src 'none'; base-uri 'none'"
        )
    return response
