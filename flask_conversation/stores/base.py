"""The store interface: what a conversation store must do, at the
granularity of one conversation record.

A custom store subclasses :class:`ConversationStore` and implements six small
methods (:meth:`~ConversationStore.load`, :meth:`~ConversationStore.save`,
:meth:`~ConversationStore.delete`, :meth:`~ConversationStore.list_namespace`,
:meth:`~ConversationStore.lock`, :meth:`~ConversationStore.unlock`). The two
composite operations the extension calls per request,
:meth:`~ConversationStore.acquire` and :meth:`~ConversationStore.commit`, have
default implementations built on those; a store overrides them only to save
round trips. Stores never look at the request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import typing as t
from datetime import datetime
from datetime import timezone

from ..errors import BusyConversation
from ..serialization import ConversationSerializer
from ..serialization import Serializer


def system_clock() -> float:
    """The default clock: seconds since the epoch. Looked up at each call
    so that tools which patch :func:`time.time` take effect.
    """
    return time.time()


@dataclasses.dataclass
class ConversationRecord:
    """One long-running conversation as a store keeps it.

    :param id: the conversation id, unique in its namespace.
    :param namespace: the namespace the conversation lives in.
    :param parent_id: the parent's id, ``None`` for a root.
    :param root_id: the id of the root of its stack (its own id for a root);
        the stack's lock is keyed by it.
    :param depth: ``0`` for a root, the parent's depth + 1 for a child.
    :param data: the conversation's own data, serialized by the store's
        :attr:`~ConversationStore.serializer`.
    :param description: optional text shown in listings.
    :param timeout: inactivity timeout in seconds.
    :param created_at: when it began, seconds since the epoch.
    :param last_access: when a request last used it, seconds since the epoch.
    :param ended: ``True`` for a conversation that ended in a request that
        redirected with its cid: it is kept for exactly one more request.
    """

    id: str
    namespace: str
    parent_id: str | None
    root_id: str
    depth: int
    data: str
    description: str | None
    timeout: float
    created_at: float
    last_access: float
    ended: bool = False

    @property
    def expires_at(self) -> float:
        """When the record expires unless it is used again."""
        return self.last_access + self.timeout

    def to_dict(self) -> dict[str, t.Any]:
        """A compact, JSON-compatible form without the id and namespace,
        which stores keep in the key. :meth:`from_dict` reverses it.
        """
        rv: dict[str, t.Any] = {
            "d": self.data,
            "t": self.timeout,
            "c": self.created_at,
            "a": self.last_access,
        }
        if self.parent_id is not None:
            rv["p"] = self.parent_id
            rv["r"] = self.root_id
            rv["h"] = self.depth
        if self.description is not None:
            rv["n"] = self.description
        if self.ended:
            rv["e"] = 1
        return rv

    @classmethod
    def from_dict(cls, namespace: str, cid: str, d: dict[str, t.Any]) -> ConversationRecord:
        """Rebuild a record from :meth:`to_dict`'s output.

        :param namespace: the namespace the record was found in.
        :param cid: the conversation id the record was found under.
        :param d: the compact form.
        """
        return cls(
            id=cid,
            namespace=namespace,
            parent_id=d.get("p"),
            root_id=d.get("r", cid),
            depth=d.get("h", 0),
            data=d["d"],
            description=d.get("n"),
            timeout=d["t"],
            created_at=d["c"],
            last_access=d["a"],
            ended=bool(d.get("e")),
        )


@dataclasses.dataclass(frozen=True)
class ConversationInfo:
    """A read-only summary of a long-running conversation, as listed by
    :meth:`~flask_conversation.ConversationScope.conversations`.

    :param id: the conversation id.
    :param description: the description given at :meth:`begin` or later.
    :param parent_id: the parent's id, ``None`` for a root.
    :param depth: ``0`` for a root.
    :param created_at: when it began (timezone-aware UTC).
    :param last_access: when a request last used it (timezone-aware UTC).
    :param expires_at: when it expires unless used (timezone-aware UTC).
    :param size: bytes of serialized data.
    """

    id: str
    description: str | None
    parent_id: str | None
    depth: int
    created_at: datetime
    last_access: datetime
    expires_at: datetime
    size: int

    @classmethod
    def from_record(cls, record: ConversationRecord) -> ConversationInfo:
        """Summarize a record.

        :param record: the stored record.
        """

        def utc(ts: float) -> datetime:
            return datetime.fromtimestamp(ts, timezone.utc)

        return cls(
            id=record.id,
            description=record.description,
            parent_id=record.parent_id,
            depth=record.depth,
            created_at=utc(record.created_at),
            last_access=utc(record.last_access),
            expires_at=utc(record.expires_at),
            size=len(record.data.encode()),
        )


@dataclasses.dataclass
class Acquired:
    """The result of :meth:`ConversationStore.acquire`: the stack's lock and
    the conversation's chain.

    :param root_id: the id the lock is keyed by.
    :param token: the lock owner's token, passed back to unlock.
    :param chain: the records from the root down to the requested one;
        empty when :meth:`ConversationStore.claim` locked an id that does
        not exist yet.
    :param listing: optional, for a store that read the namespace's
        conversations in the same call (each round trip counts): called
        with the current time, returns a summary of every conversation of
        the namespace, as it was when the lock was taken, that is not
        ended and does not expire by then; or ``None`` if it cannot. A
        request that lists its namespace
        (:meth:`~flask_conversation.ConversationScope.conversations`) uses
        it instead of :meth:`ConversationStore.list_namespace`.
    """

    root_id: str
    token: str
    chain: list[ConversationRecord]
    listing: t.Callable[[float], list[ConversationInfo] | None] | None = None


@dataclasses.dataclass
class CommitBatch:
    """Everything one request changes in one namespace, applied at once.

    :param saves: records to write (new, changed or renewed).
    :param deletes: ids to delete, each with the reason reported for it and
        for each of its descendants, which are deleted with it. A reason of
        ``None`` deletes silently (a consumed one-request survivor).
    :param unlock: stack locks to release afterwards, ``root_id -> token``.
    :param max_count: the most long-running conversations the namespace may
        hold; whole least recently used stacks are evicted to fit.
    :param keep_roots: stacks this request works in, never evicted.
    """

    saves: list[ConversationRecord] = dataclasses.field(default_factory=list)
    deletes: dict[str, str | None] = dataclasses.field(default_factory=dict)
    unlock: dict[str, str] = dataclasses.field(default_factory=dict)
    max_count: int = 32
    keep_roots: set[str] = dataclasses.field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.saves or self.deletes or self.unlock)


#: ``(cid, reason)`` pairs of the records a commit removed and reports.
Destroyed = list[tuple[str, str]]


@dataclasses.dataclass
class Plan:
    """What :func:`plan_commit` decided: the ids to delete and the records
    to write, and what to report.
    """

    delete: list[str]
    save: list[ConversationRecord]
    destroyed: Destroyed


def plan_commit(stored: t.Iterable[ConversationRecord], batch: CommitBatch, now: float) -> Plan:
    """Decide how a batch applies to the records a namespace holds: drop
    expired records, delete ended subtrees, then evict least recently used
    stacks until the namespace fits ``batch.max_count``.

    A pure function, so that every store shares the same rules.

    :param stored: the records currently in the namespace.
    :param batch: the request's changes.
    :param now: the current time.
    """
    records = {r.id: r for r in stored}
    saving = {r.id for r in batch.saves}
    delete: list[str] = []
    destroyed: Destroyed = []

    def remove(cid: str, reason: str | None) -> None:
        records.pop(cid, None)
        delete.append(cid)
        if reason is not None:
            destroyed.append((cid, reason))

    # A record held by this request is being renewed, so it cannot expire.
    for r in list(records.values()):
        if r.expires_at <= now and r.id not in saving:
            remove(r.id, None if r.ended else "expired")

    children: dict[str, list[str]] = {}
    for r in [*records.values(), *batch.saves]:
        if r.parent_id is not None:
            children.setdefault(r.parent_id, []).append(r.id)

    for cid, reason in batch.deletes.items():
        pending = [cid]
        while pending:
            current = pending.pop()
            pending.extend(children.pop(current, ()))
            if current in records or current in saving:
                is_tombstone = current in records and records[current].ended
                remove(current, None if is_tombstone else reason)

    for r in batch.saves:
        records[r.id] = r

    live = [r for r in records.values() if not r.ended]
    excess = len(live) - batch.max_count
    if excess > 0:
        stacks: dict[str, list[ConversationRecord]] = {}
        for r in live:
            stacks.setdefault(r.root_id, []).append(r)
        # Stacks used at the same time go by root id, so that the outcome
        # does not depend on the order in which a store lists records.
        by_age = sorted(
            (s for root, s in stacks.items() if root not in batch.keep_roots),
            key=lambda s: (max(r.last_access for r in s), s[0].root_id),
        )
        for stack in by_age:
            if excess <= 0:
                break
            for r in stack:
                remove(r.id, "evicted")
            excess -= len(stack)

    return Plan(
        delete=delete,
        save=[r for r in batch.saves if r.id in records],
        destroyed=destroyed,
    )


class ConversationStore:
    """Base class of conversation stores.

    Subclasses implement the primitives; :meth:`acquire` and :meth:`commit`
    are built on them and may be overridden to do the same work in fewer
    round trips. The contract every store keeps:

    -   **Records.** One record per conversation, written whole: a reader
        sees the old version or the new one, never a mix. Ids are unique
        per namespace; namespaces never see each other's records.
    -   **Time.** :attr:`clock` is the only time source. A record whose
        :attr:`~ConversationRecord.expires_at` is not after ``clock()`` is
        gone for :meth:`load_chain` and :meth:`acquire`, even if the backend
        still holds it. A store with native expiry may drop such records by
        itself (set :attr:`native_expiry`); the others leave it to
        :meth:`commit` and :meth:`purge`.
    -   **Locks.** One lock per stack, keyed by its root's id, held by one
        owner at a time and released only with the owner's token. A store
        shared between processes gives each lock a lease, so a crashed
        holder does not block the stack forever. Waiting uses real time,
        never :attr:`clock`.
    -   **Commits.** :meth:`commit` applies the rules of
        :func:`plan_commit` to what the namespace holds at that moment, and
        releases the batch's locks even when it fails. A store whose
        backend can fail part-way should apply a batch at once (one
        transaction or script) so that a failure writes nothing.
    -   **Failures.** Methods that fail because the backend is unreachable
        raise :exc:`~flask_conversation.ConversationStoreError`, nothing
        else, so the request answers 503 and the next one works again once
        the backend is back.

    :param serializer: turns conversation data into text and back; by
        default :class:`~flask_conversation.serialization.ConversationSerializer`.
    :param clock: returns the current time in seconds since the epoch.

    .. versionadded:: 0.1
    """

    #: Whether other requests can change the records while a request waits
    #: for a lock, so that :meth:`acquire` reads them again once it holds it.
    shared: bool = True

    #: Whether the store drops expired records by itself (native TTL), so
    #: :meth:`purge` has nothing to do.
    native_expiry: bool = False

    def __init__(
        self,
        serializer: Serializer | None = None,
        clock: t.Callable[[], float] = system_clock,
    ) -> None:
        self.serializer: Serializer = serializer or ConversationSerializer()
        self.clock = clock

    # -- primitives ----------------------------------------------------------

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        """Return the record ``cid`` of ``namespace``, or ``None``. May return
        an expired record; the caller checks :attr:`~ConversationRecord.expires_at`.

        :param namespace: the namespace to look in.
        :param cid: the conversation id (already validated: safe as a key).
        """
        raise NotImplementedError

    def save(self, record: ConversationRecord) -> None:
        """Write ``record`` whole, replacing any previous version atomically;
        a store with native expiry sets the time to live to
        ``record.expires_at - now``, so that each renewal slides it.

        :param record: the record to write.
        """
        raise NotImplementedError

    def delete(self, namespace: str, cid: str) -> None:
        """Remove one record; no error if it does not exist.

        :param namespace: the namespace of the record.
        :param cid: the conversation id.
        """
        raise NotImplementedError

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        """Return every record of ``namespace``, in any order. May include
        expired records.

        :param namespace: the namespace to list.
        """
        raise NotImplementedError

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        """Take the lock of one stack, waiting up to ``timeout`` seconds.
        The lock works whether or not the root exists; a store shared
        between processes gives it a lease so that a crashed holder cannot
        keep it forever.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param timeout: seconds to wait for another holder.
        :return: an owner token for :meth:`unlock`, or ``None`` on timeout.
        """
        raise NotImplementedError

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        """Release a lock taken by :meth:`lock`, only if ``token`` still
        owns it.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param token: the token :meth:`lock` returned.
        """
        raise NotImplementedError

    def namespaces(self) -> dict[str, int]:
        """Return every namespace with its number of records, for the CLI.

        :raise NotImplementedError: the store cannot list namespaces.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot list namespaces.")

    # -- composite operations ------------------------------------------------

    def load_chain(self, namespace: str, cid: str) -> list[ConversationRecord] | None:
        """Return the records from the root down to ``cid``, or ``None`` if
        ``cid`` or one of its ancestors is missing or expired.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        now = self.clock()
        chain: list[ConversationRecord] = []
        next_id: str | None = cid
        while next_id is not None:
            record = self.load(namespace, next_id)
            if record is None or record.expires_at <= now or len(chain) > 1024:
                return None
            chain.append(record)
            next_id = record.parent_id
        chain.reverse()
        return chain

    def acquire(self, namespace: str, cid: str, timeout: float) -> Acquired | None:
        """Lock the stack ``cid`` belongs to and load its chain. The chain
        is read while the lock is held, so it includes every change of the
        previous holder. The default makes three calls (load, lock, load
        again); a store may do it in one.

        :param namespace: the namespace to look in.
        :param cid: the conversation id the request named.
        :param timeout: seconds to wait for the stack's lock.
        :return: the lock and chain, or ``None`` if there is no live
            conversation ``cid`` (nothing is locked then).
        :raise BusyConversation: the lock was not free within ``timeout``.
        """
        chain = self.load_chain(namespace, cid)
        if chain is None:
            return None
        root_id = chain[0].id
        token = self.lock(namespace, root_id, timeout)
        if token is None:
            raise BusyConversation()
        if not self.shared:
            return Acquired(root_id, token, chain)
        # Read again: the previous holder may have changed or ended it.
        chain = self.load_chain(namespace, cid)
        if chain is None:
            self.unlock(namespace, root_id, token)
            return None
        return Acquired(root_id, token, chain)

    def claim(self, namespace: str, cid: str, timeout: float) -> Acquired:
        """Like :meth:`acquire`, but when there is no live conversation
        ``cid``, lock ``cid`` as the root of a stack about to be created and
        return an empty chain, so that two requests creating the same
        natural id one after the other see each other's.

        :param namespace: the namespace to look in.
        :param cid: the natural id to join or create.
        :param timeout: seconds to wait for the lock.
        :raise BusyConversation: the lock was not free within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            acquired = self.acquire(namespace, cid, timeout)
            if acquired is not None:
                return acquired
            token = self.lock(namespace, cid, max(deadline - time.monotonic(), 0.0))
            if token is None:
                raise BusyConversation()
            # Created while this request waited: join it through its stack.
            chain = self.load_chain(namespace, cid) if self.shared else None
            if chain is None:
                return Acquired(cid, token, [])
            if chain[0].id == cid:
                return Acquired(cid, token, chain)
            self.unlock(namespace, cid, token)

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        """Apply one request's changes, then release its locks. Records of
        the batch's stacks cannot change meanwhile (their locks are held);
        other stacks of the namespace can, so the rules run against the
        namespace as it is now, not as it was when the request began.

        :param namespace: the namespace the changes belong to.
        :param batch: the changes.
        :return: the records removed, with their reasons, for the signals.
        """
        try:
            if batch.saves or batch.deletes:
                plan = plan_commit(self.list_namespace(namespace), batch, self.clock())
                for cid in plan.delete:
                    self.delete(namespace, cid)
                for record in plan.save:
                    self.save(record)
                return plan.destroyed
            return []
        finally:
            for root_id, token in batch.unlock.items():
                self.unlock(namespace, root_id, token)

    def purge(self) -> int | None:
        """Remove expired records of every namespace.

        :return: how many were removed, or ``None`` when the store expires
            records by itself.
        :raise NotImplementedError: the store cannot list namespaces.
        """
        if self.native_expiry:
            return None
        now = self.clock()
        removed = 0
        for namespace in self.namespaces():
            for record in self.list_namespace(namespace):
                if record.expires_at <= now:
                    self.delete(namespace, record.id)
                    removed += 1
        return removed


class LocalLocks:
    """Stack locks for one process: one :class:`threading.Condition` per
    held ``(namespace, root_id)``, created on demand and dropped when free,
    so the table never grows past the number of stacks in use.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owners: dict[tuple[str, str], str] = {}
        self._counter = 0

    def acquire(self, namespace: str, root_id: str, timeout: float) -> str | None:
        """Take the lock, waiting up to ``timeout`` seconds.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param timeout: seconds to wait.
        :return: an owner token, or ``None`` on timeout.
        """
        key = (namespace, root_id)
        with self._cond:
            if not self._cond.wait_for(lambda: key not in self._owners, timeout):
                return None
            self._counter += 1
            token = str(self._counter)
            self._owners[key] = token
            return token

    def release(self, namespace: str, root_id: str, token: str) -> None:
        """Release the lock if ``token`` owns it.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param token: the token :meth:`acquire` returned.
        """
        key = (namespace, root_id)
        with self._cond:
            if self._owners.get(key) == token:
                del self._owners[key]
                self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._owners)
