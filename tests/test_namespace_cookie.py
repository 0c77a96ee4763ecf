"""SPEC 1: where the namespace token travels. Server-side stores keep it in
a small signed cookie of its own, so that a request learns its namespace
without Flask's session; ``SessionStore`` keeps it in the session, next to
the conversations.
"""

from __future__ import annotations

import copy
import time
import typing as t
from datetime import timedelta

import pytest
from conftest import BUILDERS
from conftest import FakeClock
from conftest import snapshot
from conftest import STORES
from flask import Flask
from flask import request
from flask import session
from flask.sessions import SecureCookieSession
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from werkzeug.wrappers import Response

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.namespaces import NAMESPACE_KEY
from flask_conversation.namespaces import new_token
from flask_conversation.namespaces import read_signed
from flask_conversation.namespaces import signer
from flask_conversation.stores import MemoryStore
from flask_conversation.testing import ConversationClient

COOKIE = "conversation_ns"
SERVER_SIDE = ["memory", "redis", "redis-cluster"]


def set_cookies(rv: t.Any) -> dict[str, str]:
    """The response's ``Set-Cookie`` headers by cookie name."""
    return {h.partition("=")[0]: h for h in rv.headers.getlist("Set-Cookie")}


def attributes(header: str) -> dict[str, str]:
    """The attributes of one ``Set-Cookie`` header, by lower-case name."""
    parts = header.split("; ")[1:]
    return {k.lower(): v for k, _, v in (p.partition("=") for p in parts)}


def token_of(client: t.Any) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return t.cast(str, cookie.value.partition(".")[0])


@pytest.mark.parametrize("store_kind", SERVER_SIDE)
def test_server_side_store_keeps_the_token_in_its_own_cookie(api: ConversationClient) -> None:
    rv = api.post("/begin")
    assert rv.status_code == 200
    cookies = set_cookies(rv)
    assert set(cookies) == {COOKIE}
    assert "httponly" in attributes(cookies[COOKIE])
    assert "Cookie" in rv.headers["Vary"]
    # Written once: later requests read it and write nothing.
    for _ in range(3):
        rv = api.post("/incr")
        assert rv.status_code == 200
        assert "Set-Cookie" not in rv.headers
        assert "Cookie" in rv.headers["Vary"]
    assert api.get_cookie("session") is None


@pytest.mark.parametrize("store_kind", ["cookie", "cachelib"])
def test_session_store_keeps_the_token_in_the_session(api: ConversationClient) -> None:
    rv = api.post("/begin")
    assert set(set_cookies(rv)) == {"session"}
    assert api.post("/incr").json["data"] == {"n": 1}  # type: ignore[index]


def test_cookie_name_none_keeps_the_token_in_the_session(clock: FakeClock) -> None:
    app = counting_app(MemoryStore(clock=clock), CONVERSATION_COOKIE_NAME=None)
    client = app.test_client()
    rv = client.post("/begin")
    assert set(set_cookies(rv)) == {"session"}
    assert client.post(f"/incr?cid={rv.json['cid']}").json == {"n": 1}  # type: ignore[index]


def test_cookie_name_must_differ_from_the_session_cookie() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", CONVERSATION_COOKIE_NAME="session")
    with pytest.raises(ValueError, match="CONVERSATION_COOKIE_NAME"):
        ConversationScope(app, store=MemoryStore())


# -- an application that counts what the session costs ---------------------------------


class CountingSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session, counting the session cookies it decodes and
    signs, and the requests whose session was read or changed.
    """

    def __init__(self) -> None:
        self.decoded = 0
        self.signed = 0
        self.accessed = 0
        self.modified = 0

    def open_session(self, app: Flask, request: t.Any) -> SecureCookieSession | None:
        if request.cookies.get(self.get_cookie_name(app)):
            self.decoded += 1
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: t.Any, response: Response) -> None:
        self.accessed += session.accessed
        self.modified += session.modified
        if session and self.should_set_cookie(app, session):
            self.signed += 1
        super().save_session(app, session, response)


def counting_app(store: t.Any, **config: t.Any) -> Flask:
    """An application with a counter, a nested step, a listing and an
    end, on Flask's cookie session counted by :class:`CountingSessionInterface`.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True, **config)
    app.session_interface = CountingSessionInterface()
    ConversationScope(app, store=store)

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin()
        conversation["n"] = 0
        return {"cid": conversation.id}

    @app.post("/incr")
    def incr() -> dict[str, t.Any]:
        conversation["n"] += 1
        return {"n": conversation["n"]}

    @app.post("/nest")
    def nest() -> dict[str, t.Any]:
        conversation.begin(nested=True)
        return {"cid": conversation.id}

    @app.get("/list")
    def listing() -> dict[str, t.Any]:
        scope = app.extensions["conversation"]
        return {"ids": [c.id for c in scope.conversations()]}

    @app.post("/end")
    def end() -> dict[str, t.Any]:
        conversation.end(root=True)
        return {}

    return app


def run_flow(app: Flask) -> tuple[CountingSessionInterface, list[t.Any]]:
    client = app.test_client()
    responses = []
    cid = client.post("/begin").json["cid"]  # type: ignore[index]
    for _ in range(3):
        responses.append(client.post(f"/incr?cid={cid}"))
    child = client.post(f"/nest?cid={cid}").json["cid"]  # type: ignore[index]
    responses.append(client.post(f"/incr?cid={child}"))
    responses.append(client.get(f"/list?cid={child}"))
    responses.append(client.post(f"/end?cid={child}"))
    assert [rv.status_code for rv in responses] == [200] * 6
    assert responses[3].json == {"n": 4}
    return t.cast(CountingSessionInterface, app.session_interface), responses


@pytest.mark.parametrize("store_kind", SERVER_SIDE)
def test_server_side_store_needs_no_session(
    store_kind: str, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    """Through a whole flow the session is never decoded nor signed, nor
    changed; it is asked only, when the namespace cookie is written, whether
    it is permanent. With the token in the session, the same flow decodes
    the session on every request and signs it.
    """
    store = BUILDERS[store_kind](Flask(__name__), clock, request)
    counted, responses = run_flow(counting_app(store))
    assert (counted.decoded, counted.signed, counted.modified) == (0, 0, 0)
    assert counted.accessed == 1  # the first request, which wrote the cookie
    assert all("Set-Cookie" not in rv.headers for rv in responses)

    store = BUILDERS[store_kind](Flask(__name__), clock, request)
    counted, _ = run_flow(counting_app(store, CONVERSATION_COOKIE_NAME=None))
    assert counted.decoded == 7  # every request after the first
    assert counted.signed >= 1


# -- forged, stale and foreign cookies ------------------------------------------------------


def _aged(app: Flask, token: str, days: float) -> str:
    old = copy.copy(signer(app))
    old.get_timestamp = lambda: int(time.time() - days * 86400)  # type: ignore[method-assign]
    return old.sign(token).decode()


def test_a_remembered_signature_is_judged_like_itsdangerous() -> None:
    """A verified cookie is remembered for the next request, but its age
    is judged every time: the same verdicts as itsdangerous's own
    ``unsign(max_age=...)``, for cookies of every age, read twice.
    """
    app = Flask(__name__)
    app.secret_key = "test"
    verdicts = []
    for days in (-1, 0, 0.5, 9, 11, 40):
        raw = _aged(app, new_token(), days)
        for max_age in (0, 86400, 10 * 86400, 31 * 86400):
            for _ in range(2):
                try:
                    signer(app).unsign(raw, max_age=max_age)
                    expected = "ok"
                except SignatureExpired:
                    expected = "expired"
                try:
                    read_signed(signer(app), raw, max_age)
                    got = "ok"
                except SignatureExpired:
                    got = "expired"
                assert got == expected, (days, max_age)
                verdicts.append(got)
    assert "ok" in verdicts and "expired" in verdicts
    with pytest.raises(BadSignature):
        read_signed(signer(app), _aged(app, new_token(), 0)[:-2] + "xx", 86400)


def _tampered(app: Flask, value: str, how: str) -> str:
    token, _, rest = value.partition(".")
    if how == "signature":
        return value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    if how == "token":
        return ("A" * len(token)) + "." + rest
    if how == "unsigned":
        return token
    if how == "other-key":
        other = Flask(__name__)
        other.secret_key = "another key"
        return signer(other).sign(token).decode()
    if how == "too-old":
        return _aged(app, token, app.permanent_session_lifetime.days + 1)
    if how == "not-a-token":
        return signer(app).sign("short").decode()
    return "garbage.with.dots"


@pytest.mark.parametrize("store_kind", ["memory", "redis"])
@pytest.mark.parametrize(
    "how", ["signature", "token", "unsigned", "other-key", "too-old", "not-a-token", "garbage"]
)
def test_a_forged_cookie_reaches_nothing(app: Flask, api: ConversationClient, how: str) -> None:
    """A cookie that does not verify counts as absent: the victim's cid is
    unknown to it (404), and a begin gets a new namespace.
    """
    victim = api
    cid = victim.post("/begin").json["id"]  # type: ignore[index]
    victim.post("/set", json={"secret": "victim"})
    cookie = victim.get_cookie(COOKIE)
    assert cookie is not None

    attacker = t.cast(ConversationClient, app.test_client())
    attacker.set_cookie(COOKIE, _tampered(app, cookie.value, how))
    rv = attacker.get("/show", query_string={"cid": cid})
    assert rv.status_code == 404
    assert b"victim" not in rv.data
    rv = attacker.post("/begin")
    assert rv.status_code == 200
    assert COOKIE in set_cookies(rv)
    assert token_of(attacker) != token_of(victim)
    assert victim.get("/show").json["data"] == {"secret": "victim"}  # type: ignore[index]


@pytest.mark.parametrize("store_kind", ["memory"])
def test_secret_key_fallbacks_still_verify(app: Flask, api: ConversationClient) -> None:
    """A cookie signed with a key in ``SECRET_KEY_FALLBACKS`` is read, and
    signed again with the current key, so that the old key can go.
    """
    api.post("/begin")
    stale = api.get_cookie(COOKIE)
    assert stale is not None
    app.config.update(SECRET_KEY="rotated", SECRET_KEY_FALLBACKS=["test"])
    rv = api.get("/show")
    assert rv.status_code == 200
    assert COOKIE in set_cookies(rv)
    assert "Set-Cookie" not in api.get("/show").headers
    app.config.update(SECRET_KEY_FALLBACKS=[])
    assert api.get("/show").status_code == 200
    api.set_cookie(COOKIE, stale.value)
    assert api.get("/show").status_code == 404


def test_no_secret_key_names_the_fix(clock: FakeClock) -> None:
    app = counting_app(MemoryStore(clock=clock))
    app.config["SECRET_KEY"] = None
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        app.test_client().post("/begin")
    # A cookie cannot be checked either: an unknown cid.
    client = app.test_client()
    client.set_cookie(COOKIE, "token.stamp.signature")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.post("/incr?cid=whatever").status_code == 404


def test_without_a_secret_key_a_server_side_session_carries_the_token(
    clock: FakeClock, tmp_path: t.Any
) -> None:
    """Flask-Session needs no secret key; a cookie of our own could not be
    signed without one, so the server-side session keeps the token.
    """
    from cachelib.file import FileSystemCache
    from flask_session import Session

    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(str(tmp_path / "sessions")),
    )
    Session(app)
    ConversationScope(app, store=MemoryStore(clock=clock))

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin()
        conversation["n"] = 1
        return {"cid": conversation.id}

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return dict(conversation)

    client = app.test_client()
    rv = client.post("/begin")
    assert set(set_cookies(rv)) == {"session"}
    assert client.get(f"/read?cid={rv.json['cid']}").json == {"n": 1}  # type: ignore[index]


# -- the session cookie's settings and lifetime --------------------------------------------


@pytest.fixture
def settings_app(clock: FakeClock) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test",
        TESTING=True,
        SESSION_COOKIE_DOMAIN="example.org",
        SESSION_COOKIE_PATH="/shop",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
        # The token is never for scripts, whatever the session cookie allows.
        SESSION_COOKIE_HTTPONLY=False,
        PERMANENT_SESSION_LIFETIME=timedelta(days=3),
    )
    ConversationScope(app, store=MemoryStore(clock=clock))

    @app.post("/begin")
    def begin() -> str:
        session["user"] = "ann"
        session.permanent = request.args.get("permanent") == "1"
        conversation.begin()
        return ""

    return app


@pytest.mark.parametrize("permanent", [False, True])
def test_cookie_follows_the_session_cookies_settings(settings_app: Flask, permanent: bool) -> None:
    rv = settings_app.test_client().post(f"/begin?permanent={int(permanent)}")
    cookies = set_cookies(rv)
    ours, flasks = attributes(cookies[COOKIE]), attributes(cookies["session"])
    assert ours.pop("httponly") == ""
    assert set(ours) == set(flasks)
    for key in ("domain", "path", "samesite"):
        assert ours[key] == flasks[key]
    assert {"secure", "partitioned"} <= set(ours)
    assert ("expires" in ours) is permanent
    if permanent:
        assert ours["expires"][:16] == flasks["expires"][:16]


@pytest.mark.parametrize("store_kind", ["memory"])
@pytest.mark.parametrize("refresh", [True, False])
def test_cookie_is_refreshed_after_half_its_lifetime(
    app: Flask, api: ConversationClient, refresh: bool
) -> None:
    """Sliding like a permanent session (``SESSION_REFRESH_EACH_REQUEST``),
    but written once half of ``PERMANENT_SESSION_LIFETIME`` has passed
    rather than on every request; without refreshing it lives its lifetime
    from when it was written.
    """
    app.config["SESSION_REFRESH_EACH_REQUEST"] = refresh
    api.post("/begin")
    token = token_of(api)
    lifetime = app.permanent_session_lifetime.days
    api.set_cookie(COOKIE, _aged(app, token, lifetime / 2 - 1))
    assert "Set-Cookie" not in api.get("/show").headers
    api.set_cookie(COOKIE, _aged(app, token, lifetime / 2 + 1))
    rv = api.get("/show")
    assert rv.status_code == 200
    assert (COOKIE in set_cookies(rv)) is refresh
    assert token_of(api) == token
    if refresh:
        assert api.get("/show").status_code == 200


# -- moving the token out of the session ---------------------------------------------------


def test_a_token_in_the_session_moves_to_the_cookie(clock: FakeClock) -> None:
    """Conversations begun while the session carried the token stay
    reachable once the cookie carries it: the first request that needs the
    namespace moves the token (a failed request does not).
    """
    app = counting_app(MemoryStore(clock=clock), CONVERSATION_COOKIE_NAME=None)

    @app.post("/fail")
    def fail() -> str:
        conversation["n"] += 100
        raise RuntimeError("boom")

    client = app.test_client()
    cid = client.post("/begin").json["cid"]  # type: ignore[index]
    assert client.get_cookie(COOKIE) is None

    app.config.update(CONVERSATION_COOKIE_NAME=COOKIE, PROPAGATE_EXCEPTIONS=False)
    assert client.post(f"/fail?cid={cid}").status_code == 500
    assert client.get_cookie(COOKIE) is None

    rv = client.post(f"/incr?cid={cid}")
    assert rv.json == {"n": 1}
    assert set(set_cookies(rv)) == {COOKIE, "session"}
    # The session no longer holds it: emptied, Flask deletes its cookie.
    assert client.get_cookie("session") is None
    assert client.post(f"/incr?cid={cid}").json == {"n": 2}
    with app.test_request_context():
        assert NAMESPACE_KEY not in session


# -- every store behaves the same --------------------------------------------------------


def transcript(client: ConversationClient) -> list[t.Any]:
    """A flow over two tabs, nesting, ending and listing, with ids replaced
    by the order they first appeared in.
    """
    names: dict[str, str] = {}

    def label(value: t.Any) -> t.Any:
        if isinstance(value, str) and len(value) > 16:
            return names.setdefault(value, f"id{len(names)}")
        if isinstance(value, list):
            return [label(v) for v in value]
        if isinstance(value, dict):
            return {k: label(v) for k, v in value.items()}
        return value

    other = client.new_tab()
    steps = [
        client.post("/begin"),
        client.post("/set", json={"a": 1}),
        other.post("/begin"),
        other.post("/set", json={"b": 2}),
        client.post("/begin", json={"nested": True}),
        client.post("/incr"),
        client.get("/show"),
        other.get("/show"),
        client.post("/end"),
        client.get("/show"),
        other.post("/end"),
        other.get("/show"),
    ]
    return [(rv.status_code, label(rv.json), "X-Conversation-Id" in rv.headers) for rv in steps]


def test_every_store_behaves_the_same(clock: FakeClock, request: pytest.FixtureRequest) -> None:
    results = {}
    for kind in STORES:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="test", TESTING=True)
        store = BUILDERS[kind](app, clock, request)
        ConversationScope(app, store=store)
        app.test_client_class = ConversationClient
        for path, view in _VIEWS.items():
            app.add_url_rule(path, path, view, methods=["GET", "POST"])
        results[kind] = transcript(t.cast(ConversationClient, app.test_client()))
    reference = results.pop("cookie")
    assert all(r == reference for r in results.values()), results
    assert reference[6][1]["data"] == {"a": 1, "n": 1}


def request_json() -> dict[str, t.Any]:
    return request.get_json(silent=True) or {}


def _show() -> dict[str, t.Any]:
    return snapshot()


def _begin() -> dict[str, t.Any]:
    return {"began": conversation.begin(**request_json()), **snapshot()}


def _set() -> dict[str, t.Any]:
    conversation.update(request_json())
    return snapshot()


def _end() -> dict[str, t.Any]:
    conversation.end(**request_json())
    return snapshot()


def _incr() -> dict[str, t.Any]:
    conversation["n"] = conversation.get("n", 0) + 1
    return snapshot()


_VIEWS = {"/show": _show, "/begin": _begin, "/set": _set, "/end": _end, "/incr": _incr}
