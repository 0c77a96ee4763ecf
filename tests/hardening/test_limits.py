"""Values that cannot be stored, state that is too large and begins past
the limits, on every store.

Each failure must be a clear :exc:`ConversationError` that names the key (or,
for the cookie guard, the fix), and must lose nothing: the previous state of
every conversation in the stack is what the next request reads, and the
stack's lock is free again. What the client drives (a size, a depth, a
count, a begin without a namespace) is a 4xx; the cookie guard, a
deployment problem, stays a 500 (SPEC 9).
"""

from __future__ import annotations

import math
import secrets
import typing as t

import pytest
from flask import Flask
from flask import got_request_exception
from flask import request
from flask.testing import FlaskClient

from flask_conversation import conversation
from flask_conversation import ConversationError
from flask_conversation import ConversationScope
from tests.hardening.instrumented import ALL_STORES
from tests.hardening.instrumented import browser
from tests.hardening.instrumented import counting_store

pytestmark = pytest.mark.parametrize("store_kind", ALL_STORES)


def _circular() -> list[t.Any]:
    loop: list[t.Any] = []
    loop.append(loop)
    return loop


def _deep(depth: int) -> list[t.Any]:
    value: list[t.Any] = []
    for _ in range(depth):
        value = [value]
    return value


class _Opaque:
    pass


#: Values no store can keep, each with an id for the test name.
UNSTORABLE: dict[str, t.Callable[[], t.Any]] = {
    "object": _Opaque,
    "set": lambda: {1, 2},
    "int-key": lambda: {"nested": {1: "x"}},
    "nan": lambda: math.nan,
    "infinity": lambda: [math.inf],
    "function": lambda: print,
    "circular": _circular,
    "deep-10000": lambda: _deep(10_000),
    "lone-surrogate": lambda: "caf\udce9",
}


@pytest.fixture
def limits_app(counting_app: Flask) -> Flask:
    """The views of these tests, with a short lock timeout: a lock left
    behind by a failed request shows as a 503 instead of a long wait.
    """
    app = counting_app
    app.config["CONVERSATION_LOCK_TIMEOUT"] = 0.5
    app.config["CONVERSATION_MAX_SIZE"] = 8_000

    @app.post("/poison/<kind>")
    def poison(kind: str) -> str:
        conversation["step"] = "poisoned"
        if conversation.parent is not None:
            conversation.parent["step"] = "poisoned"
        conversation["bad"] = UNSTORABLE[kind]()
        return "set"

    @app.post("/big/<int:size>")
    def big(size: int) -> str:
        conversation["step"] = "big"
        # Random text: the signed cookie is compressed, repetition would fit.
        conversation["big"] = secrets.token_urlsafe(size)[:size]
        return "set"

    @app.post("/write-then-nest")
    def write_then_nest() -> t.Any:
        conversation["step"] = "refused"
        conversation.begin(nested=True)
        conversation["step"] = "child of a refused begin"
        return "began"

    @app.post("/temporary/<kind>")
    def temporary(kind: str) -> str:
        conversation["bad"] = UNSTORABLE[kind]()
        return "fine"

    return app


class Errors:
    """Collects the exceptions that requests end with."""

    def __init__(self, app: Flask) -> None:
        self.seen: list[BaseException] = []
        got_request_exception.connect(self._record, app, weak=False)
        self.app = app

    def _record(self, sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        self.seen.append(exception)

    def close(self) -> None:
        got_request_exception.disconnect(self._record, self.app)

    def take(self) -> list[BaseException]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def errors(limits_app: Flask) -> t.Iterator[Errors]:
    rv = Errors(limits_app)
    yield rv
    rv.close()


def _stack(client: FlaskClient) -> tuple[str, str]:
    root = client.post("/begin", data={"step": "root-ok"}).get_json()["id"]
    child = client.post(f"/nest?cid={root}", data={"step": "child-ok"}).get_json()["id"]
    return root, child


def _read(client: FlaskClient, cid: str) -> dict[str, t.Any]:
    rv = client.get("/read", query_string={"cid": cid})
    assert rv.status_code == 200, rv.status_code
    return t.cast(dict[str, t.Any], rv.get_json()["data"])


def _assert_one_conversation_error(errors: Errors, *needles: str) -> ConversationError:
    seen = errors.take()
    assert len(seen) == 1, seen
    error = seen[0]
    assert isinstance(error, ConversationError), f"{type(error).__name__}: {error}"
    for needle in needles:
        assert needle in str(error), str(error)
    return error


@pytest.mark.parametrize("kind", list(UNSTORABLE))
def test_unstorable_value_keeps_the_previous_state(
    limits_app: Flask, errors: Errors, kind: str
) -> None:
    """The request that stores the value fails with a ConversationError
    that names the key; parent and child keep their previous state, and the
    stack is not left locked.
    """
    client = browser(limits_app)
    root, child = _stack(client)
    rv = client.post(f"/poison/{kind}", query_string={"cid": child})
    assert rv.status_code == 500
    _assert_one_conversation_error(errors, "'bad'")
    assert _read(client, root) == {"step": "root-ok"}
    assert _read(client, child) == {"step": "child-ok"}
    assert errors.take() == []


@pytest.mark.parametrize("kind", ["object", "circular", "lone-surrogate"])
def test_temporary_conversation_never_stores(limits_app: Flask, errors: Errors, kind: str) -> None:
    """A temporary conversation is never written, so it takes any value."""
    rv = browser(limits_app).post(f"/temporary/{kind}")
    assert rv.status_code == 200
    assert errors.take() == []


def test_oversized_state_is_413_and_keeps_the_previous_state(
    limits_app: Flask, errors: Errors
) -> None:
    """Over ``CONVERSATION_MAX_SIZE``: a 413 whose message names the limit
    and the largest key; nothing changes, the stack is free, and the client
    keeps the cid it sent.
    """
    client = browser(limits_app)
    root, child = _stack(client)
    assert client.post("/big/1000", query_string={"cid": child}).status_code == 200
    rv = client.post("/big/9000", query_string={"cid": child})
    assert rv.status_code == 413
    assert "&#39;big&#39;" in rv.text and "CONVERSATION_MAX_SIZE (8000)" in rv.text
    assert rv.headers["X-Conversation-Id"] == child
    assert errors.take() == []
    data = _read(client, child)
    assert data["step"] == "big" and len(data["big"]) == 1000
    assert _read(client, root) == {"step": "root-ok"}


def test_depth_limit_is_409_and_commits_nothing(limits_app: Flask, errors: Errors) -> None:
    """A nested begin past ``CONVERSATION_MAX_DEPTH`` is a 409 naming the
    limit; what the request wrote before the begin is not committed, no
    conversation is added, and the stack is free.
    """
    limits_app.config["CONVERSATION_MAX_DEPTH"] = 1
    client = browser(limits_app)
    root, child = _stack(client)
    rv = client.post("/write-then-nest", query_string={"cid": child})
    assert rv.status_code == 409 and "CONVERSATION_MAX_DEPTH (1)" in rv.text
    assert rv.headers["X-Conversation-Id"] == child
    assert errors.take() == []
    assert _read(client, child) == {"step": "child-ok"}
    assert sorted(client.get("/list").get_json()["ids"]) == sorted([root, child])


def test_count_limit_is_409_when_the_stack_alone_is_full(limits_app: Flask, errors: Errors) -> None:
    """``CONVERSATION_MAX_COUNT = 3``: a stack of a root and two sibling
    children fills it (another tab's stack is evicted to make room); one
    more begin in it could only fit by evicting the stack itself, so it is
    a 409 naming the limit, and nothing is written.
    """
    limits_app.config["CONVERSATION_MAX_COUNT"] = 3
    client = browser(limits_app)
    other = client.post("/begin", data={"step": "other tab"}).get_json()["id"]
    root, first = _stack(client)
    second = client.post(f"/nest?cid={root}", data={"step": "second"}).get_json()["id"]
    listed = client.get("/list").get_json()["ids"]
    assert sorted(listed) == sorted([root, first, second]) and other not in listed
    rv = client.post("/write-then-nest", query_string={"cid": root})
    assert rv.status_code == 409 and "CONVERSATION_MAX_COUNT (3)" in rv.text
    assert errors.take() == []
    assert _read(client, root) == {"step": "root-ok"}
    assert sorted(client.get("/list").get_json()["ids"]) == sorted([root, first, second])


def test_begin_without_namespace_is_403(limits_app: Flask, errors: Errors) -> None:
    """With a ``namespace_loader`` that finds nobody (here: no ``X-User``
    header), a begin is a 403: the application does not know who asks, so
    it keeps nothing for them. Nothing reaches the store.
    """
    scope: ConversationScope = limits_app.extensions["conversation"]
    scope.namespace_loader(lambda: request.headers.get("X-User"))
    client = browser(limits_app)
    store = counting_store(limits_app)
    store.take()
    for path, data in (("/begin", {}), ("/natural", {"id": "booking-1"})):
        rv = client.post(path, data=data)
        assert rv.status_code == 403 and "who is asking" in rv.text
    assert errors.take() == []
    assert [c.method for c in store.take()] == []
    assert client.post("/begin", headers={"X-User": "ada"}).status_code == 200


def test_cookie_guard(limits_app: Flask, errors: Errors, store_kind: str) -> None:
    """State that fits ``CONVERSATION_MAX_SIZE`` but not a browser cookie:
    with Flask's cookie session the request fails with a message that names
    the fix and the cookie the browser holds is left as it was; server-side
    sessions and stores take it.
    """
    client = browser(limits_app)
    root, child = _stack(client)
    before = client.get_cookie("session")
    rv = client.post("/big/5000", query_string={"cid": child})
    if store_kind != "cookie":
        assert rv.status_code == 200
        assert len(_read(client, child)["big"]) == 5000
        return
    assert before is not None
    assert rv.status_code == 500
    _assert_one_conversation_error(errors, 'CONVERSATION_STORE = "redis"', "MAX_COOKIE_SIZE")
    after = client.get_cookie("session")
    assert after is not None and after.value == before.value
    assert _read(client, child) == {"step": "child-ok"}
    assert _read(client, root) == {"step": "root-ok"}


def test_cookie_guard_counts_every_conversation(
    limits_app: Flask, errors: Errors, store_kind: str
) -> None:
    """Many small conversations add up: the first one that would overflow
    the cookie fails, all earlier ones stay readable.
    """
    if store_kind != "cookie":
        pytest.skip("only the cookie session has a size limit")
    client = browser(limits_app)
    began: dict[str, str] = {}
    for _ in range(30):
        # Random text: the signed cookie is compressed, repetition would fit.
        filler = secrets.token_urlsafe(300)
        rv = client.post("/begin", data={"filler": filler})
        if rv.status_code != 200:
            break
        began[rv.get_json()["id"]] = filler
    assert rv.status_code == 500, "30 conversations of 400 random bytes fitted a cookie"
    _assert_one_conversation_error(errors, "MAX_COOKIE_SIZE")
    assert len(began) >= 3
    for cid, filler in began.items():
        assert _read(client, cid)["filler"] == filler
