"""The live conversations of a request's namespace as the request sees
them: what the store holds, with the request's uncommitted changes over
it. :func:`~flask_conversation.conversations` reads it, and so does the
limit on how many conversations one stack may hold.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from .conversation import Conversation
from .failures import StoreFailureLog
from .limits import stack_size
from .namespaces import RequestNamespace
from .snapshots import record_of
from .stores.records import ConversationInfo

if t.TYPE_CHECKING:  # pragma: no cover
    from .stores.base import ConversationStore

#: A listing the store returned with a stack's lock: the namespace's live
#: conversations at a given time, or ``None`` if it cannot tell.
LockListing = t.Callable[[float], "list[ConversationInfo] | None"]


class ListedChanges(t.Protocol):
    """What the listing reads of the request's state."""

    @property
    def active(self) -> Mapping[str, Conversation]:
        """The long-running conversations the request works in, by id."""

    @property
    def deletes(self) -> Mapping[str, str | None]:
        """The ids the request deletes at commit."""

    @property
    def clear(self) -> bool:
        """Whether the commit clears the namespace (``end_all()``)."""


class NamespaceListing:
    """The namespace's live conversations for one request.

    :param changes: the request's state, whose changes are listed over
        what the store holds.
    :param tokens: the request's namespace.
    :param store: the application's store.
    :param failures: the request's log of store failures.
    """

    def __init__(
        self,
        changes: ListedChanges,
        tokens: RequestNamespace,
        store: ConversationStore,
        failures: StoreFailureLog,
    ) -> None:
        self._changes = changes
        self._tokens = tokens
        self._store = store
        self._failures = failures
        self._with_lock: LockListing | None = None
        self._stored: int | None = None
        self._begun: set[str] = set()

    def keep(self, listing: LockListing | None, count: int | None = None) -> None:
        """Keep what the store returned with the stack's lock: it saves a
        round trip to the store.

        :param listing: the listing of :class:`~.stores.records.Acquired`.
        :param count: its count of the namespace's records.
        """
        self._with_lock = listing
        self._stored = count

    def add_begun(self, cid: str) -> None:
        """Note a conversation begun in this request: the store holds
        nothing of it yet.

        :param cid: its id.
        """
        self._begun.add(cid)

    def conversations(self) -> list[ConversationInfo]:
        """The live long-running conversations of the namespace, most
        recently used first, including this request's uncommitted changes.
        """
        changes = self._changes
        namespace = self._tokens.get()
        if namespace is None:
            return []
        now = self._store.clock()
        listed = self._with_lock(now) if self._with_lock is not None else None
        if changes.clear:
            infos = {}
        elif listed is not None:
            infos = {i.id: i for i in listed if i.id not in changes.deletes}
        else:
            with self._failures.reporting("listing the namespace"):
                records = self._store.list_namespace(namespace)
            infos = {
                r.id: ConversationInfo.from_record(r)
                for r in records
                if not r.ended and r.expires_at > now and r.id not in changes.deletes
            }
        for cid, conv in changes.active.items():
            infos[cid] = ConversationInfo.from_record(record_of(conv, namespace, now, ""))
        # A child renews its ancestors: at equal times the deepest was used.
        return sorted(infos.values(), key=lambda i: (i.last_access, i.depth), reverse=True)

    def stack_size(self, root: Conversation, limit: int | None = None) -> int:
        """How many live conversations the stack of ``root`` holds,
        including this request's uncommitted changes; or, when the store
        said with the lock that the namespace held fewer than ``limit``
        records, that count, which decides any comparison with ``limit``
        as the exact size would, without listing the namespace.

        :param root: the stack's root, a long-running conversation.
        :param limit: what the size is compared with, if anything.
        """
        if root.id in self._begun:
            # Begun in this request: nothing of it is stored yet.
            return sum(1 for c in self._changes.active.values() if c.root is root)
        if limit is not None and self._stored is not None and self._stored < limit:
            return self._stored
        return stack_size(self.conversations(), t.cast(str, root.id))
