"""SPEC 3.5: a store that fails gives a clear 503, writes nothing, and the
application recovers by itself. The store here is a real custom store (a
MemoryStore whose backend can be switched off), as a user would write one.
"""

from __future__ import annotations

import typing as t

import pytest
from conftest import counter_app

from flask_conversation import conversation
from flask_conversation import ConversationStoreError
from flask_conversation.stores import MemoryStore
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
