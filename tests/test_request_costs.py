"""What a request costs on the shared stores: one test per kind of request,
each run on every deployment and held to that store's own measure.

-   **RedisStore** (one server, and a cluster): the round trips, counted by
    the client's connections (every send, whatever it holds: a redirection,
    ``MOVED``, would be a second one), and the commands the servers
    receive, as ``MONITOR`` shows them. A stack this process knows is used
    with plain commands, on a single server as on a cluster.
-   **SQLAlchemyStore** (SQLite, PostgreSQL, MariaDB): the transactions,
    at most two for a request that uses a conversation and none for one
    that does not, and the statements, counted with SQLAlchemy's event
    hooks, besides the prelude of each transaction: SQLite adds
    ``BEGIN IMMEDIATE`` to each writing transaction, MariaDB
    ``SET TRANSACTION`` (this engine runs ``REPEATABLE READ``).
"""

from __future__ import annotations

import dataclasses
import typing as t

import pytest
from conftest import counted_app
from flask import Flask
from redis.cluster import RedisCluster
from stores.store_testing import CHANGE
from stores.store_testing import CommandLog
from stores.store_testing import counting_deployment
from stores.store_testing import CountingConnection
from stores.store_testing import RENEW
from werkzeug.test import TestResponse

from flask_conversation.stores import RedisStore
from flask_conversation.stores import SQLAlchemyStore
from flask_conversation.testing import ConversationClient
from tests.sql_servers import sql_engine
from tests.sql_servers import sql_url_for
from tests.sql_testing import StatementLog
from tests.sql_testing import verbs

KINDS = ["redis", "redis-cluster", "sql-sqlite", "sql-postgres", "sql-mariadb"]

#: The statements each transaction opens with, by database.
PRELUDE = {"sqlite": 1, "postgres": 0, "mariadb": 1}

#: Commands of a request that goes to the scripts: one call per round trip.
SCRIPTS = [["EVALSHA"] * n for n in range(3)]


@dataclasses.dataclass(frozen=True)
class RedisCost:
    """A request's exact cost on RedisStore.

    :param round_trips: the sends of the client's connections.
    :param commands: what the servers receive, scripts' own commands left
        out.
    """

    round_trips: int
    commands: list[str]


@dataclasses.dataclass(frozen=True)
class SQLCost:
    """A request's exact cost on SQLAlchemyStore.

    :param transactions: the transactions it runs.
    :param statements: the statements, besides each transaction's prelude.
    """

    transactions: int
    statements: int


Request = t.Callable[[], TestResponse]


class Costs:
    """An application on one store, warmed up (the tables created, the
    scripts loaded), with two stacks in the namespace, the root :attr:`cid`
    of one begun by this process, and the store's measure of one request.

    :param app: the application of :func:`~conftest.counted_app`.
    """

    def __init__(self, app: Flask) -> None:
        self.tab = t.cast(ConversationClient, app.test_client())
        self.cid = ""

    def new_tab(self) -> ConversationClient:
        """A tab of the same browser (the same namespace), without a cid."""
        return self.tab.new_tab()

    def check(self, call: Request, *, redis: RedisCost, sql: SQLCost) -> None:
        """Run ``call`` and hold its cost to this store's expectation.

        :param call: the request.
        :param redis: its cost on RedisStore.
        :param sql: its cost on SQLAlchemyStore.
        """
        raise NotImplementedError


class RedisCosts(Costs):
    def __init__(self, app: Flask, log: CommandLog) -> None:
        super().__init__(app)
        self.log = log

    def check(self, call: Request, *, redis: RedisCost, sql: SQLCost) -> None:
        self.log.take()
        before = CountingConnection.sends
        rv = call()
        assert rv.status_code < 500, rv.text
        got = self.log.take()
        sent = CountingConnection.sends - before
        print(f"  {sent}  {' '.join(got)}")
        assert sent == redis.round_trips, (sent, got)
        assert got == redis.commands, got


class SQLCosts(Costs):
    def __init__(self, app: Flask, log: StatementLog, prelude: int) -> None:
        super().__init__(app)
        self.log = log
        self.prelude = prelude

    def check(self, call: Request, *, redis: RedisCost, sql: SQLCost) -> None:
        self.log.take()
        rv = call()
        assert rv.status_code < 500, rv.text
        count, statements = self.log.take()
        print(f"  {count}  {len(statements):2}  {' '.join(verbs(statements))}")
        assert count == sql.transactions, statements
        assert len(statements) - self.prelude * count == sql.statements, statements


@pytest.fixture(params=KINDS)
def costs(request: pytest.FixtureRequest) -> Costs:
    kind = request.param
    rv: Costs
    cluster: RedisCluster | None = None
    if kind.startswith("redis"):
        servers, client = counting_deployment(kind, request)
        command_log = CommandLog(servers)
        request.addfinalizer(command_log.close)
        rv = RedisCosts(counted_app(RedisStore(client)), command_log)
        if isinstance(client, RedisCluster):
            cluster = client
    else:
        engine = sql_engine(sql_url_for(kind[4:], request))
        request.addfinalizer(engine.dispose)
        statement_log = StatementLog(engine)
        request.addfinalizer(statement_log.close)
        rv = SQLCosts(counted_app(SQLAlchemyStore(engine)), statement_log, PRELUDE[kind[4:]])
    # Warm up: the tables are created, the isolation level checked, and the
    # first call of each script loads it into the server.
    tab = rv.new_tab()
    tab.get("/plain")
    cid = tab.post("/begin").json["id"]
    tab.post("/begin")
    tab.post("/end")
    tab.post("/incr")
    tab.post(f"/end?cid={cid}")
    tab.get("/read?cid=nope")
    if cluster is not None:
        # A new namespace may live on a node not used yet: connect to all,
        # as a running application's pool has.
        cluster.ping(target_nodes=RedisCluster.PRIMARIES)
    # The namespace holds another stack, so that ending the root leaves it.
    rv.new_tab().post("/begin")
    rv.cid = rv.new_tab().post("/begin").json["id"]
    return rv


def test_no_conversation_used(costs: Costs) -> None:
    tab = costs.new_tab()
    costs.check(lambda: tab.get("/plain"), redis=RedisCost(0, []), sql=SQLCost(0, 0))


def test_temporary_conversation_only(costs: Costs) -> None:
    tab = costs.new_tab()
    costs.check(lambda: tab.get("/read"), redis=RedisCost(0, []), sql=SQLCost(0, 0))


def test_cid_named_but_conversation_not_used(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.get(f"/plain?cid={costs.cid}"),
        redis=RedisCost(0, []),
        sql=SQLCost(0, 0),
    )


def test_begin_in_a_namespace_that_exists(costs: Costs) -> None:
    tab = costs.new_tab()
    costs.check(lambda: tab.post("/begin"), redis=RedisCost(1, SCRIPTS[1]), sql=SQLCost(1, 3))


def test_begin_first_in_a_new_namespace(costs: Costs) -> None:
    fresh = t.cast(ConversationClient, costs.tab.application.test_client())
    costs.check(lambda: fresh.post("/begin"), redis=RedisCost(1, SCRIPTS[1]), sql=SQLCost(1, 5))


def test_use_a_conversation_to_write(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.post(f"/incr?cid={costs.cid}"),
        redis=RedisCost(2, RENEW),
        sql=SQLCost(2, 5),
    )


def test_use_a_conversation_to_read_renews_it(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.get(f"/read?cid={costs.cid}"),
        redis=RedisCost(2, RENEW),
        sql=SQLCost(2, 5),
    )


def test_list_the_namespaces_conversations(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.get(f"/list?cid={costs.cid}"),
        redis=RedisCost(2, RENEW),
        sql=SQLCost(2, 5),
    )


def test_begin_nested(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.post(f"/begin?cid={costs.cid}"),
        redis=RedisCost(2, CHANGE),
        sql=SQLCost(2, 6),
    )


def test_use_a_nested_conversation(costs: Costs) -> None:
    child = costs.tab.post(f"/begin?cid={costs.cid}").json["id"]
    assert child is not None and child != costs.cid
    costs.check(
        lambda: costs.tab.post(f"/incr?cid={child}"),
        redis=RedisCost(2, RENEW),
        sql=SQLCost(2, 5),
    )


def test_end_a_nested_conversation(costs: Costs) -> None:
    child = costs.tab.post(f"/begin?cid={costs.cid}").json["id"]
    assert child is not None and child != costs.cid
    costs.check(
        lambda: costs.tab.post(f"/end?cid={child}"),
        redis=RedisCost(2, CHANGE),
        sql=SQLCost(2, 8),
    )


def test_end_a_root(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.post(f"/end?cid={costs.cid}"),
        redis=RedisCost(2, CHANGE),
        sql=SQLCost(2, 7),
    )


def test_unknown_cid(costs: Costs) -> None:
    costs.check(
        lambda: costs.tab.get("/read?cid=unknown"),
        redis=RedisCost(1, SCRIPTS[1]),
        sql=SQLCost(1, 2),
    )


def test_begin_with_a_new_natural_id(costs: Costs) -> None:
    # From a temporary conversation a natural id is looked up and locked in
    # one call, like any named cid.
    tab = costs.new_tab()
    costs.check(lambda: tab.post("/book/1"), redis=RedisCost(2, SCRIPTS[2]), sql=SQLCost(2, 6))


def test_join_an_existing_natural_id(costs: Costs) -> None:
    costs.new_tab().post("/book/1")
    tab = costs.new_tab()
    costs.check(lambda: tab.post("/book/1"), redis=RedisCost(2, SCRIPTS[2]), sql=SQLCost(2, 5))
