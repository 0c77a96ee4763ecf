"""SPEC 9, namespace rotation: ``scope.rotate_namespace()`` gives the
browser a new token at the end of the request and moves the namespace's
conversations to it; the old token, planted or replayed, reaches none of
them afterwards.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import request
from flask import session

from flask_conversation import conversation
from flask_conversation import conversation_destroyed
from flask_conversation import ConversationError
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore
from flask_conversation.testing import ConversationClient
from tests.hardening.instrumented import browser_with
from tests.hardening.instrumented import credentials


def _rotate_session(app: Flask) -> None:
    # A server-side session is shared by whoever holds its id: rotating the
    # namespace inside it does not help unless the id changes too.
    regenerate = getattr(app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)


@pytest.fixture
def login(app: Flask, api: ConversationClient) -> ConversationClient:
    """``api`` plus ``/login`` (rotates), ``/logout`` (ends all, rotates),
    ``/list``, and views that rotate and then fail or begin.
    """
    scope: ConversationScope = app.extensions["conversation"]

    @app.post("/login")
    def login_view() -> str:
        scope.rotate_namespace()
        _rotate_session(app)
        return "welcome"

    @app.post("/logout")
    def logout() -> str:
        scope.end_all()
        scope.rotate_namespace()
        _rotate_session(app)
        return "bye"

    @app.get("/list")
    def listing() -> dict[str, t.Any]:
        return {"ids": sorted(str(c.id) for c in scope.conversations())}

    @app.post("/login-then-fail")
    def login_then_fail() -> str:
        scope.rotate_namespace()
        raise RuntimeError("after the rotation")

    @app.post("/login-then-begin")
    def login_then_begin() -> dict[str, t.Any]:
        scope.rotate_namespace()
        _rotate_session(app)
        conversation.begin()
        conversation["new"] = True
        return {"id": conversation.id}

    return api


def _begin_three(client: ConversationClient) -> dict[str, str]:
    """Two stacks in two tabs, one with a child; returns their ids."""
    root = client.post("/begin").json["id"]  # type: ignore[index]
    client.post("/set", json={"secret": "root"})
    child = client.post("/begin", json={"nested": True}).json["id"]  # type: ignore[index]
    client.post("/set", json={"secret2": "child"})
    other = client.new_tab()
    second = other.post("/begin").json["id"]  # type: ignore[index]
    other.post("/set", json={"secret": "second"})
    return {"root": root, "child": child, "second": second}


def _read(client: t.Any, cid: str) -> t.Any:
    return client.get("/show", query_string={"cid": cid}, headers={"X-Conversation-Id": ""})


def test_rotation_moves_every_conversation(
    app: Flask, login: ConversationClient, store_kind: str
) -> None:
    cids = _begin_three(login)
    before = credentials(app, login)
    rv = login.post("/login", headers={"X-Conversation-Id": ""})
    assert rv.status_code == 200
    assert credentials(app, login) != before

    assert _read(login, cids["child"]).json["data"] == {"secret": "root", "secret2": "child"}
    assert _read(login, cids["second"]).json["data"] == {"secret": "second"}
    assert login.get("/list").json["ids"] == sorted(cids.values())  # type: ignore[index]

    replay = browser_with(app, before)
    statuses = {_read(replay, cid).status_code for cid in cids.values()}
    if store_kind == "cookie":
        # The old cookie is the old store: it holds its copy (docs: security).
        assert statuses == {200}
    else:
        assert statuses == {404}
        assert replay.get("/list").json["ids"] == []  # type: ignore[index]
    # The browser's own conversations were not touched by the replay.
    assert _read(login, cids["root"]).json["data"] == {"secret": "root"}


def test_rotation_sends_no_signal(app: Flask, login: ConversationClient) -> None:
    _begin_three(login)
    events: list[t.Any] = []
    with conversation_destroyed.connected_to(lambda *a, **kw: events.append(kw), app):
        login.post("/login")
    assert events == []


def test_rotation_moves_what_the_request_began(
    app: Flask, login: ConversationClient, store_kind: str
) -> None:
    login.post("/begin")
    before = credentials(app, login)
    login.cid = None
    new = login.post("/login-then-begin").json["id"]  # type: ignore[index]
    assert _read(login, new).json["data"] == {"new": True}
    if store_kind != "cookie":
        assert _read(browser_with(app, before), new).status_code == 404


def test_rotation_of_a_failed_request_is_not_applied(app: Flask, login: ConversationClient) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    cid = login.post("/begin").json["id"]  # type: ignore[index]
    before = credentials(app, login)
    assert login.post("/login-then-fail").status_code == 500
    assert credentials(app, login) == before
    assert _read(login, cid).status_code == 200


def test_rotation_without_a_token_does_nothing(app: Flask, login: ConversationClient) -> None:
    rv = login.post("/login")
    assert rv.status_code == 200
    assert credentials(app, login) == {}


def test_logout_leaves_nothing_to_either_token(
    app: Flask, login: ConversationClient, store_kind: str
) -> None:
    cids = _begin_three(login)
    before = credentials(app, login)
    events: list[t.Any] = []
    with conversation_destroyed.connected_to(lambda *a, **kw: events.append(kw), app):
        assert login.post("/logout").status_code == 200
    assert sorted(e["cid"] for e in events) == sorted(cids.values())
    assert {e["reason"] for e in events} == {"cleared"}
    for cid in cids.values():
        assert _read(login, cid).status_code == 404
    assert login.get("/list").json["ids"] == []  # type: ignore[index]
    if store_kind != "cookie":
        replay = browser_with(app, before)
        assert {_read(replay, cid).status_code for cid in cids.values()} == {404}
    assert login.post("/begin").status_code == 200


def test_rotation_is_refused_with_a_namespace_loader() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    scope = ConversationScope(app, store=MemoryStore())

    @scope.namespace_loader
    def user() -> str:
        return request.args["user"]

    @app.post("/login")
    def login() -> str:
        scope.rotate_namespace()
        return ""

    with pytest.raises(ConversationError, match="namespace_loader"):
        app.test_client().post("/login?user=ann")


# -- the attack it stops ---------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["memory", "redis", "redis-cluster"])
def test_a_planted_cookie_reads_nothing_after_login(app: Flask, login: ConversationClient) -> None:
    """Namespace fixation: an attacker plants their own cookies in the
    victim's browser, the victim books as a visitor, then logs in and pays.
    Before the login the attacker shares the victim's namespace; after it,
    the attacker's cookies reach nothing of the victim's.
    """
    attacker = t.cast(ConversationClient, app.test_client())
    attacker.post("/begin")
    victim = t.cast(ConversationClient, app.test_client())
    for name, value in credentials(app, attacker).items():
        victim.set_cookie(name, value)
    booking = victim.post("/begin").json["id"]  # type: ignore[index]
    victim.post("/set", json={"hotel": "Ritz"})
    assert _read(attacker, booking).status_code == 200  # the window the login closes

    assert victim.post("/login", headers={"X-Conversation-Id": ""}).status_code == 200
    victim.post("/set", json={"card": "4111"})
    assert _read(victim, booking).json["data"] == {"hotel": "Ritz", "card": "4111"}
    rv = _read(attacker, booking)
    assert rv.status_code == 404
    assert b"4111" not in rv.data and b"Ritz" not in rv.data
    assert booking not in attacker.get("/list").json["ids"]  # type: ignore[index]


# -- with Flask-Login ------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["memory", "redis"])
def test_flask_login_signals(app: Flask, api: ConversationClient) -> None:
    """The recipe of the security docs with Flask-Login itself: its
    ``user_logged_in`` signal rotates the namespace, ``user_logged_out``
    ends every conversation and rotates again. A visitor's cart survives
    the login under a new token; nothing survives the logout.
    """
    flask_login = pytest.importorskip("flask_login")

    scope: ConversationScope = app.extensions["conversation"]
    manager = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, id: str) -> None:
            self.id = id

    @manager.user_loader  # type: ignore[misc]
    def load_user(user_id: str) -> User:
        return User(user_id)

    @flask_login.user_logged_in.connect_via(app)
    def rotate(sender: Flask, user: User, **extra: t.Any) -> None:
        scope.rotate_namespace()

    @flask_login.user_logged_out.connect_via(app)
    def clear(sender: Flask, user: User, **extra: t.Any) -> None:
        scope.end_all()
        scope.rotate_namespace()

    @app.post("/login")
    def login() -> str:
        flask_login.login_user(User(request.form["name"]))
        return "welcome"

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "bye"

    cart = api.post("/begin").json["id"]  # type: ignore[index]
    api.post("/set", json={"items": ["tea"]})
    visitor = credentials(app, api)

    assert api.post("/login", data={"name": "ann"}).status_code == 200
    assert _read(api, cart).json["data"] == {"items": ["tea"]}
    assert _read(browser_with(app, visitor), cart).status_code == 404
    member = credentials(app, api)

    assert api.post("/logout").status_code == 200
    for cookies in (credentials(app, api), member, visitor):
        assert _read(browser_with(app, cookies), cart).status_code == 404
