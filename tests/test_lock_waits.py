"""SPEC 9: a request waiting for a busy stack asks the store at most
about 20 times per second, whatever the store: the in-process locks of
MemoryStore and SessionStore wake a waiter only when its own stack is
released, and a store whose backend cannot wait (``try_lock`` only) is
asked at a growing pause by the base class.

Real stores, subclassed only to count the calls each request makes, served
over real sockets by a threaded server; three requests wait at once.
"""

from __future__ import annotations

import secrets
import threading
import typing as t

import pytest
import requests
from flask import Flask
from flask import has_request_context
from flask import request

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import ConversationRecord
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import SessionStore
from tests.live_server import LiveServer

#: ``CONVERSATION_LOCK_TIMEOUT`` of these tests: each waiter waits this long.
WAIT = 1.5
WAITERS = 3
#: SPEC 9: "at most about 20 times per second".
PER_SECOND = 20


class Counting:
    """Counts the calls that reach the store, per request (named by the
    ``X-Probe`` header of the request that made them).
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[str]] = {}
        self.mutex = threading.Lock()

    def note(self, method: str) -> None:
        probe = request.headers.get("X-Probe", "") if has_request_context() else ""
        with self.mutex:
            self.calls.setdefault(probe, []).append(method)


class CountingMemoryStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.counting = Counting()

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        self.counting.note("load")
        return super().load(namespace, cid)

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        self.counting.note("list_namespace")
        return super().list_namespace(namespace)

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        self.counting.note("lock")
        return super().lock(namespace, root_id, timeout)


class CountingSessionStore(SessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.counting = Counting()

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        self.counting.note("load")
        return super().load(namespace, cid)

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        self.counting.note("list_namespace")
        return super().list_namespace(namespace)

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        self.counting.note("lock")
        return super().lock(namespace, root_id, timeout)


class PollingStore(CountingMemoryStore):
    """MemoryStore's records with a lock that cannot wait, like a store over
    a table or a ``SET NX`` key: it implements ``try_lock`` only and leaves
    the waiting to :meth:`ConversationStore.lock`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[tuple[str, str], str] = {}
        self.held_mutex = threading.Lock()

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        return ConversationStore.lock(self, namespace, root_id, timeout)

    def try_lock(self, namespace: str, root_id: str) -> str | None:
        self.counting.note("try_lock")
        with self.held_mutex:
            if (namespace, root_id) in self.held:
                return None
            token = secrets.token_hex(8)
            self.held[(namespace, root_id)] = token
            return token

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        with self.held_mutex:
            if self.held.get((namespace, root_id)) == token:
                del self.held[(namespace, root_id)]


STORES: dict[str, t.Callable[[], CountingMemoryStore | CountingSessionStore]] = {
    "memory": CountingMemoryStore,
    "session": CountingSessionStore,
    "try_lock": PollingStore,
}


def waiting_app(
    store: ConversationStore, entered: threading.Event, release: threading.Event
) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="waits", CONVERSATION_LOCK_TIMEOUT=WAIT)
    ConversationScope(app, store=store)

    @app.post("/begin")
    def begin() -> str:
        conversation.begin(id=request.args.get("id"))
        conversation["n"] = 0
        return str(conversation.id)

    @app.post("/hold")
    def hold() -> str:
        conversation["n"] += 1
        entered.set()
        release.wait(30)
        return "held"

    @app.post("/incr")
    def incr() -> str:
        conversation["n"] += 1
        return str(conversation["n"])

    @app.post("/join")
    def join() -> str:
        conversation.begin(id="shared", join=True)
        return str(conversation["n"])

    return app


@pytest.mark.parametrize("kind", list(STORES))
@pytest.mark.parametrize("path", ["cid", "natural-id"])
def test_waiters_ask_the_store_at_most_20_times_a_second(kind: str, path: str) -> None:
    """One request holds a stack; three more of the same browser wait for
    it (by its cid, or joining its natural id) until their 503. Each of
    them asks the store at most 20 times per second of its wait.
    """
    store = STORES[kind]()
    entered, release = threading.Event(), threading.Event()
    app = waiting_app(store, entered, release)
    with LiveServer(app) as server, requests.Session() as browser:
        cid = browser.post(f"{server.url}/begin", params={"id": "shared"}).text
        holder = threading.Thread(
            target=lambda: browser.post(f"{server.url}/hold", params={"cid": cid}, timeout=30)
        )
        holder.start()
        try:
            assert entered.wait(10)
            statuses: list[int] = []

            def wait(n: int) -> None:
                url = f"{server.url}/incr" if path == "cid" else f"{server.url}/join"
                rv = requests.post(
                    url,
                    params={"cid": cid} if path == "cid" else {},
                    headers={"X-Probe": f"waiter-{n}"},
                    cookies=browser.cookies,
                    timeout=30,
                )
                statuses.append(rv.status_code)

            waiters = [threading.Thread(target=wait, args=(n,)) for n in range(WAITERS)]
            for thread in waiters:
                thread.start()
            for thread in waiters:
                thread.join(30)
        finally:
            release.set()
            holder.join(30)
        assert browser.post(f"{server.url}/incr", params={"cid": cid}).text == "2"

    assert statuses == [503] * WAITERS
    counts = {probe: len(calls) for probe, calls in store.counting.calls.items()}
    for n in range(WAITERS):
        assert 0 < counts[f"waiter-{n}"] <= PER_SECOND * WAIT + 3, counts
    if kind == "try_lock":
        # The pacing, not the lock, bounds these: it did try repeatedly.
        assert store.counting.calls["waiter-0"].count("try_lock") > 3
