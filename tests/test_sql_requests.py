"""What requests cost on SQLAlchemyStore, counted with SQLAlchemy's event
hooks on real SQLite, PostgreSQL and MariaDB: the same whatever the size of
the namespace, lock waits that back off; the choice by configuration (also
through Flask-SQLAlchemy), and a restart of the database between requests.
The transactions and statements of each kind of request are counted, with
RedisStore's round trips, in ``test_request_costs.py``.
"""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from conftest import counted_app
from conftest import counter_app
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import SQLAlchemyStore
from flask_conversation.testing import ConversationClient
from tests.sql_servers import PostgresServer
from tests.sql_servers import sql_engine
from tests.sql_servers import sql_url_for
from tests.sql_testing import StatementLog

KINDS = ["sqlite", "postgres", "mariadb"]


@pytest.fixture(params=KINDS)
def sql_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(sql_kind: str, request: pytest.FixtureRequest) -> t.Iterator[sa.engine.Engine]:
    engine = sql_engine(sql_url_for(sql_kind, request))
    yield engine
    engine.dispose()


def test_a_request_costs_the_same_in_a_large_namespace(engine: sa.engine.Engine) -> None:
    """The statements of a read + write are the same with 1 and with 200
    conversations in the namespace: none reads the namespace.
    """
    store = SQLAlchemyStore(engine)
    app = counted_app(store)
    app.config["CONVERSATION_MAX_COUNT"] = 500
    tab = t.cast(ConversationClient, app.test_client())
    cid = tab.post("/begin").json["id"]
    runs = []
    with StatementLog(engine) as log:
        for size in (1, 200):
            while len(store.list_namespace(store.namespaces().popitem()[0])) < size:
                tab.new_tab().post("/begin")
            tab.post(f"/incr?cid={cid}")
            log.take()
            assert tab.post(f"/incr?cid={cid}").status_code == 200
            runs.append(log.take())
    assert runs[0] == runs[1]
    # No statement selects the namespace's rows without naming a stack.
    assert not [s for s in runs[1][1] if s.startswith("SELECT") and "root_id =" not in s]


def test_waiting_for_a_lock_backs_off(engine: sa.engine.Engine) -> None:
    """A request that waits for a stack held elsewhere asks the database at
    most about ten times a second (SPEC 9: at most about 20), each time in a
    short transaction of its own, and gets its 503 after the lock timeout.
    """
    store = SQLAlchemyStore(engine)
    app = counter_app(store)
    wait = 1.5
    app.config["CONVERSATION_LOCK_TIMEOUT"] = wait
    tab = t.cast(ConversationClient, app.test_client())
    cid = tab.post("/begin").text
    namespace = next(iter(store.namespaces()))
    token = store.lock(namespace, cid, 0)
    assert token is not None
    with StatementLog(engine) as log:
        rv = tab.post(f"/incr?cid={cid}")
        attempts, statements = log.take()
    store.unlock(namespace, cid, token)
    assert rv.status_code == 503 and "busy" in rv.text
    print(f"\n{attempts} attempts, {len(statements)} statements in {wait} s")
    assert 8 <= attempts <= 10 * wait + 5
    assert tab.post(f"/incr?cid={cid}").text == "1"


# -- configuration -------------------------------------------------------------------


def _begin_app(**config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", CONVERSATION_STORE="sqlalchemy", **config)
    return app


@pytest.mark.parametrize("as_url", [True, False])
def test_chosen_by_config(sql_kind: str, request: pytest.FixtureRequest, as_url: bool) -> None:
    url = sql_url_for(sql_kind, request)
    engine = sa.create_engine(url)
    app = _begin_app(CONVERSATION_SQLALCHEMY=url if as_url else engine)
    ConversationScope(app)
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        conversation["n"] = 1
        return str(conversation.id)

    store = ConversationScope.get_store(app)
    try:
        assert isinstance(store, SQLAlchemyStore)
        assert (store.engine is engine) is not as_url
        cid = app.test_client().post("/begin").text
        namespace = next(iter(store.namespaces()))
        record = store.load(namespace, cid)
        assert record is not None and record.data == '{"n":1}'
        if as_url and sql_kind == "sqlite":
            # Writers of other processes wait for each other.
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        if as_url and sql_kind == "mariadb":
            with store.engine.connect() as conn:
                assert conn.get_isolation_level() == "READ COMMITTED"
    finally:
        store.engine.dispose()
        engine.dispose()


def test_flask_sqlalchemy_engine(tmp_path: t.Any) -> None:
    from flask_sqlalchemy import SQLAlchemy

    app = _begin_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}")
    db = SQLAlchemy(app)
    ConversationScope(app)
    store = ConversationScope.get_store(app)
    with app.app_context():
        assert isinstance(store, SQLAlchemyStore) and store.engine is db.engine
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        return str(conversation.id)

    cid = app.test_client().post("/begin").text
    assert store.load(next(iter(store.namespaces())), cid) is not None
    with app.app_context():
        names = sa.inspect(db.engine).get_table_names()
        db.engine.dispose()
    assert {"conversation_records", "conversation_leases"} <= set(names)


@pytest.mark.parametrize("with_flask_sqlalchemy_later", [False, True])
def test_no_database_is_a_value_error(with_flask_sqlalchemy_later: bool) -> None:
    app = _begin_app()
    with pytest.raises(ValueError, match="CONVERSATION_SQLALCHEMY"):
        ConversationScope(app)
    if with_flask_sqlalchemy_later:
        from flask_sqlalchemy import SQLAlchemy

        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        SQLAlchemy(app)
        ConversationScope(app)
        assert isinstance(ConversationScope.get_store(app), SQLAlchemyStore)


# -- outage --------------------------------------------------------------------------


def test_a_restart_between_requests_costs_no_error(spare_postgres: PostgresServer) -> None:
    """Pooled connections die with the server; the first request after the
    restart runs its transaction again on a new connection instead of
    failing.
    """
    engine = sa.create_engine(spare_postgres.url, pool_size=2)
    app = counter_app(SQLAlchemyStore(engine))
    tab = t.cast(ConversationClient, app.test_client())
    try:
        cid = tab.post("/begin").text
        assert engine.pool.checkedin() == 1
        spare_postgres.stop()
        spare_postgres.start()
        assert tab.post(f"/incr?cid={cid}").text == "1"
        assert tab.post(f"/incr?cid={cid}").text == "2"
    finally:
        engine.dispose()
