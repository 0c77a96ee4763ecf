"""Stores on their own, without the extension: the same contract tests run
against every store that keeps it.
"""

from __future__ import annotations

import typing as t

import pytest
from conftest import FakeClock
from flask import Flask

from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import SessionStore
from stores.store_testing import Records

#: The stores the contract tests run against. The session store works only
#: inside a request, which its builder provides.
STORE_KINDS = [
    "memory",
    "session",
    "redis",
    "redis-cluster",
    "sql-sqlite",
    "sql-postgres",
    "sql-mariadb",
]


@pytest.fixture
def store_clock() -> FakeClock:
    # A fraction of a second, so that stores must keep times exactly.
    return FakeClock(1_700_000_000.25)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, store_clock: FakeClock) -> t.Iterator[ConversationStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore(clock=store_clock)
    elif kind == "session":
        app = Flask(__name__)
        app.secret_key = "test"
        with app.test_request_context():
            yield SessionStore(clock=store_clock)
    elif kind.startswith("sql-"):
        from flask_conversation.stores.sql import SQLAlchemyStore
        from tests.sql_servers import sql_engine
        from tests.sql_servers import sql_url_for

        store = SQLAlchemyStore(sql_engine(sql_url_for(kind[4:], request)), clock=store_clock)
        yield store
        store.engine.dispose()
    else:
        from flask_conversation.stores.redis import RedisStore

        fixture = "redis_client" if kind == "redis" else "redis_cluster_client"
        yield RedisStore(request.getfixturevalue(fixture), clock=store_clock)


@pytest.fixture
def make(store_clock: FakeClock) -> Records:
    return Records(store_clock)
