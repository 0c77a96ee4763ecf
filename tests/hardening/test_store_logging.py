"""SPEC 9, "Store failures are logged": a real redis-server, stopped under
the application. Each failing request answers the 503 of SPEC 3.5 and
leaves exactly one ``WARNING`` on the ``flask_conversation`` logger with
the store's exception, whichever step failed (resolving the cid, the
commit, a listing), even when releasing its lock fails as well.
"""

from __future__ import annotations

import logging
import typing as t

import pytest
import redis
from flask import Flask
from flask import jsonify

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation import ConversationStoreError
from flask_conversation.stores import RedisStore
from flask_conversation.testing import ConversationClient
from tests.redis_servers import RedisServer


@pytest.fixture
def server(fast_redis: RedisServer) -> RedisServer:
    return fast_redis


@pytest.fixture
def app(server: RedisServer) -> t.Iterator[Flask]:
    client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="logging", TESTING=True)
    scope = ConversationScope(app, store=RedisStore(client))
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> t.Any:
        conversation.begin()
        conversation["n"] = 0
        return jsonify(id=conversation.id)

    @app.post("/incr")
    def incr() -> t.Any:
        conversation["n"] += 1
        return jsonify(n=conversation["n"])

    @app.post("/stop-then-incr")
    def stop_then_incr() -> t.Any:
        # The conversation was loaded and locked; the store goes away
        # before the commit, and before the lock's release.
        conversation["n"] += 1
        server.stop()
        return jsonify(n=conversation["n"])

    @app.get("/list")
    def listing() -> t.Any:
        return jsonify(ids=[c.id for c in scope.conversations()])

    yield app
    client.close()


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flask_conversation"]


def assert_logged_once(caplog: pytest.LogCaptureFixture, during: str) -> None:
    records = store_warnings(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.WARNING
    assert during in record.getMessage() and "RedisStore" in record.getMessage()
    assert record.exc_info is not None
    error = record.exc_info[1]
    assert isinstance(error, ConversationStoreError)
    assert isinstance(error.__cause__, redis.RedisError)
    caplog.clear()


@pytest.mark.parametrize(
    ("path", "during"),
    [("/incr", "resolving"), ("/stop-then-incr", "committing"), ("/list", "listing")],
)
def test_store_failure_is_logged_once_per_request(
    app: Flask,
    server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    path: str,
    during: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_conversation")
    tab = t.cast(ConversationClient, app.test_client())
    cid = tab.post("/begin").json["id"]
    assert tab.post("/incr").json == {"n": 1}
    assert store_warnings(caplog) == []

    if path != "/stop-then-incr":
        server.stop()
    if path == "/list":
        tab.cid = None  # a page of the site outside the conversation
        rv = tab.get(path)
    else:
        rv = tab.post(path, headers={"X-Conversation-Id": cid})
    assert rv.status_code == 503 and "Retry-After" in rv.headers
    assert_logged_once(caplog, during)

    # Every request of the outage says it once.
    for _ in range(2):
        assert tab.post("/incr", headers={"X-Conversation-Id": cid}).status_code == 503
        assert_logged_once(caplog, "resolving")

    # Back: the app recovers by itself, and logs nothing.
    server.start()
    assert tab.post("/begin").status_code == 200
    assert tab.post("/incr").json == {"n": 1}
    assert store_warnings(caplog) == []
