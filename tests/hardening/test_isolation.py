"""Two users who know each other's cids, on every store.

A cid names a conversation inside one namespace (by default one per
session); it is not a credential on its own. These tests give one user all
of the other's cids, through every source and every view, and check that
nothing is read, written or ended across the two sessions; then they cover
fixation (a link that carries somebody else's cid) and logout.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import session
from flask.testing import FlaskClient

from tests.hardening.instrumented import browser
from tests.hardening.instrumented import browser_with
from tests.hardening.instrumented import credentials
from tests.hardening.instrumented import WITH_CLUSTER

pytestmark = pytest.mark.parametrize("store_kind", WITH_CLUSTER)


class User:
    """One browser with its conversations: a root, a child of it, and the
    natural id ``checkout``.

    :param app: the application.
    :param name: a word put into every secret of the user.
    """

    def __init__(self, app: Flask, name: str) -> None:
        self.client = browser(app)
        self.name = name
        self.root = self.begin("/begin", secret=f"root-secret-{name}")
        self.child = self.begin(f"/nest?cid={self.root}", secret2=f"child-secret-{name}")
        self.natural = self.begin("/natural", id="checkout", secret=f"natural-secret-{name}")
        assert self.natural == "checkout"

    def begin(self, path: str, **form: str) -> str:
        rv = self.client.post(path, data=form)
        assert rv.status_code == 200, rv.data
        return t.cast(str, rv.get_json()["id"])

    @property
    def cids(self) -> list[str]:
        return [self.root, self.child, self.natural]

    def read(self, cid: str) -> dict[str, t.Any]:
        rv = self.client.get("/read", query_string={"cid": cid})
        assert rv.status_code == 200, (cid, rv.status_code)
        return t.cast(dict[str, t.Any], rv.get_json()["data"])

    def check_intact(self) -> None:
        """Every conversation of the user is live, unchanged and was never
        written by anybody else.
        """
        assert self.read(self.root) == {"secret": f"root-secret-{self.name}"}
        assert self.read(self.child) == {
            "secret": f"root-secret-{self.name}",
            "secret2": f"child-secret-{self.name}",
        }
        assert self.read(self.natural) == {
            "id": "checkout",
            "secret": f"natural-secret-{self.name}",
        }


def _send(client: FlaskClient, path: str, cid: str, source: str) -> t.Any:
    if source == "query":
        return client.post(path, query_string={"cid": cid})
    if source == "form":
        return client.post(path, data={"cid": cid})
    return client.post(path, headers={"X-Conversation-Id": cid})


def test_known_cids_grant_nothing(counting_app: Flask) -> None:
    """User a sends every cid of user b, from every source, to every view:
    404 each time, b's conversations unchanged, none of b's data in any
    response, and a's listing shows only a's own conversations.
    """
    app = counting_app
    a, b = User(app, "a"), User(app, "b")
    foreign = [cid for cid in b.cids if cid != "checkout"]
    tried = 0
    for cid in foreign:
        for source in ("query", "form", "header"):
            for path in ("/read", "/write", "/end", "/nest", "/begin"):
                rv = _send(a.client, path, cid, source)
                tried += 1
                assert rv.status_code == 404, (cid, source, path, rv.status_code)
                assert b"secret-b" not in rv.data
                assert "X-Conversation-Id" not in rv.headers
    assert tried == 30

    # The same natural id lives separately in each namespace.
    assert a.read("checkout")["secret"] == "natural-secret-a"
    rv = a.client.get("/list")
    assert set(rv.get_json()["ids"]) == set(a.cids)
    b.check_intact()
    a.check_intact()


def test_end_all_of_one_user_leaves_the_other(counting_app: Flask) -> None:
    """``end_all()`` ends the caller's namespace only."""
    app = counting_app
    a, b = User(app, "a"), User(app, "b")
    assert a.client.post("/end-all").status_code == 200
    for cid in a.cids:
        assert a.client.get("/read", query_string={"cid": cid}).status_code == 404
    assert a.client.get("/list").get_json()["ids"] == []
    b.check_intact()


def test_fixation_link_does_not_adopt_the_attackers_conversation(counting_app: Flask) -> None:
    """A user who follows a link carrying an attacker's cid gets a 404, not
    the attacker's conversation: nothing the user then types can land where
    the attacker reads it. The user's own conversation gets a fresh id.
    """
    app = counting_app
    attacker = User(app, "attacker")
    user = browser(app)
    for cid in attacker.cids[:2]:
        for path in ("/read", "/write", "/begin", "/nest"):
            rv = user.post(path, query_string={"cid": cid}, data={"card": "4111"})
            assert rv.status_code == 404, (path, rv.status_code)
            assert b"attacker" not in rv.data
    rv = user.post("/begin", data={"card": "4111"})
    assert rv.status_code == 200
    assert rv.get_json()["id"] not in attacker.cids
    attacker.check_intact()
    for cid in attacker.cids:
        assert "card" not in attacker.read(cid)


@pytest.fixture
def with_logout(counting_app: Flask) -> Flask:
    app = counting_app

    @app.post("/logout")
    def logout() -> str:
        scope = app.extensions["conversation"]
        scope.end_all()
        scope.rotate_namespace()
        session.clear()
        return "bye"

    return app


def test_logout_ends_everything(with_logout: Flask, store_kind: str) -> None:
    """Logout with ``scope.end_all()``, ``scope.rotate_namespace()`` and
    ``session.clear()``: the old cids are dead for that browser, and a new
    conversation starts in a new namespace. Replaying the cookies from
    before the logout revives nothing on server-side stores; with Flask's
    cookie session the old cookie still holds the old conversations (the
    cookie is the store), which the security notes document.
    """
    app = with_logout
    a, b = User(app, "a"), User(app, "b")
    before = credentials(app, a.client)
    assert before
    assert a.client.post("/logout").status_code == 200
    for cid in a.cids:
        assert a.client.get("/read", query_string={"cid": cid}).status_code == 404

    replay = browser_with(app, before)
    statuses = {replay.get("/read", query_string={"cid": cid}).status_code for cid in a.cids}
    if store_kind == "cookie":
        assert statuses == {200}
    else:
        assert statuses == {404}
    b.check_intact()


def test_session_cookie_is_the_credential(counting_app: Flask) -> None:
    """The other side of the coin: whoever holds a user's session cookie
    and a cid is that user, as with any session. Transport security
    (HTTPS, ``SESSION_COOKIE_SECURE``, ``HttpOnly``) protects the cookie.
    """
    app = counting_app
    b = User(app, "b")
    thief = browser_with(app, credentials(app, b.client))
    rv = thief.get("/read", query_string={"cid": b.root})
    assert rv.status_code == 200
    assert rv.get_json()["data"]["secret"] == "root-secret-b"
