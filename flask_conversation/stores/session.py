"""The default store: conversations inside :data:`flask.session`."""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app
from flask import session
from flask.sessions import SessionMixin

from ..errors import BusyConversation
from .base import ConversationStore
from .base import MAX_CHAIN
from .cookie_size import CookieGuard
from .locks import LocalLocks
from .records import Acquired
from .records import CommitBatch
from .records import ConversationRecord
from .records import Destroyed
from .rules import only_saves
from .rules import plan_commit
from .session_format import decode
from .session_format import encode
from .session_format import expiry_of

#: The session key holding ``{namespace: {cid: record}}``, each record a
#: string (see :mod:`.session_format`).
SESSION_KEY = "_conversations"


class SessionStore(ConversationStore):
    """Keeps every conversation of a user inside that user's
    :data:`flask.session`, so it works unchanged with Flask's signed cookie
    and with every Flask-Session backend. Zero setup.

    Two limits follow from the session itself:

    -   The session is read once per request and written whole at its end,
        so two requests of one browser that run at the same time (two tabs
        submitting together) overwrite each other's session: the last
        writer wins. The stack lock serializes requests only within one
        process. Use :class:`~flask_conversation.stores.MemoryStore` or
        :class:`~flask_conversation.stores.RedisStore` where tabs work at
        the same time.
    -   With the cookie session, everything must fit in one cookie
        (``MAX_COOKIE_SIZE``). A commit that would not fit fails with a
        :exc:`~flask_conversation.ConversationError` and the previous state
        is kept.

    Expired records are removed, and reported, the next time the user's
    session commits a change. The store cannot list other users' sessions,
    so the CLI cannot list or purge it.

    The namespace token lives in the session too. Within one process, a
    request that holds a stack while another request clears the namespace
    (``end_all()``) or moves it (``rotate_namespace()``) writes none of the
    namespace back into its copy of the session.

    .. versionadded:: 0.1
    """

    #: The records live in this request's own copy of the session, which no
    #: other request changes while this one waits for a lock.
    shared = False

    in_session = True

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._locks = LocalLocks()
        self._cookie_guard = CookieGuard()

    @staticmethod
    def _stored(namespace: str, current: SessionMixin | None = None) -> dict[str, t.Any]:
        if current is None:
            current = _session()
        # Anything else than the mappings this store writes (a session
        # changed by other code) holds no conversation.
        all_ns = current.get(SESSION_KEY)
        if type(all_ns) is not dict:
            return {}
        stored = all_ns.get(namespace)
        return stored if type(stored) is dict else {}

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        return decode(namespace, cid, self._stored(namespace).get(cid))

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        records = (decode(namespace, cid, text) for cid, text in self._stored(namespace).items())
        return [r for r in records if r is not None]

    def save(self, record: ConversationRecord) -> None:
        self._write(record.namespace, {**self._stored(record.namespace), record.id: encode(record)})

    def delete(self, namespace: str, cid: str) -> None:
        stored = dict(self._stored(namespace))
        if stored.pop(cid, None) is not None:
            self._write(namespace, stored)

    def acquire(self, namespace: str, cid: str, timeout: float) -> Acquired | None:
        # What the default does for a store that is not shared (look up the
        # chain, then lock its root), reading the session once; a subclass
        # that changes how records are loaded or locked gets the default,
        # which goes through its methods.
        kind = type(self)
        if (
            kind.load is not SessionStore.load
            or kind.lock is not SessionStore.lock
            or kind.load_chain is not ConversationStore.load_chain
        ):
            return super().acquire(namespace, cid, timeout)
        stored = self._stored(namespace)
        now = self.clock()
        chain: list[ConversationRecord] = []
        next_id: str | None = cid
        while next_id is not None:
            record = decode(namespace, next_id, stored.get(next_id))
            if record is None or record.expires_at <= now or len(chain) > MAX_CHAIN:
                return None
            chain.append(record)
            next_id = record.parent_id
        chain.reverse()
        root_id = chain[0].id
        token = self._locks.acquire(namespace, root_id, timeout)
        if token is None:
            raise BusyConversation()
        return Acquired(root_id, token, chain)

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        return self._locks.acquire(namespace, root_id, timeout)

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        self._locks.release(namespace, root_id, token)

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        if self._locks.revoked(batch.unlock.values()):
            # Another request of this process cleared or moved the namespace
            # while this one held a stack: this request's copy of the session
            # must not carry any of it back.
            self._write(namespace, {})
            batch = dataclasses.replace(batch, saves=[], deletes={}, clear=False)
        elif batch.clear:
            self._locks.revoke(namespace, keep=batch.unlock.values())
        return super().commit(namespace, batch)

    def move_namespace(self, old: str, new: str, timeout: float) -> None:
        """Move the namespace's records to ``new`` inside the session, at
        once. Requests of this process that hold one of its stacks then
        write nothing back; a request of another process works on its own
        copy of the session, and the last one to answer sets the browser's
        cookie (see the class's notes).

        :param old: the current namespace.
        :param new: the new namespace.
        :param timeout: unused: no lock is needed within one session.
        """
        stored = self._stored(old)
        if stored:
            self._write(old, {})
            self._write(new, stored)
        self._locks.revoke(old)

    def apply_batch(self, namespace: str, batch: CommitBatch) -> Destroyed:
        # One new mapping, checked against the cookie limit, then assigned:
        # the session is either fully updated or left as it was.
        current = _session()
        stored = self._stored(namespace, current)
        now = self.clock()
        if self._only_saves(stored, batch, now):
            # What plan_commit would decide, without rebuilding every
            # record of the namespace to find it out.
            new = dict(stored)
            for record in batch.saves:
                new[record.id] = encode(record)
            self._write(namespace, new, check_size=True, current=current)
            return []
        listed = self.list_namespace(namespace)
        plan = plan_commit(listed, batch, now)
        # Malformed values, which no listing holds, go too.
        kept = {r.id for r in listed}.difference(plan.delete)
        new = {cid: text for cid, text in stored.items() if cid in kept}
        for record in plan.save:
            new[record.id] = encode(record)
        self._write(namespace, new, check_size=True, current=current)
        return plan.destroyed

    @staticmethod
    def _only_saves(stored: dict[str, t.Any], batch: CommitBatch, now: float) -> bool:
        # A malformed value counts as expired: the full rules then run.
        earliest = min(map(expiry_of, stored.values()), default=float("inf"))
        return only_saves(batch, stored, earliest, now)

    def _write(
        self,
        namespace: str,
        records: dict[str, t.Any],
        check_size: bool = False,
        current: SessionMixin | None = None,
    ) -> None:
        if current is None:
            current = _session()
        old = current.get(SESSION_KEY)
        all_ns = dict(old) if type(old) is dict else {}
        if records:
            all_ns[namespace] = records
        else:
            all_ns.pop(namespace, None)
        if check_size:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            self._cookie_guard.check(app, current, SESSION_KEY, all_ns)
        if all_ns:
            current[SESSION_KEY] = all_ns
        elif SESSION_KEY in current:
            del current[SESSION_KEY]


def _session() -> SessionMixin:
    # The session itself: each use through the proxy would look it up again.
    return session._get_current_object()  # type: ignore[no-any-return, attr-defined]
