"""SPEC 3.5: a store that fails gives a clear 503, writes nothing, and the
application recovers by itself. The store here is a real custom store (a
MemoryStore whose backend can be switched off), as a user would write one,
and the stores of real servers (Redis, PostgreSQL) stopped and started.
"""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from conftest import counter_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from flask_conversation import conversation
from flask_conversation import ConversationStoreError
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import RedisStore
from flask_conversation.stores import SQLAlchemyStore
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import Destroyed
from flask_conversation.testing import ConversationClient


class SwitchableStore(MemoryStore):
    """A store whose backend fails for the operations named in ``down``."""

    down: frozenset[str] = frozenset()

    def _check(self, operation: str) -> None:
        if operation in self.down:
            raise ConversationStoreError("backend unreachable")

    def load(self, namespace: str, cid: str) -> t.Any:
        self._check("load")
        return super().load(namespace, cid)

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        try:
            self._check("commit")
        except ConversationStoreError:
            for root_id, token in batch.unlock.items():
                self.unlock(namespace, root_id, token)
            raise
        return super().commit(namespace, batch)


@pytest.fixture
def store() -> SwitchableStore:
    return SwitchableStore()


@pytest.fixture
def client(store: SwitchableStore) -> ConversationClient:
    app = counter_app(store)

    @app.errorhandler(ConversationStoreError)
    def unavailable(e: ConversationStoreError) -> tuple[str, int]:
        # A handler that uses the conversation sees a temporary one.
        return f"unavailable, temporary={not conversation.long_running}", 503

    return t.cast(ConversationClient, app.test_client())


def test_outage_on_load_is_503(store: SwitchableStore, client: ConversationClient) -> None:
    cid = client.post("/begin").text
    store.down = frozenset({"load", "commit"})
    rv = client.post(f"/incr?cid={cid}")
    assert rv.status_code == 503
    assert rv.text == "unavailable, temporary=True"
    # Requests that do not use the conversation do not notice.
    assert client.get(f"/plain?cid={cid}").text == "fine"
    store.down = frozenset()
    assert client.post(f"/incr?cid={cid}").text == "1"


def test_outage_on_commit_writes_nothing(
    store: SwitchableStore, client: ConversationClient
) -> None:
    cid = client.post("/begin").text
    client.post(f"/incr?cid={cid}")
    store.down = frozenset({"commit"})
    assert client.post(f"/incr?cid={cid}").status_code == 503
    assert client.post(f"/incr?cid={cid}").status_code == 503
    store.down = frozenset()
    assert client.post(f"/incr?cid={cid}").text == "2"
    assert len(store._locks) == 0


def test_store_error_message() -> None:
    assert "backend unreachable" in str(ConversationStoreError("backend unreachable"))


def test_failure_reporting_logs_once_and_swallows_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flask_conversation.failures import StoreFailureLog

    log = StoreFailureLog("SomeStore")
    with log.reporting("doing nothing"):
        pass
    with pytest.raises(KeyError), log.reporting("reading"):
        raise KeyError("not a store failure")
    assert not caplog.records
    for during in ("loading", "committing"):
        with pytest.raises(ConversationStoreError), log.reporting(during):
            raise ConversationStoreError("down")
    assert [r.getMessage() for r in caplog.records] == [
        f"The conversation store (SomeStore) failed while loading: {ConversationStoreError('down')}"
    ]


@pytest.mark.parametrize("server_kind", ["redis", "postgres"])
def test_the_app_answers_503_and_recovers(server_kind: str, request: pytest.FixtureRequest) -> None:
    """The store's server stopped between requests: a request that uses
    a conversation answers 503 with ``Retry-After``; the server started
    again, nothing is half written or lost and no lock is left behind.
    """
    store: ConversationStore
    if server_kind == "redis":
        server = request.getfixturevalue("spare_redis_server")
        # No retries, so that a stopped server answers at once.
        client = server.client(
            retry=Retry(NoBackoff(), 0), socket_connect_timeout=1, socket_timeout=2
        )
        store, close = RedisStore(client), client.close
    else:
        server = request.getfixturevalue("spare_postgres")
        engine = sa.create_engine(server.url, connect_args={"connect_timeout": 2})
        # The pool replaces its dead connections by itself.
        store, close = SQLAlchemyStore(engine), engine.dispose
    app = counter_app(store)
    tab = t.cast(ConversationClient, app.test_client())
    try:
        cid = tab.post("/begin").text
        assert tab.post(f"/incr?cid={cid}").text == "1"
        server.stop()
        for path in (f"/incr?cid={cid}", "/begin"):
            down = tab.post(path)
            assert down.status_code == 503
            assert "store is unavailable" in down.text
            assert int(down.headers["Retry-After"]) > 0
        # Requests that do not use a conversation do not notice.
        assert tab.get("/plain").text == "fine"
        server.start()
        assert tab.post(f"/incr?cid={cid}").text == "2"
        assert tab.post(f"/incr?cid={cid}").text == "3"
    finally:
        close()
