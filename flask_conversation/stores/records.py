"""What stores keep and exchange: the conversation record and its compact
form, the summaries listed to users, and the shapes of one request's
acquire and commit.

Expiry is computed here and nowhere else: :func:`expiry`.
"""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import datetime
from datetime import timezone


def expiry(last_access: float, timeout: float) -> float:
    """When a conversation last used at ``last_access`` expires unless it
    is used again: the one definition of expiry every store shares.

    :param last_access: seconds since the epoch.
    :param timeout: the inactivity timeout in seconds.
    """
    return last_access + timeout


def utc(timestamp: float) -> datetime:
    """A timezone-aware UTC datetime for seconds since the epoch.

    :param timestamp: seconds since the epoch.
    """
    return datetime.fromtimestamp(timestamp, timezone.utc)


class Keys:
    """The keys of a record's compact form (:meth:`ConversationRecord.to_dict`).

    One letter each: a store keeps one compact form per conversation, and
    the session store keeps them all in the session cookie.
    """

    DATA: t.Final = "d"
    TIMEOUT: t.Final = "t"
    CREATED_AT: t.Final = "c"
    LAST_ACCESS: t.Final = "a"
    #: Present for a child only, with :attr:`ROOT_ID` and :attr:`DEPTH`.
    PARENT_ID: t.Final = "p"
    ROOT_ID: t.Final = "r"
    DEPTH: t.Final = "h"
    DESCRIPTION: t.Final = "n"
    #: ``1`` for an ended record kept for one more request.
    ENDED: t.Final = "e"


def compact_expiry(d: t.Mapping[str, t.Any]) -> float:
    """The expiry of a record in its compact form, without rebuilding it.

    :param d: the compact form.
    """
    return expiry(d[Keys.LAST_ACCESS], d[Keys.TIMEOUT])


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
        :attr:`~flask_conversation.stores.ConversationStore.serializer`.
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
        return expiry(self.last_access, self.timeout)

    def to_dict(self) -> dict[str, t.Any]:
        """A compact, JSON-compatible form without the id and namespace,
        which stores keep in the key. :meth:`from_dict` reverses it; the
        keys are those of :class:`Keys`.
        """
        rv: dict[str, t.Any] = {
            Keys.DATA: self.data,
            Keys.TIMEOUT: self.timeout,
            Keys.CREATED_AT: self.created_at,
            Keys.LAST_ACCESS: self.last_access,
        }
        if self.parent_id is not None:
            rv[Keys.PARENT_ID] = self.parent_id
            rv[Keys.ROOT_ID] = self.root_id
            rv[Keys.DEPTH] = self.depth
        if self.description is not None:
            rv[Keys.DESCRIPTION] = self.description
        if self.ended:
            rv[Keys.ENDED] = 1
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
            parent_id=d.get(Keys.PARENT_ID),
            root_id=d.get(Keys.ROOT_ID, cid),
            depth=d.get(Keys.DEPTH, 0),
            data=d[Keys.DATA],
            description=d.get(Keys.DESCRIPTION),
            timeout=d[Keys.TIMEOUT],
            created_at=d[Keys.CREATED_AT],
            last_access=d[Keys.LAST_ACCESS],
            ended=bool(d.get(Keys.ENDED)),
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
    def from_compact(cls, cid: str, d: t.Mapping[str, t.Any], size: int) -> ConversationInfo:
        """Summarize a record from its compact form (:meth:`ConversationRecord.to_dict`,
        with or without its data): the one place a summary is built.

        :param cid: the conversation id.
        :param d: the compact form.
        :param size: bytes of serialized data.
        """
        return cls(
            id=cid,
            description=d.get(Keys.DESCRIPTION),
            parent_id=d.get(Keys.PARENT_ID),
            depth=d.get(Keys.DEPTH, 0),
            created_at=utc(d[Keys.CREATED_AT]),
            last_access=utc(d[Keys.LAST_ACCESS]),
            expires_at=utc(compact_expiry(d)),
            size=size,
        )

    @classmethod
    def from_record(cls, record: ConversationRecord) -> ConversationInfo:
        """Summarize a record.

        :param record: the stored record.
        """
        return cls.from_compact(record.id, record.to_dict(), len(record.data.encode()))


@dataclasses.dataclass
class Acquired:
    """The result of :meth:`~flask_conversation.stores.ConversationStore.acquire`:
    the stack's lock and the conversation's chain.

    :param root_id: the id the lock is keyed by.
    :param token: the lock owner's token, passed back to unlock.
    :param chain: the records from the root down to the requested one;
        empty when :meth:`~flask_conversation.stores.ConversationStore.claim`
        locked an id that does not exist yet.
    :param listing: optional, for a store that read the namespace's
        conversations in the same call (each round trip counts): called
        with the current time, returns a summary of every conversation of
        the namespace, as it was when the lock was taken, that is not
        ended and does not expire by then; or ``None`` if it cannot. A
        request that lists its namespace
        (:meth:`~flask_conversation.ConversationScope.conversations`) uses
        it instead of
        :meth:`~flask_conversation.stores.ConversationStore.list_namespace`.
    :param count: optional, for a store that read it in the same call: how
        many records the namespace held when the lock was taken. It bounds
        the size of the locked stack, so a request that begins a child
        where it is below ``CONVERSATION_MAX_COUNT`` need not list the
        namespace to know the stack has room.

    .. versionchanged:: 0.1
        Added ``count``.
    """

    root_id: str
    token: str
    chain: list[ConversationRecord]
    listing: t.Callable[[float], list[ConversationInfo] | None] | None = None
    count: int | None = None


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
    :param clear: remove every record the namespace holds at the commit
        (``end_all()``), reported with reason ``"cleared"``, before the
        batch's own changes apply.
    :param held: the roots of the stacks this request read from the store
        while holding their locks. A held root that the namespace no longer
        holds was removed by another request meanwhile (``end_all()``,
        eviction, or a commit that found it expired and reported it): the
        batch writes nothing of that stack back.

    .. versionchanged:: 0.1
        Added ``clear`` and ``held``.
    """

    saves: list[ConversationRecord] = dataclasses.field(default_factory=list)
    deletes: dict[str, str | None] = dataclasses.field(default_factory=dict)
    unlock: dict[str, str] = dataclasses.field(default_factory=dict)
    max_count: int = 32
    keep_roots: set[str] = dataclasses.field(default_factory=set)
    clear: bool = False
    held: set[str] = dataclasses.field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.saves or self.deletes or self.unlock or self.clear)

    def lost_roots(self, stored: t.Container[str]) -> set[str]:
        """The held roots that ``stored`` (the ids the namespace holds) no
        longer contains: stacks another request removed while this one
        held them, which this batch must not write back.

        :param stored: the ids of the records the namespace holds.
        """
        return {root for root in self.held if root not in stored}


#: ``(cid, reason)`` pairs of the records a commit removed and reports.
Destroyed = list[tuple[str, str]]
