"""The default store: conversations inside :data:`flask.session`."""

from __future__ import annotations

import typing as t
import weakref

from flask import current_app
from flask import Flask
from flask import session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from werkzeug.http import dump_cookie

from ..errors import ConversationError
from ..serialization import _default_tags_only
from ..serialization import _is_plain
from .base import CommitBatch
from .base import ConversationRecord
from .base import ConversationStore
from .base import Destroyed
from .base import LocalLocks
from .base import plan_commit

#: The session key holding ``{namespace: {cid: record}}``.
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
        # Per application, lengths that depend only on its cookie and signing
        # settings, so that the cookie guard need not sign every session.
        self._cookie_overheads: _Lengths = weakref.WeakKeyDictionary()
        self._signature_lengths: _Lengths = weakref.WeakKeyDictionary()

    @staticmethod
    def _stored(namespace: str) -> dict[str, t.Any]:
        all_ns: dict[str, t.Any] = session.get(SESSION_KEY) or {}
        return all_ns.get(namespace) or {}

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        d = self._stored(namespace).get(cid)
        return None if d is None else ConversationRecord.from_dict(namespace, cid, d)

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        return [
            ConversationRecord.from_dict(namespace, cid, d)
            for cid, d in self._stored(namespace).items()
        ]

    def save(self, record: ConversationRecord) -> None:
        self._write(
            record.namespace, {**self._stored(record.namespace), record.id: record.to_dict()}
        )

    def delete(self, namespace: str, cid: str) -> None:
        stored = dict(self._stored(namespace))
        if stored.pop(cid, None) is not None:
            self._write(namespace, stored)

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

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        return self._locks.acquire(namespace, root_id, timeout)

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        self._locks.release(namespace, root_id, token)

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        # One new mapping, checked against the cookie limit, then assigned:
        # the session is either fully updated or left as it was.
        try:
            if self._locks.revoked(batch.unlock.values()):
                # Another request of this process cleared or moved the
                # namespace while this one held a stack: this request's copy
                # of the session must not carry any of it back.
                self._write(namespace, {})
                return []
            if batch.clear:
                self._locks.revoke(namespace, keep=batch.unlock.values())
            if not (batch.saves or batch.deletes or batch.clear):
                return []
            stored = self._stored(namespace)
            now = self.clock()
            if self._only_saves(stored, batch, now):
                # What plan_commit would decide, without rebuilding every
                # record of the namespace to find it out.
                new = dict(stored)
                for record in batch.saves:
                    new[record.id] = record.to_dict()
                self._write(namespace, new, check_size=True)
                return []
            plan = plan_commit(self.list_namespace(namespace), batch, now)
            new = {cid: d for cid, d in stored.items() if cid not in plan.delete}
            for record in plan.save:
                new[record.id] = record.to_dict()
            self._write(namespace, new, check_size=True)
            return plan.destroyed
        finally:
            for root_id, token in batch.unlock.items():
                self.unlock(namespace, root_id, token)

    @staticmethod
    def _only_saves(stored: dict[str, t.Any], batch: CommitBatch, now: float) -> bool:
        """Whether the batch only saves, nothing stored has expired and the
        namespace still fits ``max_count``: then the commit rules keep every
        record and save the whole batch.
        """
        if batch.deletes or batch.clear or not batch.saves or batch.lost_roots(stored):
            return False
        new = sum(1 for r in batch.saves if r.id not in stored)
        if len(stored) + new > batch.max_count:
            return False
        return all(d["a"] + d["t"] > now for d in stored.values())

    def _write(self, namespace: str, records: dict[str, t.Any], check_size: bool = False) -> None:
        all_ns = dict(session.get(SESSION_KEY) or {})
        if records:
            all_ns[namespace] = records
        else:
            all_ns.pop(namespace, None)
        if check_size:
            self._check_cookie_size(all_ns)
        if all_ns:
            session[SESSION_KEY] = all_ns
        elif SESSION_KEY in session:
            del session[SESSION_KEY]

    def _check_cookie_size(self, all_ns: dict[str, t.Any]) -> None:
        """Refuse a session that Flask's cookie session could not deliver: a
        browser drops a cookie over its limit without a word, which would lose
        every conversation of the user.

        :param all_ns: what the session would hold under :data:`SESSION_KEY`.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        interface = app.session_interface
        if not isinstance(interface, SecureCookieSessionInterface):
            return
        limit = app.config["MAX_COOKIE_SIZE"]
        if not limit or not app.secret_key:
            return

        bound = _value_bound(app, interface, session, all_ns, self._signature_lengths)
        if (
            bound is not None
            and bound + _cookie_overhead(app, interface, self._cookie_overheads) <= limit
        ):
            return
        serializer = interface.get_signing_serializer(app)
        if serializer is None:
            return
        size = _cookie_size(app, interface, serializer.dumps({**session, SESSION_KEY: all_ns}))
        if size > limit:
            raise ConversationError(
                f"The conversations no longer fit in the session cookie ({size} bytes,"
                f" the limit MAX_COOKIE_SIZE is {limit}); nothing was saved. Keep"
                ' conversations on the server: set CONVERSATION_STORE = "redis" (or'
                ' "memory" for a single process), or use a server-side session.'
            )


#: Lengths cached per application, with the settings they were measured with.
_Lengths: t.TypeAlias = "weakref.WeakKeyDictionary[Flask, tuple[t.Any, int]]"

#: The config keys Flask's own cookie session reads to write the cookie.
_COOKIE_CONFIG = (
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "APPLICATION_ROOT",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
)


def _cookie_size(app: Flask, interface: SecureCookieSessionInterface, value: str) -> int:
    """The length of the ``Set-Cookie`` header value Flask writes for the
    session cookie holding ``value``.
    """
    return len(
        dump_cookie(
            interface.get_cookie_name(app),
            value,
            expires=interface.get_expiration_time(app, session),
            path=interface.get_cookie_path(app),
            domain=interface.get_cookie_domain(app),
            secure=interface.get_cookie_secure(app),
            httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app),
            partitioned=interface.get_cookie_partitioned(app),
            max_size=0,
        )
    )


def _cookie_overhead(
    app: Flask, interface: SecureCookieSessionInterface, cache: _Lengths | None = None
) -> int:
    """The length of the cookie Flask writes, less that of its value, for
    a value that needs no quoting (as the bound's ``"a" * n`` would).

    Flask's own interface builds it from the config and whether the
    session is permanent (an expiry date always has the same length), so
    it is measured once per such settings; a subclass may build it
    otherwise and is measured every time.
    """
    if type(interface) is not SecureCookieSessionInterface:
        return _cookie_size(app, interface, "")
    config = app.config
    settings = (tuple(config.get(k) for k in _COOKIE_CONFIG), bool(session.permanent))
    cached = None if cache is None else cache.get(app)
    if cached is None or cached[0] != settings:
        cached = (settings, _cookie_size(app, interface, ""))
        if cache is not None:
            cache[app] = cached
    return int(cached[1])


def _value_bound(
    app: Flask,
    interface: SecureCookieSessionInterface,
    current: t.Mapping[str, t.Any],
    all_ns: dict[str, t.Any],
    cache: _Lengths | None = None,
) -> int | None:
    """An upper bound of the length of the cookie value Flask's own cookie
    session writes for ``current`` holding ``all_ns`` under
    :data:`SESSION_KEY`, or ``None`` where the session is serialized
    differently.

    Signing compresses the JSON only when that makes it shorter, then
    writes it in unpadded base64 (with a ``.`` in front when compressed)
    followed by the separators, the timestamp and the signature, whose
    lengths do not depend on the payload. Measuring the JSON (see
    :func:`_json_bound`) and one empty signature skips the compression and
    signing of the whole session on every commit that is clearly under the
    limit.
    """
    length = _json_bound(app, interface, current, all_ns)
    if length is None:
        return None
    encoded = 1 + (4 * length + 2) // 3
    settings = (
        app.secret_key,
        tuple(app.config["SECRET_KEY_FALLBACKS"] or ()),
        interface.salt,
        interface.key_derivation,
        interface.digest_method,
    )
    # The length of an empty signed value does not depend on the payload.
    cached = None if cache is None else cache.get(app)
    if cached is None or cached[0] != settings:
        serializer = interface.get_signing_serializer(app)
        assert serializer is not None
        cached = (settings, len(serializer.make_signer(serializer.salt).sign(b"")))
        if cache is not None:
            cache[app] = cached
    # Room for a timestamp that grows by a byte before the real signing.
    return encoded + int(cached[1]) + 2


def _json_bound(
    app: Flask,
    interface: SecureCookieSessionInterface,
    current: t.Mapping[str, t.Any],
    all_ns: dict[str, t.Any],
) -> int | None:
    """An upper bound of the bytes of the session's JSON, or ``None`` where
    Flask's cookie session serializes it differently.

    The conversations are measured without Flask's tagging walk: they hold
    only strings, numbers, booleans and dicts, which tagging leaves as they
    are, except that it wraps a one-key dict whose key looks like a tag (10
    more bytes); only the mapping of namespaces and each namespace's
    mapping could be one, since records have more keys.
    """
    if (
        type(interface).get_signing_serializer
        is not SecureCookieSessionInterface.get_signing_serializer
        or type(interface.serializer) is not TaggedJSONSerializer
        or not _default_tags_only(interface.serializer)
    ):
        return None
    slack = 10 * (1 + len(all_ns))
    rest = {k: v for k, v in current.items() if k != SESSION_KEY}
    if _is_plain(rest, interface.serializer.tags):
        # Tagging would leave the rest as it is too: one encoding of all.
        whole = app.json.dumps({**rest, SESSION_KEY: all_ns}, separators=(",", ":"))
        return len(whole.encode()) + slack
    # The key is plain ASCII: its JSON is the key in quotes.
    value = app.json.dumps(all_ns, separators=(",", ":"))
    return (
        len(interface.serializer.dumps(rest).encode())
        + len(SESSION_KEY)
        + 2
        + len(value.encode())
        + 2
        + slack
    )
