"""Instruments of the hardening tests: a store wrapper that records every
call (to prove what reaches a store, and in which namespace), a few plain
views, and browsers with separate cookie jars.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import typing as t
from pathlib import Path

from flask import Flask
from flask import jsonify
from flask import request
from flask.testing import FlaskClient

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation import end_conversation
from flask_conversation.stores import ConversationStore
from flask_conversation.stores.records import Acquired
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.records import Destroyed

#: The shape every cid that reaches a store must have (SPEC 3.1).
CID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _redis_available() -> bool:
    return importlib.util.find_spec(
        "flask_conversation.stores.redis"
    ) is not None and os.path.exists("/usr/bin/redis-server")


#: Every store the hardening tests run against: Flask's cookie session,
#: Flask-Session with cachelib, MemoryStore, SQLAlchemyStore on SQLite and
#: PostgreSQL and, where it exists, RedisStore.
ALL_STORES = ["cookie", "cachelib", "memory", "sql-sqlite", "sql-postgres"] + (
    ["redis"] if _redis_available() else []
)
#: The same, and a three-node Redis Cluster, for the tests about key layout.
WITH_CLUSTER = ALL_STORES + (["redis-cluster"] if _redis_available() else [])

#: Where the tests write the numbers they measured (ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def write_artifact(name: str, numbers: dict[str, t.Any]) -> None:
    """Keep the numbers a test measured in ``tests/artifacts/``.

    :param name: what was measured.
    :param numbers: JSON-compatible numbers.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"hardening-{name}.json").write_text(json.dumps(numbers, indent=2))


class Call(t.NamedTuple):
    """One call that reached the store."""

    method: str
    namespace: str | None
    cid: str | None


class CountingStore(ConversationStore):
    """Passes every call on to a real store and records it, so that a test
    can tell how many calls a request made and with which keys.

    :param inner: the store that does the work.
    """

    def __init__(self, inner: ConversationStore) -> None:
        super().__init__(inner.serializer, inner.clock)
        self.inner = inner
        self.native_expiry = inner.native_expiry
        self.in_session = inner.in_session
        self.calls: list[Call] = []
        self._mutex = threading.Lock()

    def _note(self, method: str, namespace: str | None, cid: str | None = None) -> None:
        with self._mutex:
            self.calls.append(Call(method, namespace, cid))

    def take(self) -> list[Call]:
        """Return the calls recorded so far and forget them."""
        with self._mutex:
            calls, self.calls = self.calls, []
        return calls

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        self._note("load", namespace, cid)
        return self.inner.load(namespace, cid)

    def save(self, record: ConversationRecord) -> None:
        self._note("save", record.namespace, record.id)
        self.inner.save(record)

    def delete(self, namespace: str, cid: str) -> None:
        self._note("delete", namespace, cid)
        self.inner.delete(namespace, cid)

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        self._note("list_namespace", namespace)
        return self.inner.list_namespace(namespace)

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        self._note("lock", namespace, root_id)
        return self.inner.lock(namespace, root_id, timeout)

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        self._note("unlock", namespace, root_id)
        self.inner.unlock(namespace, root_id, token)

    def namespaces(self) -> dict[str, int]:
        self._note("namespaces", None)
        return self.inner.namespaces()

    def load_chain(self, namespace: str, cid: str) -> list[ConversationRecord] | None:
        self._note("load_chain", namespace, cid)
        return self.inner.load_chain(namespace, cid)

    def acquire(self, namespace: str, cid: str, timeout: float) -> Acquired | None:
        self._note("acquire", namespace, cid)
        return self.inner.acquire(namespace, cid, timeout)

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        self._note("commit", namespace)
        for record in batch.saves:
            self._note("commit.save", record.namespace, record.id)
        for cid in batch.deletes:
            self._note("commit.delete", namespace, cid)
        return self.inner.commit(namespace, batch)

    def move_namespace(self, old: str, new: str, timeout: float) -> None:
        self._note("move_namespace", old)
        self._note("move_namespace", new)
        self.inner.move_namespace(old, new, timeout)


def add_views(app: Flask) -> None:
    """Plain views on which the hardening tests work.

    :param app: the application to add them to.
    """

    @app.route("/begin", methods=["POST"])
    def begin() -> t.Any:
        conversation.begin(join=True)
        conversation.update(request.form.to_dict())
        return jsonify(id=conversation.id)

    @app.route("/nest", methods=["POST"])
    def nest() -> t.Any:
        conversation.begin(nested=True)
        conversation.update(request.form.to_dict())
        return jsonify(id=conversation.id)

    @app.route("/natural", methods=["POST"])
    def natural() -> t.Any:
        began = conversation.begin(id=request.form["id"], join=True)
        data = dict(conversation)
        conversation.update(request.form.to_dict())
        return jsonify(id=conversation.id, began=began, data=data)

    @app.route("/read", methods=["GET", "POST"])
    def read() -> t.Any:
        return jsonify(id=conversation.id, data=dict(conversation))

    @app.route("/write", methods=["POST"])
    def write() -> t.Any:
        conversation["hits"] = conversation.get("hits", 0) + 1
        return jsonify(id=conversation.id, data=dict(conversation))

    @app.route("/end", methods=["POST"])
    @end_conversation()
    def end() -> t.Any:
        return jsonify(data=dict(conversation))

    @app.route("/end-all", methods=["POST"])
    def end_all() -> t.Any:
        app.extensions["conversation"].end_all()
        return "ok"

    @app.route("/list")
    def listing() -> t.Any:
        scope: ConversationScope = app.extensions["conversation"]
        return jsonify(ids=[c.id for c in scope.conversations()])

    @app.route("/untouched", methods=["GET", "POST"])
    def untouched() -> t.Any:
        # Never uses the conversation: a cid here must cost nothing.
        return "untouched"


def counting_store(app: Flask) -> CountingStore:
    """The :class:`CountingStore` of an app made by :func:`counting_app`.

    :param app: the application.
    """
    store = ConversationScope.get_store(app)
    assert isinstance(store, CountingStore)
    return store


def browser(app: Flask) -> FlaskClient:
    """A client with its own cookie jar that sends only what it is told:
    no cid is remembered between requests.

    :param app: the application.
    """
    return FlaskClient(app, app.response_class, use_cookies=True)


def credentials(app: Flask, client: FlaskClient) -> dict[str, str]:
    """The cookies that make ``client`` who it is: the session cookie and
    the namespace cookie, by name, those it holds.

    :param app: the application.
    :param client: the browser.
    """
    names = (app.config["SESSION_COOKIE_NAME"], app.config["CONVERSATION_COOKIE_NAME"])
    return {name: cookie.value for name in names if (cookie := client.get_cookie(name)) is not None}


def browser_with(app: Flask, cookies: dict[str, str]) -> FlaskClient:
    """A new browser holding ``cookies`` (see :func:`credentials`): a
    stolen, replayed or planted copy of another one's.

    :param app: the application.
    :param cookies: the cookies, by name.
    """
    client = browser(app)
    for name, value in cookies.items():
        client.set_cookie(name, value, domain="localhost")
    return client
