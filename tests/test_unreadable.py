"""A stored conversation whose data the store's serializer cannot read
back (written with other serializer tags, edited by hand in Redis or SQL,
a session record whose data text is not valid) is answered like an
unknown cid (SPEC 3.3): a 404 through the application's error handlers,
or ``CONVERSATION_MISSING_REDIRECT``; never a 500. One warning names the
cid and the cause; the record stays as it was, and its stack's lock is
released at the end of the request.

Every store kind runs on its real backend: a crafted session for
``SessionStore`` (Flask's cookie and Flask-Session), a real redis-server
and Redis Cluster edited with ``HSET``, SQLite and PostgreSQL edited with
``UPDATE``.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t

import pytest
from conftest import conversation_app
from flask import Flask
from flask import get_flashed_messages
from flask import redirect
from flask.testing import FlaskCliRunner
from werkzeug.wrappers import Response

from flask_conversation import conversation
from flask_conversation import conversation_readonly
from flask_conversation import ConversationScope
from flask_conversation import NonexistentConversation
from flask_conversation import url_for_cid
from flask_conversation.cli import conversation_cli
from flask_conversation.context import peek_state
from flask_conversation.extension import conversations
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import RedisStore
from flask_conversation.stores import SessionStore
from flask_conversation.stores import SQLAlchemyStore
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.session import SESSION_KEY
from flask_conversation.stores.session_format import decode
from flask_conversation.stores.session_format import encode
from flask_conversation.stores.sql.tables import namespace_key
from flask_conversation.testing import ConversationClient

#: Data no serializer of the application reads back, by what it stands for.
UNREADABLE = {
    "not JSON": '{"hotel": "Ritz"',
    "not an object": '["Ritz"]',
    "a tag whose value does not fit": '{"guest": {" u": "not-a-uuid"}}',
}

#: The message the warning starts with.
WARNING = "The conversation store ({store}) holds data its serializer cannot read"


@pytest.fixture(
    params=["cookie", "cachelib", "memory", "redis", "redis-cluster", "sql-sqlite", "sql-postgres"]
)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def views(app: Flask) -> Flask:
    """The application of the ``app`` fixture with a booking flow and a
    handler for the unknown cid that uses the conversation.
    """
    app.config["CONVERSATION_LOCK_TIMEOUT"] = 0.5

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin(nested=conversation.long_running)
        conversation["hotel"] = "Ritz"
        state = peek_state()
        assert state is not None
        return {"cid": conversation.id, "ns": state.known_namespace}

    @app.get("/show")
    def show() -> dict[str, t.Any]:
        return {"hotel": conversation.get("hotel")}

    @app.get("/peek")
    @conversation_readonly
    def peek() -> dict[str, t.Any]:
        return {"hotel": conversation.get("hotel")}

    @app.post("/set")
    def set_() -> dict[str, t.Any]:
        conversation["hotel"] = "Savoy"
        return {"hotel": conversation["hotel"]}

    @app.post("/confirm")
    def confirm() -> Response:
        conversation.end()
        return redirect(url_for_cid("show"))

    @app.post("/book/<int:hotel>")
    def book(hotel: int) -> dict[str, t.Any]:
        conversation.begin(id=f"booking-{hotel}", join=True)
        conversation.setdefault("hotel", "Ritz")
        state = peek_state()
        assert state is not None
        return {"cid": conversation.id, "ns": state.known_namespace}

    @app.get("/list")
    def listing() -> list[str]:
        return [c.id for c in conversations()]

    @app.errorhandler(NonexistentConversation)
    def gone(e: NonexistentConversation) -> tuple[dict[str, t.Any], int]:
        # Handlers see a fresh temporary conversation, as for any unknown cid.
        return {"gone": e.cid, "temporary": not conversation.long_running}, 404

    return app


class Backend:
    """Reads and edits the stored text of one conversation on the real
    backend of a store, the way a user would by hand.

    :param kind: the store kind, as in ``conftest.BUILDERS``.
    :param client: the browser, whose session holds ``SessionStore``'s
        records.
    :param store: the application's store.
    """

    def __init__(self, kind: str, client: ConversationClient, store: ConversationStore) -> None:
        self.kind = kind
        self.client = client
        self.store = store

    def raw(self, namespace: str, cid: str) -> t.Any:
        """What the backend holds for ``cid``: the session's string, or the
        record as the store loads it.
        """
        if isinstance(self.store, SessionStore):
            with self.client.session_transaction() as session:
                return session[SESSION_KEY][namespace][cid]
        return self.store.load(namespace, cid)

    def record(self, namespace: str, cid: str) -> ConversationRecord:
        raw = self.raw(namespace, cid)
        record = decode(namespace, cid, raw) if isinstance(raw, str) else raw
        assert isinstance(record, ConversationRecord)
        return record

    def write_data(self, namespace: str, cid: str, data: str) -> None:
        """Replace the data text of ``cid``, and nothing else of it."""
        store = self.store
        if isinstance(store, SessionStore):
            record = dataclasses.replace(self.record(namespace, cid), data=data)
            with self.client.session_transaction() as session:
                all_ns = dict(session[SESSION_KEY])
                all_ns[namespace] = {**all_ns[namespace], cid: encode(record)}
                session[SESSION_KEY] = all_ns
        elif isinstance(store, RedisStore):
            store.client.hset(store.keys(namespace).data, cid, data)
        elif isinstance(store, SQLAlchemyStore):
            records = store.tables.records
            with store.engine.begin() as conn:
                conn.execute(
                    records.update()
                    .where(records.c.namespace == namespace_key(namespace), records.c.id == cid)
                    .values(data=data)
                )
        else:
            record = dataclasses.replace(self.record(namespace, cid), data=data)
            store.save(record)

    def is_unlocked(self, namespace: str, root_id: str) -> bool:
        """Whether the stack of ``root_id`` can be locked right now."""
        token = self.store.lock(namespace, root_id, 0)
        if token is None:
            return False
        self.store.unlock(namespace, root_id, token)
        return True


@pytest.fixture
def tab(views: Flask) -> ConversationClient:
    return t.cast(ConversationClient, views.test_client())


@pytest.fixture
def backend(store_kind: str, tab: ConversationClient, views: Flask) -> Backend:
    return Backend(store_kind, tab, ConversationScope.get_store(views))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flask_conversation"]


@pytest.mark.parametrize("what", list(UNREADABLE))
def test_unreadable_data_is_an_unknown_cid(
    what: str,
    tab: ConversationClient,
    backend: Backend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    begun = tab.post("/begin").json
    assert begun is not None
    cid, ns = begun["cid"], begun["ns"]
    backend.write_data(ns, cid, UNREADABLE[what])
    before = backend.raw(ns, cid)

    caplog.set_level(logging.WARNING, "flask_conversation")
    for path in ("/show", "/peek"):
        caplog.clear()
        rv = tab.get(path, query_string={"cid": cid})
        assert rv.status_code == 404, path
        assert rv.json == {"gone": cid, "temporary": True}
        assert "X-Conversation-Id" not in rv.headers
        # One warning naming the cid and the cause; the data itself is
        # not repeated into the log.
        (warning,) = warnings_of(caplog)
        assert warning.levelno == logging.WARNING
        message = warning.getMessage()
        assert message.startswith(WARNING.format(store=type(backend.store).__name__))
        assert repr(cid) in message
        assert warning.exc_info is not None
        assert "Ritz" not in message

    # A write is refused the same way; nothing was renewed, rewritten or
    # deleted, and the stack is not left locked.
    assert tab.post("/set", query_string={"cid": cid}).status_code == 404
    assert backend.raw(ns, cid) == before
    assert backend.is_unlocked(ns, cid)
    # The rest of the application works: a new conversation begins.
    tab.cid = None
    other = tab.post("/begin").json
    assert other is not None and other["cid"] != cid
    assert tab.get("/show", query_string={"cid": other["cid"]}).json == {"hotel": "Ritz"}
    assert backend.raw(ns, cid) == before


def test_unreadable_ancestor(
    tab: ConversationClient, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """A child whose parent's data cannot be read cannot be used either:
    the request names the child, the warning names the parent.
    """
    root = tab.post("/begin").json
    assert root is not None
    child = tab.post("/begin", query_string={"cid": root["cid"]}).json
    assert child is not None
    ns = root["ns"]
    backend.write_data(ns, root["cid"], UNREADABLE["not JSON"])
    before = (backend.raw(ns, root["cid"]), backend.raw(ns, child["cid"]))

    caplog.set_level(logging.WARNING, "flask_conversation")
    for path in ("/show", "/peek"):
        caplog.clear()
        rv = tab.get(path, query_string={"cid": child["cid"]})
        assert rv.status_code == 404
        assert rv.json == {"gone": child["cid"], "temporary": True}
        (warning,) = warnings_of(caplog)
        assert repr(root["cid"]) in warning.getMessage()
    assert (backend.raw(ns, root["cid"]), backend.raw(ns, child["cid"])) == before
    assert backend.is_unlocked(ns, root["cid"])


def test_unreadable_survivor_of_an_ended_conversation(
    tab: ConversationClient, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """The one request an ended conversation survives after a redirect
    answers 404 when its data cannot be read, and leaves it as it was
    instead of consuming it.
    """
    begun = tab.post("/begin").json
    assert begun is not None
    cid, ns = begun["cid"], begun["ns"]
    rv = tab.post("/confirm", query_string={"cid": cid})
    assert rv.status_code == 302 and f"cid={cid}" in rv.location
    assert backend.record(ns, cid).ended
    backend.write_data(ns, cid, UNREADABLE["not an object"])
    before = backend.raw(ns, cid)

    caplog.set_level(logging.WARNING, "flask_conversation")
    for path in ("/peek", "/show", "/show"):
        caplog.clear()
        rv = tab.get(path, query_string={"cid": cid})
        assert rv.status_code == 404, path
        assert rv.json == {"gone": cid, "temporary": True}
        (warning,) = warnings_of(caplog)
        assert repr(cid) in warning.getMessage()
        assert backend.raw(ns, cid) == before
    assert backend.is_unlocked(ns, cid)


def test_unreadable_natural_id(
    tab: ConversationClient, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """``begin(id=..., join=True)`` on a conversation whose data cannot be
    read raises the 404 of an unknown cid instead of joining it or
    writing a new conversation over it.
    """
    booked = tab.post("/book/7").json
    assert booked is not None
    cid, ns = booked["cid"], booked["ns"]
    assert cid == "booking-7"
    backend.write_data(ns, cid, UNREADABLE["a tag whose value does not fit"])
    before = backend.raw(ns, cid)

    caplog.set_level(logging.WARNING, "flask_conversation")
    tab.cid = None
    rv = tab.post("/book/7")
    assert rv.status_code == 404
    assert rv.json == {"gone": cid, "temporary": True}
    (warning,) = warnings_of(caplog)
    assert repr(cid) in warning.getMessage()
    assert backend.raw(ns, cid) == before
    assert backend.is_unlocked(ns, cid)

    # Inside a long-running conversation too; the request's own stack is
    # committed, as for any HTTP error (SPEC 3.5).
    other = tab.post("/begin").json
    assert other is not None
    assert tab.post("/book/7", query_string={"cid": other["cid"]}).status_code == 404
    assert tab.get("/show", query_string={"cid": other["cid"]}).json == {"hotel": "Ritz"}
    assert backend.raw(ns, cid) == before
    assert backend.is_unlocked(ns, cid)


def test_listing_reads_no_data(tab: ConversationClient, backend: Backend) -> None:
    """``conversations()`` reads no conversation's data: it lists a
    conversation whose data cannot be read like any other, until it
    expires.
    """
    first = tab.post("/begin").json
    tab.cid = None
    second = tab.post("/begin").json
    assert first is not None and second is not None
    backend.write_data(first["ns"], first["cid"], UNREADABLE["not JSON"])
    rv = tab.get("/list", query_string={"cid": second["cid"]})
    assert rv.status_code == 200
    assert sorted(rv.json or []) == sorted([first["cid"], second["cid"]])
    tab.cid = None
    assert sorted(tab.get("/list").json or []) == sorted([first["cid"], second["cid"]])


def test_missing_redirect(views: Flask, tab: ConversationClient, backend: Backend) -> None:
    """With ``CONVERSATION_MISSING_REDIRECT``, the request is redirected
    there with the flashed message, as for any unknown cid.
    """
    views.config["CONVERSATION_MISSING_REDIRECT"] = "start"

    @views.get("/start")
    def start() -> dict[str, t.Any]:
        return {"messages": get_flashed_messages(with_categories=True)}

    begun = tab.post("/begin").json
    assert begun is not None
    backend.write_data(begun["ns"], begun["cid"], UNREADABLE["not JSON"])
    for path in ("/show", "/peek"):
        rv = tab.get(path, query_string={"cid": begun["cid"]})
        assert rv.status_code == 302 and rv.location == "/start"
        assert tab.get("/start").json == {
            "messages": [["warning", "That conversation has ended or expired. Please start again."]]
        }


class OtherSerializer:
    """A serializer that reads none of what the default one wrote, the way
    an application may swap serializers between deploys; its error is
    not one of JSON's.
    """

    class Unreadable(Exception):
        pass

    def dumps(self, value: t.Any) -> str:
        import json

        return "v2:" + json.dumps(value)

    def loads(self, value: str) -> t.Any:
        import json

        if not value.startswith("v2:"):
            raise self.Unreadable("not written by this serializer")
        return json.loads(value[3:])


def test_serializer_changed_between_deploys(caplog: pytest.LogCaptureFixture) -> None:
    old = MemoryStore()
    app = conversation_app(old)

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        conversation["hotel"] = "Ritz"
        return str(conversation.id)

    @app.get("/show")
    def show() -> dict[str, t.Any]:
        return {"hotel": conversation.get("hotel")}

    app.config["PROPAGATE_EXCEPTIONS"] = False
    tab = t.cast(ConversationClient, app.test_client())
    cid = tab.post("/begin").text
    old.serializer = OtherSerializer()
    caplog.set_level(logging.WARNING, "flask_conversation")
    rv = tab.get("/show", query_string={"cid": cid})
    assert rv.status_code == 404
    (warning,) = warnings_of(caplog)
    assert "not written by this serializer" in warning.getMessage()
    # What the new serializer writes, it reads.
    tab.cid = None
    cid = tab.post("/begin").text
    assert tab.get("/show", query_string={"cid": cid}).json == {"hotel": "Ritz"}


@pytest.mark.parametrize("store_kind", ["memory", "redis", "sql-sqlite"])
def test_cli_show_names_the_cause(views: Flask, tab: ConversationClient, backend: Backend) -> None:
    """``flask conversation show`` on such a record fails with a message
    that names the conversation and the cause, not a traceback; ``list``
    reads no data and lists it.
    """
    begun = tab.post("/begin").json
    assert begun is not None
    cid, ns = begun["cid"], begun["ns"]
    backend.write_data(ns, cid, UNREADABLE["not JSON"])
    runner: FlaskCliRunner = views.test_cli_runner()
    result = runner.invoke(conversation_cli, ["show", ns, cid])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Conversation {cid!r}" in result.output
    assert "cannot read" in result.output
    listed = runner.invoke(conversation_cli, ["list", "--namespace", ns])
    assert listed.exit_code == 0 and cid in listed.output


def test_unreadable_data_and_store_failures_are_logged_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each is logged once per request; one does not hide the other, so a
    503 is logged even after a request found unreadable data.
    """
    from flask_conversation import ConversationStoreError
    from flask_conversation.failures import StoreFailureLog
    from flask_conversation.unreadable import UnreadableData

    log = StoreFailureLog("SomeStore")
    caplog.set_level(logging.WARNING, "flask_conversation")
    for cid in ("a", "b"):
        with pytest.raises(NonexistentConversation), log.reporting("looking up"):
            raise UnreadableData(cid, cid, "ValueError: bad")
    for _ in range(2):
        with pytest.raises(ConversationStoreError), log.reporting("committing"):
            raise ConversationStoreError("down")
    messages = [r.getMessage() for r in warnings_of(caplog)]
    assert len(messages) == 2
    assert messages[0].startswith(WARNING.format(store="SomeStore"))
    assert "'a'" in messages[0] and "ValueError: bad" in messages[0]
    assert "failed while committing" in messages[1]


def test_backend_edit_changes_only_the_data(tab: ConversationClient, backend: Backend) -> None:
    # The helper edits the backend itself: what the store then loads is
    # the record as it was, with the new data text.
    begun = tab.post("/begin").json
    assert begun is not None
    before = backend.record(begun["ns"], begun["cid"])
    backend.write_data(begun["ns"], begun["cid"], UNREADABLE["not JSON"])
    after = backend.record(begun["ns"], begun["cid"])
    assert after == dataclasses.replace(before, data=UNREADABLE["not JSON"])
