"""Shared fixtures: an application factory run against every store, a
controllable clock, and tabs that share one browser's cookie jar.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_conversation import ConversationScope
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient

pytest_plugins = ["tests.redis_servers", "tests.sql_servers"]

#: Every way conversations can be kept. Each names a builder below.
STORES = ["cookie", "cachelib", "memory", "redis", "redis-cluster", "sql-sqlite", "sql-postgres"]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def conversation_app(store: ConversationStore) -> Flask:
    """A bare application with the extension on ``store``, tested with
    :class:`ConversationClient`. Tests add their views to it.

    :param store: where the conversations are kept.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    ConversationScope(app, store=store)
    app.test_client_class = ConversationClient
    return app


def counter_app(store: ConversationStore) -> Flask:
    """An application on ``store`` with a counter in a conversation:
    ``POST /begin`` starts one at 0 and answers its id, ``POST /incr``
    counts and answers the count, ``GET /plain`` does not use it.

    :param store: where the conversations are kept.
    """
    from flask_conversation import conversation

    app = conversation_app(store)

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        conversation["n"] = 0
        return str(conversation.id)

    @app.post("/incr")
    def incr() -> str:
        conversation["n"] += 1
        return str(conversation["n"])

    @app.get("/plain")
    def plain() -> str:
        return "fine"

    return app


def counted_app(store: ConversationStore) -> Flask:
    """An application on ``store`` with one view per kind of request
    whose cost the tests count: ``POST /begin`` (nested in a long-running
    conversation), ``POST /incr``, ``GET /read``, ``GET /list``,
    ``POST /end``, ``GET /plain`` (no conversation) and ``POST /book/<n>``
    (joins the natural id ``booking-<n>``).

    :param store: where the conversations are kept.
    """
    from flask_conversation import conversation
    from flask_conversation.extension import conversations

    app = conversation_app(store)

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin(nested=conversation.long_running)
        conversation["n"] = 0
        return {"id": conversation.id}

    @app.post("/incr")
    def incr() -> dict[str, t.Any]:
        conversation["n"] += 1
        return {"n": conversation["n"]}

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"n": conversation.get("n")}

    @app.get("/list")
    def listing() -> list[str]:
        return [c.id for c in conversations()]

    @app.post("/end")
    def end() -> str:
        conversation.end()
        return "ended"

    @app.get("/plain")
    def plain() -> str:
        return "no conversation"

    @app.post("/book/<int:hotel>")
    def book(hotel: int) -> dict[str, t.Any]:
        conversation.begin(id=f"booking-{hotel}", join=True)
        conversation.setdefault("n", 0)
        return {"id": conversation.id}

    return app


def _cookie(app: Flask, clock: FakeClock, request: pytest.FixtureRequest) -> ConversationStore:
    return SessionStore(clock=clock)


def _cachelib(app: Flask, clock: FakeClock, request: pytest.FixtureRequest) -> ConversationStore:
    from cachelib.file import FileSystemCache
    from flask_session import Session

    tmp_path = request.getfixturevalue("tmp_path")
    app.config["SESSION_TYPE"] = "cachelib"
    app.config["SESSION_CACHELIB"] = FileSystemCache(str(tmp_path / "sessions"))
    Session(app)
    return SessionStore(clock=clock)


def _memory(app: Flask, clock: FakeClock, request: pytest.FixtureRequest) -> ConversationStore:
    return MemoryStore(clock=clock)


def _redis(app: Flask, clock: FakeClock, request: pytest.FixtureRequest) -> ConversationStore:
    from flask_conversation.stores import RedisStore

    # The fixture empties the server before each test.
    client = request.getfixturevalue("redis_client")
    return RedisStore(client, clock=clock)  # type: ignore[no-any-return]


def _redis_cluster(
    app: Flask, clock: FakeClock, request: pytest.FixtureRequest
) -> ConversationStore:
    from flask_conversation.stores import RedisStore

    client = request.getfixturevalue("redis_cluster_client")
    return RedisStore(client, clock=clock)  # type: ignore[no-any-return]


def _sql(kind: str) -> t.Callable[[Flask, FakeClock, pytest.FixtureRequest], ConversationStore]:
    def build(app: Flask, clock: FakeClock, request: pytest.FixtureRequest) -> ConversationStore:
        from flask_conversation.stores import SQLAlchemyStore
        from tests.sql_servers import sql_engine
        from tests.sql_servers import sql_url_for

        engine = sql_engine(sql_url_for(kind, request))
        request.addfinalizer(engine.dispose)
        return SQLAlchemyStore(engine, clock=clock)  # type: ignore[no-any-return]

    return build


BUILDERS: dict[str, t.Callable[[Flask, FakeClock, pytest.FixtureRequest], ConversationStore]] = {
    "cookie": _cookie,
    "cachelib": _cachelib,
    "memory": _memory,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
    "sql-sqlite": _sql("sqlite"),
    "sql-postgres": _sql("postgres"),
    "sql-mariadb": _sql("mariadb"),
}


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(store_kind: str, clock: FakeClock, request: pytest.FixtureRequest) -> Flask:
    """A bare application with the extension, once per store. Tests add
    their views to it.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    store = BUILDERS[store_kind](app, clock, request)
    ConversationScope(app, store=store)
    app.test_client_class = ConversationClient
    return app


@pytest.fixture
def client(app: Flask) -> ConversationClient:
    return t.cast(ConversationClient, app.test_client())


def snapshot() -> dict[str, t.Any]:
    """What a view sees of the current conversation."""
    from flask_conversation import conversation

    return {
        "id": conversation.id,
        "long_running": conversation.long_running,
        "nested": conversation.nested,
        "depth": conversation.depth,
        "stack": [c.id for c in conversation.stack],
        "data": dict(conversation),
    }


@pytest.fixture
def api(app: Flask) -> ConversationClient:
    """A client of generic views that drive the conversation from the
    request body: ``/show``, ``/begin``, ``/set``, ``/end``, ``/incr``.
    """
    from flask import request

    from flask_conversation import conversation

    def body() -> dict[str, t.Any]:
        return request.get_json(silent=True) or {}

    @app.route("/show", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def show() -> dict[str, t.Any]:
        return snapshot()

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        began = conversation.begin(**body())
        return {"began": began, **snapshot()}

    @app.post("/set")
    def set_() -> dict[str, t.Any]:
        conversation.update(body())
        return snapshot()

    @app.post("/end")
    def end() -> dict[str, t.Any]:
        conversation.end(**body())
        return snapshot()

    @app.post("/incr")
    def incr() -> dict[str, t.Any]:
        conversation["n"] = conversation.get("n", 0) + 1
        return snapshot()

    return t.cast(ConversationClient, app.test_client())
