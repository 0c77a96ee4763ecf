"""The applications the in-process figures compare: each subject next to
the same application written without the extension.

Every app has the same two views:

``POST /start``
    begins a booking (a long-running conversation, or a hand-rolled tab
    entry in the session) and answers with its id;
``GET /step``
    a step of the booking: reads the booking and writes one value, the
    "read + write per request" of a long-running conversation.

and ``GET /`` that never touches any state.
"""

from __future__ import annotations

import secrets
import typing as t
from http.cookies import SimpleCookie

from flask import abort
from flask import Flask
from flask import request
from flask import session

from flask_conversation import begin_conversation
from flask_conversation import conversation
from flask_conversation import conversation_required
from flask_conversation import ConversationScope
from flask_conversation.stores import ConversationStore

#: The state of one booking, as the example's first step leaves it.
BOOKING: dict[str, t.Any] = {
    "hotel": "h-42",
    "checkin": "2026-12-01",
    "nights": 3,
    "guests": 2,
    "room": "double",
    "step": 1,
}

#: The query parameter naming a hand-rolled tab.
TAB_PARAM = "tab"

#: The secret key of every app, so that apps sharing a store read each
#: other's cookies.
SECRET_KEY = "bench-secret-key"


def _base(name: str) -> Flask:
    app = Flask(name)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=False)

    @app.get("/")
    def index() -> str:
        return "Hello, World!"

    return app


def _initial() -> dict[str, t.Any]:
    # A form field "value" asks for a booking holding just that value.
    if "value" in request.form:
        return {"value": request.form["value"]}
    return dict(BOOKING)


def plain_app() -> Flask:
    """The application without the extension, and without state."""
    return _base("bench_plain")


def hooked_app(hooks: int = 2) -> Flask:
    """The application without the extension, with request hooks that do
    nothing: what Flask charges any extension that works after the view
    (``after_request``) and always cleans up (``teardown_request``), the two
    hooks the extension registers; or, with ``hooks=1``, the cleanup alone,
    the one hook of a design that commits through ``after_this_request``.

    :param hooks: 2 for both hooks, 1 for ``teardown_request`` alone.
    """
    app = _base(f"bench_hooked_{hooks}")
    if hooks == 2:
        app.after_request(_unchanged)
    app.teardown_request(_nothing)
    return app


def _unchanged(response: t.Any) -> t.Any:
    return response


def _nothing(exc: BaseException | None) -> None:
    return None


def conversation_app(
    store: ConversationStore | None = None, namespace: str | None = None, **config: t.Any
) -> Flask:
    """The application with the extension: ``/step`` works in the
    long-running conversation the request names.

    :param store: the store; the default is the config's (``SessionStore``).
    :param namespace: the namespace of every request, from a
        ``namespace_loader``: no session is needed then.
    :param config: extra configuration, e.g. ``CONVERSATION_MAX_COUNT``.
    """
    app = _base("bench_conversation")
    app.config.update(config)
    scope = ConversationScope(app, store=store)
    if namespace is not None:
        scope.namespace_loader(lambda: namespace)

    @app.post("/start")
    @begin_conversation()
    def start() -> str:
        conversation.update(_initial())
        return t.cast(str, conversation.id)

    @app.get("/step")
    @conversation_required
    def step() -> str:
        conversation["step"] = conversation["step"] + 1
        return f"{conversation['hotel']}: step {conversation['step']}"

    return app


def tabs_app(session_redis: t.Any = None, session_sqlalchemy: str | None = None) -> Flask:
    """The same application keeping each booking by hand in
    ``session["tabs"][tab_id]``, in Flask's cookie session or, with
    ``session_redis``, in Flask-Session's Redis backend, or with
    ``session_sqlalchemy``, in its SQLAlchemy backend (through
    Flask-SQLAlchemy).

    :param session_redis: a Redis client for Flask-Session, or ``None``.
    :param session_sqlalchemy: a database URL for Flask-Session, or ``None``.
    """
    app = _base("bench_tabs")
    if session_redis is not None:
        from flask_session import Session

        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=session_redis)
        Session(app)
    elif session_sqlalchemy is not None:
        from flask_session import Session
        from flask_sqlalchemy import SQLAlchemy

        app.config["SQLALCHEMY_DATABASE_URI"] = session_sqlalchemy
        app.config.update(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=SQLAlchemy(app))
        Session(app)

    @app.post("/start")
    def start() -> str:
        tab_id = secrets.token_urlsafe(16)
        session.setdefault("tabs", {})[tab_id] = _initial()
        session.modified = True
        return tab_id

    @app.get("/step")
    def step() -> str:
        tab = session.get("tabs", {}).get(request.args.get(TAB_PARAM, ""))
        if tab is None:
            abort(400)
        tab["step"] = tab["step"] + 1
        session.modified = True
        return f"{tab['hotel']}: step {tab['step']}"

    return app


def start(app: Flask, cookie: str = "", value: str | None = None) -> tuple[str, str]:
    """Begin a booking through the test client.

    :param app: a :func:`conversation_app` or :func:`tabs_app`.
    :param cookie: the ``Cookie`` header to send, to begin another booking
        for the same user.
    :param value: keep only this value in the booking.
    :return: the booking's id and the ``Cookie`` header after it: the
        session cookie, or the namespace cookie of a server-side store;
        empty for an app whose namespace comes from a loader.
    """
    client = app.test_client(use_cookies=False)
    rv = client.post(
        "/start",
        data={} if value is None else {"value": value},
        headers={"Cookie": cookie} if cookie else {},
    )
    if rv.status_code != 200:
        raise RuntimeError(f"/start answered {rv.status}")
    return rv.get_data(as_text=True), merge_cookies(cookie, rv.headers.getlist("Set-Cookie"))


def merge_cookies(cookie: str, set_cookie: t.Iterable[str]) -> str:
    """The ``Cookie`` header a browser sends after a response: ``cookie``
    updated by the response's ``Set-Cookie`` headers.

    :param cookie: the ``Cookie`` header sent with the request.
    :param set_cookie: the response's ``Set-Cookie`` header values.
    """
    jar = SimpleCookie(cookie)
    for header in set_cookie:
        jar.load(header)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items() if morsel.value)


def cookie_value(cookie: str, name: str = "session") -> str:
    """The value of the cookie ``name`` in a ``Cookie`` header.

    :param cookie: the header.
    :param name: the cookie.
    """
    return SimpleCookie(cookie)[name].value
