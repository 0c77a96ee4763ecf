"""Fixtures of the hardening tests."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_conversation import ConversationScope
from tests.hardening.instrumented import add_views
from tests.hardening.instrumented import CountingStore
from tests.redis_servers import RedisServer


@pytest.fixture
def counting_app(store_kind: str, clock: t.Any, request: pytest.FixtureRequest) -> Flask:
    """An application on the store named by ``store_kind`` (built as the
    shared ``app`` fixture builds it), wrapped in a :class:`CountingStore`,
    with the plain views. Errors answer 500 instead of reaching the test.
    """
    from conftest import BUILDERS

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True, PROPAGATE_EXCEPTIONS=False)
    inner = BUILDERS[store_kind](app, clock, request)
    expected = {
        "cookie": "SessionStore",
        "cachelib": "SessionStore",
        "memory": "MemoryStore",
        "redis": "RedisStore",
        "redis-cluster": "RedisStore",
        "sql-sqlite": "SQLAlchemyStore",
        "sql-postgres": "SQLAlchemyStore",
    }[store_kind]
    # The app must really run on the store the test is named after.
    assert type(inner).__name__ == expected, (store_kind, inner)
    ConversationScope(app, store=CountingStore(inner))
    add_views(app)
    return app


@pytest.fixture
def durable_redis(spare_redis_server: RedisServer) -> RedisServer:
    """A Redis server of the test's own whose acknowledged writes survive
    a kill.
    """
    return spare_redis_server


@pytest.fixture
def fast_redis(tmp_path: Path) -> t.Iterator[RedisServer]:
    """A Redis server of the test's own without persistence."""
    with RedisServer(tmp_path / "redis") as server:
        yield server
