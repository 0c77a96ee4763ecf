"""A store shared by every process and machine: a namespace's
conversations in two Redis hashes (metadata and data), locks and the
commit rules run inside Redis by the scripts in ``lua/``. The key layout is
described in :mod:`.keys`, the metadata in :mod:`.codec`.
"""

from __future__ import annotations

import functools
import math
import secrets
import typing as t

import redis.exceptions

from ...errors import BusyConversation
from ...errors import ConversationStoreError
from ...serialization import Serializer
from ..base import ConversationStore
from ..base import system_clock
from ..locks import lock_retries
from ..records import Acquired
from ..records import CommitBatch
from ..records import ConversationRecord
from ..records import Destroyed
from . import codec
from . import primitives
from .arguments import commit_call
from .arguments import unlock_call
from .keys import namespace_keys
from .keys import NamespaceKeys
from .keys import shard_tag as shard_tag
from .keys import SHARDS as SHARDS
from .scripts import Mode
from .scripts import Reply
from .scripts import Scripts
from .watched import WatchedPath

if t.TYPE_CHECKING:  # pragma: no cover
    import redis.cluster

#: What the client raises when Redis fails or cannot be reached.
_REDIS_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


class RedisStore(ConversationStore):
    """Keeps conversations in Redis, shared by every worker process and
    every machine of an application.

    -   **One field per conversation**, in two hashes per namespace: its
        metadata (times, parent, root, size, description: what the commit
        rules and the listing read) in one, its data (JSON, never pickled)
        in the other, so that Redis never decodes conversation data. A
        conversation is written whole by one atomic call (a script or a
        transaction), so a reader sees the old version or the new one.
        Expiry is native: the namespace's keys expire a little after its
        last conversation, and the store's clock decides each
        conversation's own expiry: a conversation whose
        :attr:`~.ConversationRecord.expires_at` has passed is gone, and the
        next commit in its namespace removes it.
    -   **A lock per stack** (keyed by the root's id) that works across
        processes: a key holding a random owner token that expires after
        ``lock_lease`` seconds of Redis's own clock, so a crashed worker's
        lock runs out; released only by its owner. A commit whose lease ran
        out (whether or not another request took the lock since) writes
        nothing and fails with
        :exc:`~flask_conversation.ConversationStoreError`. A request that
        waits for a lock asks again after growing pauses
        (:func:`~.locks.lock_retries`).
    -   **Two round trips** for a request that uses a conversation: one
        locks the stack and loads its chain (:meth:`acquire`), one applies
        the commit rules, writes and unlocks (:meth:`commit`). A request
        that does not use a conversation makes none. The first also brings
        the namespace's metadata while it holds at most
        :attr:`listing_limit` conversations, so a page that lists them (a
        sidebar calling ``conversations()``) makes no third.
    -   **No script on the usual request**: a known stack is locked,
        watched and loaded with plain commands, and a renewal committed in
        a ``MULTI``/``EXEC`` transaction (see :mod:`.watched`); everything
        else runs the scripts in ``lua/``.
    -   **Little work in Redis**: a commit that only renews or adds
        conversations never reads the rest of the namespace, and its
        expiry and registry move only when a commit saves past them.
    -   **Redis Cluster**: every key of a namespace carries the same hash
        tag and every script names its keys, so a namespace lives in one
        slot, served by one node: the scripts and the transactions work
        unchanged with :class:`redis.cluster.RedisCluster`. The namespaces are spread over
        :data:`~.keys.SHARDS` tags, and so over the cluster's nodes.
    -   **Outages**: every Redis error becomes
        :exc:`~flask_conversation.ConversationStoreError` (503 with
        ``Retry-After``). Each write is one script or one transaction,
        which Redis runs atomically, so nothing is ever half written; the next request after
        Redis is back works normally.

    Expired conversations are reported (``conversation_destroyed``,
    ``"expired"``) by the commit that removes them; a whole namespace that
    expired in Redis is not reported.

    Redis should not evict keys by itself (``maxmemory-policy
    noeviction``): an evicted namespace loses its locks and conversations.

    :param client: a :class:`redis.Redis` or
        :class:`redis.cluster.RedisCluster` client. Its retry and timeout
        settings decide how long a request waits for an unreachable server.
    :param prefix: put before every key; must not contain ``{`` or ``}``.
    :param serializer: see :class:`ConversationStore`.
    :param clock: see :class:`ConversationStore`.
    :param lock_lease: seconds after which a lock that was never released
        expires. Keep it above the longest request.

    .. versionadded:: 0.1
    """

    native_expiry = True

    #: A lock comes with the namespace's metadata (for
    #: :attr:`~.records.Acquired.listing`) while the namespace holds at most
    #: this many conversations; a larger one is listed by its own call.
    listing_limit = 32

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        prefix: str = "conversation:",
        serializer: Serializer | None = None,
        clock: t.Callable[[], float] = system_clock,
        lock_lease: float = 30.0,
    ) -> None:
        super().__init__(serializer, clock)
        if "{" in prefix or "}" in prefix:
            raise ValueError("The RedisStore prefix must not contain '{' or '}'.")
        if lock_lease <= 0:
            raise ValueError("lock_lease must be positive.")
        self.client: t.Any = client
        self.prefix = prefix
        self.lock_lease = lock_lease
        self._lease_ms = math.ceil(lock_lease * 1000)
        self._scripts = Scripts(client)
        self._watched = WatchedPath(client, self._scripts, self._lease_ms, self.listing_limit)

    @classmethod
    def from_url(cls, url: str, **kwargs: t.Any) -> RedisStore:
        """Connect to the Redis server at ``url``.

        :param url: a ``redis://``, ``rediss://`` or ``unix://`` URL; client
            options such as ``socket_timeout`` go in its query string.
        :param kwargs: passed to :class:`RedisStore`.
        """
        return cls(redis.Redis.from_url(url), **kwargs)

    # -- keys ------------------------------------------------------------------

    def keys(self, namespace: str) -> NamespaceKeys:
        """The keys of ``namespace`` (see :mod:`.keys`).

        :param namespace: the namespace.
        """
        return namespace_keys(self.prefix, namespace)

    def base(self, namespace: str) -> str:
        """The start of every key of ``namespace``, hash tag included.

        :param namespace: the namespace.
        """
        return self.keys(namespace).base

    # -- helpers ---------------------------------------------------------------

    def _call(self, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return fn(*args, **kwargs)
        except _REDIS_ERRORS as e:
            raise ConversationStoreError(f"Redis: {type(e).__name__}: {e}") from e

    def _run_acquire(self, namespace: str, cid: str, mode: Mode, token: str) -> t.Any:
        keys = self.keys(namespace)
        return self._call(
            self._scripts.acquire,
            keys=[keys.meta, keys.data],
            args=[
                cid,
                repr(float(self.clock())),
                mode.value,
                token,
                self._lease_ms,
                self.listing_limit,
                keys.locks,
            ],
        )

    # -- primitives ------------------------------------------------------------

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        """Read one conversation's metadata and data in one script call.
        May return a record that is expired by the store's clock but not
        yet removed.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        keys = self.keys(namespace)
        record = self._call(primitives.load, self._scripts, keys, namespace, cid)
        return t.cast("ConversationRecord | None", record)

    def save(self, record: ConversationRecord) -> None:
        """Write the record, its metadata and data, in one script call; the
        namespace's keys are kept at least until it expires.

        :param record: the record to write.
        """
        keys = self.keys(record.namespace)
        self._call(primitives.save, self._scripts, keys, record, self.clock())

    def delete(self, namespace: str, cid: str) -> None:
        """Remove the record in one script call.

        :param namespace: the namespace of the record.
        :param cid: the conversation id.
        """
        self._call(primitives.delete, self._scripts, self.keys(namespace), namespace, cid)

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        """Every record of the namespace in one script call (no scan of the
        keyspace).

        :param namespace: the namespace to list.
        """
        keys = self.keys(namespace)
        records = self._call(primitives.list_namespace, self._scripts, keys, namespace)
        return t.cast("list[ConversationRecord]", records)

    def try_lock(self, namespace: str, root_id: str) -> str | None:
        """Take the lock with a fresh random token in one script call, if
        it is free or its lease ran out. :meth:`lock` asks again after
        growing pauses (see :func:`~.locks.lock_retries`).

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        """
        token = secrets.token_hex(16)
        if self._run_acquire(namespace, root_id, Mode.LOCK, token)[0] == Reply.LOCKED:
            return token
        return None

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        """Release the lock only if ``token`` still owns it (compare and
        delete in one script call).

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param token: the token :meth:`lock` returned.
        """
        self._unlock(namespace, {root_id: token})

    def _unlock(self, namespace: str, locks: dict[str, str]) -> None:
        locks = self._call(self._watched.unlock, namespace, locks)
        if locks:
            keys, args = unlock_call(self.keys(namespace), locks)
            self._call(self._scripts.unlock, keys=keys, args=args)

    def namespaces(self) -> dict[str, int]:
        """Every namespace with its number of live records, read from the
        shards' registries and the namespaces' metadata in two pipelined
        batches (no scan of the keyspace). A tool for operators: it reads
        all :data:`~.keys.SHARDS` registries.
        """
        now = self.clock()
        counts = self._call(primitives.namespaces, self.client, self.prefix, self.keys, now)
        return t.cast("dict[str, int]", counts)

    # -- composite operations --------------------------------------------------

    def load_chain(self, namespace: str, cid: str) -> list[ConversationRecord] | None:
        """The chain from the root down to ``cid`` in one call that locks
        nothing (two ``HMGET`` for a chain the process knows, else a
        script), or ``None`` if a link is missing or expired by the store's
        clock.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        keys = self.keys(namespace)
        chain = self._call(self._watched.read, keys, namespace, cid, self.clock())
        if chain is not None:
            return t.cast("list[ConversationRecord]", chain)
        rv = self._run_acquire(namespace, cid, Mode.READ, "")
        return codec.chain(namespace, rv[2], rv[3:]) if rv[0] == Reply.FOUND else None

    def acquire(self, namespace: str, cid: str, timeout: float) -> Acquired | None:
        """Follow the parent links to the root, take the root's lock and
        load the chain, all in one script call; while the lock is held by
        another request, call again after growing pauses until ``timeout``.

        :param namespace: the namespace to look in.
        :param cid: the conversation id the request named.
        :param timeout: seconds to wait for the stack's lock.
        :raise BusyConversation: the lock was not free within ``timeout``.
        """
        return self._acquire(namespace, cid, timeout, Mode.ACQUIRE)

    def claim(self, namespace: str, cid: str, timeout: float) -> Acquired:
        """:meth:`acquire`, locking a missing ``cid`` as a new root in the
        same script call.

        :param namespace: the namespace to look in.
        :param cid: the natural id to join or create.
        :param timeout: seconds to wait for the lock.
        :raise BusyConversation: the lock was not free within ``timeout``.
        """
        acquired = self._acquire(namespace, cid, timeout, Mode.CLAIM)
        assert acquired is not None
        return acquired

    def _acquire(self, namespace: str, cid: str, timeout: float, mode: Mode) -> Acquired | None:
        token = secrets.token_hex(16)
        if mode is Mode.ACQUIRE:
            acquired: Acquired | None = self._call(
                self._watched.acquire, self.keys(namespace), namespace, cid, token, self.clock()
            )
            if acquired is not None:
                return acquired
        for _ in lock_retries(timeout):
            rv = self._run_acquire(namespace, cid, mode, token)
            status = rv[0]
            if status == Reply.MISSING:
                return None
            if status == Reply.LOCKED:
                return Acquired(cid, token, [])
            if status == Reply.FOUND:
                chain = codec.chain(namespace, rv[2], rv[3:])
                if not chain:
                    self._unlock(namespace, {cid: token})
                    return None
                self._watched.chains.remember(namespace, tuple(r.id for r in chain))
                listing = functools.partial(codec.listing, rv[2]) if rv[1] else None
                return Acquired(chain[0].id, token, chain, listing)
        raise BusyConversation()

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        """Apply the rules of :func:`~.rules.plan_commit` inside Redis
        (drop expired records, delete ended subtrees, evict least recently
        used stacks, write) and release the batch's locks, in one atomic
        script call. The rules run where the data is, so they see every
        concurrent commit of other stacks of the namespace.

        :param namespace: the namespace the changes belong to.
        :param batch: the changes.
        :raise ConversationStoreError: Redis failed, or the request no
            longer holds a lock of the batch (its lease ran out); nothing
            was written.
        """
        if not (batch.saves or batch.deletes or batch.clear):
            if batch.unlock:
                self._unlock(namespace, batch.unlock)
            return []
        now = self.clock()
        rv = self._call(self._watched.commit, namespace, batch, now)
        self._watched.chains.learn(namespace, batch.saves)
        if rv is None:
            keys, args = commit_call(self.keys(namespace), namespace, batch, now)
            rv = self._call(self._scripts.commit, keys=keys, args=args)
        if rv[0] != Reply.COMMITTED:
            raise ConversationStoreError(
                f"The lock of stack {codec.text(rv[1])!r} expired before the request"
                " committed (its lease ran out); nothing was written."
            )
        return [(codec.text(rv[i]), codec.text(rv[i + 1])) for i in range(1, len(rv), 2)]
