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

The records and batches they exchange are in :mod:`.records`; the commit
rules they share are in :mod:`.rules`.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ..errors import BusyConversation
from ..serialization import ConversationSerializer
from ..serialization import Serializer
from .locks import lock_retries
from .records import Acquired
from .records import CommitBatch
from .records import ConversationRecord
from .records import Destroyed
from .rules import plan_commit

#: The longest chain :meth:`ConversationStore.load_chain` follows: a
#: longer one can only come from a cycle of tampered parent ids.
MAX_CHAIN = 1024


def system_clock() -> float:
    """The default clock: seconds since the epoch. Looked up at each call
    so that tools which patch :func:`time.time` take effect.
    """
    return time.time()


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

    #: Whether the store keeps its records in :data:`flask.session`: the
    #: namespace token is then kept there too, instead of in a cookie of
    #: its own (``CONVERSATION_COOKIE_NAME``).
    in_session: bool = False

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

        A waiting request asks the backend at most about ten times a second.
        By default, :meth:`try_lock` is called at once, then after pauses
        that grow (see :func:`~.locks.lock_retries`); a store whose backend
        can wake waiters (a condition, a blocking pop) overrides this
        instead.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param timeout: seconds to wait for another holder.
        :return: an owner token for :meth:`unlock`, or ``None`` on timeout.
        """
        for _ in lock_retries(timeout):
            token = self.try_lock(namespace, root_id)
            if token is not None:
                return token
        return None

    def try_lock(self, namespace: str, root_id: str) -> str | None:
        """Take the lock of one stack if it is free, without waiting. A
        store implements this or :meth:`lock`.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :return: an owner token for :meth:`unlock`, or ``None`` if another
            request holds the lock.

        .. versionadded:: 0.1
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
            if record is None or record.expires_at <= now or len(chain) > MAX_CHAIN:
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
        # Each round waits for a lock; a round that finds ``cid`` moved to
        # another stack meanwhile starts over, paced, until the deadline.
        for _ in lock_retries(timeout):
            acquired = self.acquire(namespace, cid, max(deadline - time.monotonic(), 0.0))
            if acquired is not None:
                return acquired
            token = self.lock(namespace, cid, max(deadline - time.monotonic(), 0.0))
            if token is None:
                break
            # Created while this request waited: join it through its stack.
            chain = self.load_chain(namespace, cid) if self.shared else None
            if chain is None:
                return Acquired(cid, token, [])
            if chain[0].id == cid:
                return Acquired(cid, token, chain)
            self.unlock(namespace, cid, token)
        raise BusyConversation()

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        """Apply one request's changes with :meth:`apply_batch`, then
        release its locks, also when applying fails.

        :param namespace: the namespace the changes belong to.
        :param batch: the changes.
        :return: the records removed, with their reasons, for the signals.
        """
        try:
            if batch.saves or batch.deletes or batch.clear:
                return self.apply_batch(namespace, batch)
            return []
        finally:
            for root_id, token in batch.unlock.items():
                self.unlock(namespace, root_id, token)

    def apply_batch(self, namespace: str, batch: CommitBatch) -> Destroyed:
        """Apply the changes of a batch that saves or deletes something,
        without touching its locks; :meth:`commit` releases them. Records of
        the batch's stacks cannot change meanwhile (their locks are held);
        other stacks of the namespace can, so the rules run against the
        namespace as it is now, not as it was when the request began. A
        store overrides this, rather than :meth:`commit`, to apply a batch
        in fewer round trips.

        :param namespace: the namespace the changes belong to.
        :param batch: the changes, with :attr:`~CommitBatch.saves`,
            :attr:`~CommitBatch.deletes` or :attr:`~CommitBatch.clear`.
        :return: the records removed, with their reasons, for the signals.

        .. versionadded:: 0.1
        """
        plan = plan_commit(self.list_namespace(namespace), batch, self.clock())
        for cid in plan.delete:
            self.delete(namespace, cid)
        for record in plan.save:
            self.save(record)
        return plan.destroyed

    def move_namespace(self, old: str, new: str, timeout: float) -> None:
        """Move every record of the namespace ``old`` to ``new``, for
        :meth:`~flask_conversation.ConversationScope.rotate_namespace`.
        Afterwards ``old`` holds none of them, and no request that was
        working in ``old`` writes any of them back there.

        The default takes the lock of each stack of ``old``, waiting up to
        ``timeout`` seconds in all for requests that hold them, so that their
        changes are committed first and move along; then it saves each record
        in ``new``, deletes it from ``old``, and releases the locks. Every call
        names one namespace, so the two namespaces may live apart (another
        slot of a Redis Cluster). A stack whose lock stays busy is moved
        anyway: its holder then finds it gone at commit and writes nothing
        (see :attr:`CommitBatch.held`). A failure part-way leaves every
        record in ``old``, and maybe copies in ``new``, which no client has
        the token of yet.

        :param old: the current namespace.
        :param new: the new namespace, which holds nothing yet.
        :param timeout: seconds to wait for the stacks' locks, in all.

        .. versionadded:: 0.1
        """
        tokens = self.lock_namespace(old, timeout)
        try:
            records = self.list_namespace(old)
            for record in records:
                self.save(dataclasses.replace(record, namespace=new))
            for record in records:
                self.delete(old, record.id)
        finally:
            for root_id, token in tokens.items():
                self.unlock(old, root_id, token)

    def lock_namespace(self, namespace: str, timeout: float) -> dict[str, str]:
        """Take the locks of the stacks of ``namespace``, waiting up to
        ``timeout`` seconds in all; a stack whose lock stays busy is left out.

        :param namespace: the namespace.
        :param timeout: seconds to wait, in all.
        :return: ``root_id -> token`` of the locks taken, for :meth:`unlock`.

        .. versionadded:: 0.1
        """
        deadline = time.monotonic() + timeout
        tokens: dict[str, str] = {}
        try:
            for root_id in sorted({r.root_id for r in self.list_namespace(namespace)}):
                left = max(deadline - time.monotonic(), 0.0)
                token = self.lock(namespace, root_id, left)
                if token is not None:
                    tokens[root_id] = token
        except BaseException:
            for root_id, token in tokens.items():
                self.unlock(namespace, root_id, token)
            raise
        return tokens

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
