"""The plain-command path of :class:`~flask_conversation.stores.RedisStore`:
a request on a stack whose chain the process knows runs no script, which
is what makes Redis's own work per request close to a plain ``GET`` and
``SET``.

-   **Lock, watch and load** in one round trip, on a connection the
    request keeps until it commits: ``SET <lock> <token> NX PX <lease>``,
    ``WATCH`` of the lock and of the namespace's metadata, then the
    metadata (``HGETALL`` of a small namespace, which the listing and the
    count use too, as ``acquire.lua`` does; else ``HMGET`` of the header and
    the chain's, and ``HLEN``), and ``HMGET`` of the chain's data.
-   **Commit and unlock** in one more. When the batch only renews the chain
    it loaded and nothing can have expired or need evicting (what
    ``commit.lua``'s shortcut would write unchanged), a ``MULTI``/``EXEC``
    transaction writes it and deletes the lock. ``WATCH`` makes that
    transaction write nothing if the lock or the namespace changed since
    the load: the lease ran out (the lock's key expired), another request
    removed the stack or committed in the namespace. Every write to the
    namespace changes its metadata, so watching it covers the data too;
    and both keep their time to live, which outlasts the lease (the load
    checks it), so neither can expire on its own before the commit. Then, and for every
    other batch, ``commit.lua`` runs on the same connection and decides, as
    it does for a stack loaded by the scripts.

A chain the process does not know (a conversation begun in another
process), a lock another request holds, a chain that changed meanwhile, a
namespace about to expire, or a Redis Cluster slot on the move goes to the
scripts, which handle every case; whatever this path took is given back
first. On a cluster, the connections are those of the node that serves the
namespace's slot (every key of a namespace lives in one slot).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import typing as t

from ..records import Acquired
from ..records import CommitBatch
from ..records import ConversationRecord
from . import codec
from .arguments import commit_call
from .arguments import unlock_call
from .chains import Chains
from .connections import lend
from .connections import Lent
from .keys import EARLIEST
from .keys import HEADER
from .keys import HOLD
from .keys import KEEP
from .keys import NamespaceKeys
from .scripts import Reply
from .scripts import Scripts


@dataclasses.dataclass
class Held:
    """A stack this path locked, watches and loaded, until its request
    commits or unlocks it.

    :param keys: the namespace's keys.
    :param root_id: the stack's root.
    :param ids: the loaded chain's ids, root first.
    :param connection: the connection the ``WATCH`` lives on.
    :param earliest: the header's lower bound of the namespace's expiries.
    :param keep: the header's time the namespace's keys are kept until.
    :param count: how many conversations the namespace held.
    """

    keys: NamespaceKeys
    root_id: str
    ids: tuple[str, ...]
    connection: Lent
    earliest: float | None
    keep: float | None
    count: int


#: The header fields the path reads, in this order.
HEAD = (EARLIEST, KEEP, HOLD)


def _number(value: t.Any) -> float | None:
    return None if value is None else float(value)


def _flat(reply: t.Any) -> list[t.Any]:
    # HGETALL: a flat list over RESP2, a map over RESP3.
    if isinstance(reply, dict):
        return [v for pair in reply.items() for v in pair]
    return list(reply)


class WatchedPath:
    """The plain-command path of one client.

    :param client: a :class:`redis.Redis` client, whose connection pool
        lends the connections, or a :class:`redis.cluster.RedisCluster`,
        whose node serving a namespace's slot does.
    :param scripts: the scripts registered with the client.
    :param lease_ms: the lease of a lock, in milliseconds.
    :param listing_limit: read a namespace's whole metadata, for the
        listing, while it holds at most this many conversations.
    """

    def __init__(self, client: t.Any, scripts: Scripts, lease_ms: int, listing_limit: int) -> None:
        self._client = client
        self._scripts = scripts
        self._lease_ms = lease_ms
        self._listing_limit = listing_limit
        self.chains = Chains()
        # Namespaces seen holding more than listing_limit conversations:
        # their metadata is read field by field. A hint only: forgetting
        # it costs one larger read.
        self._large: set[str] = set()
        # The stacks held between acquire and commit, by owner token: each
        # token belongs to one request.
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()

    # -- acquire ---------------------------------------------------------------

    def acquire(
        self, keys: NamespaceKeys, namespace: str, cid: str, token: str, now: float
    ) -> Acquired | None:
        """Lock, watch and load the stack of ``cid`` in one round trip, or
        ``None`` when the scripts must do it (nothing is left held then).

        :param keys: the namespace's keys.
        :param namespace: the namespace.
        :param cid: the conversation id.
        :param token: the owner token to lock with.
        :param now: the store's clock.
        """
        ids = self.chains.get(namespace, cid)
        if ids is None:
            return None
        lock = keys.lock(ids[0])
        whole = self._listing_limit >= 0 and namespace not in self._large
        commands: list[tuple[t.Any, ...]] = [
            ("SET", lock, token, "NX", "PX", self._lease_ms),
            ("WATCH", lock, keys.meta),
            ("HGETALL", keys.meta) if whole else ("HMGET", keys.meta, *HEAD, *ids),
            ("HMGET", keys.data, *ids),
        ]
        if not whole:
            commands.append(("HLEN", keys.data))
        connection = lend(self._client, keys.meta)
        # A cluster moving the slot answers before anything is locked.
        replies = connection.send_or_give_back(commands)
        if replies is None:
            return None
        locked, _, metas, datas, *rest = replies
        listing = None
        if whole:
            flat = _flat(metas)
            by_field = {codec.text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
            metas = [by_field.get(field) for field in (*HEAD, *ids)]
            count = sum(1 for field in by_field if not field.startswith(HEADER))
            if count > self._listing_limit:
                if len(self._large) >= self.chains.limit:
                    self._large.clear()
                self._large.add(namespace)
            else:
                listing = functools.partial(codec.listing, flat)
        elif (count := int(rest[0])) <= self._listing_limit:
            # Small again: the next lock brings the listing.
            self._large.discard(namespace)
        head = metas[: len(HEAD)]
        keep = _number(head[1])
        chain = codec.checked_chain(namespace, ids, metas[len(HEAD) :], datas, now)
        # A namespace whose keys may expire within the lease needs its keys
        # held (see acquire.lua's hold), and a held one its commit's care.
        usable = (
            locked is not None
            and chain is not None
            and head[2] is None
            and keep is not None
            and keep > now + self._lease_ms / 1000
        )
        if not usable:
            if chain is None:
                # Gone or changed: the scripts decide until they load it.
                self.chains.forget(namespace, cid)
            try:
                if locked is not None:
                    connection.script(
                        self._scripts.unlock,
                        unlock_call(keys, {ids[0]: token}),
                        ["UNWATCH"],
                    )
                else:
                    connection.send([("UNWATCH",)])
            except BaseException:
                connection.release(broken=True)
                raise
            connection.release()
            return None
        assert chain is not None
        held = Held(keys, ids[0], ids, connection, _number(head[0]), keep, count)
        with self._lock:
            self._held[token] = held
        return Acquired(ids[0], token, chain, listing, held.count)

    def read(
        self, keys: NamespaceKeys, namespace: str, cid: str, now: float
    ) -> list[ConversationRecord] | None:
        """The chain of ``cid`` read without a lock, in one round trip of two
        ``HMGET``, or ``None`` when the scripts must read it.

        :param keys: the namespace's keys.
        :param namespace: the namespace.
        :param cid: the conversation id.
        :param now: the store's clock.
        """
        ids = self.chains.get(namespace, cid)
        if ids is None:
            return None
        connection = lend(self._client, keys.meta)
        replies = connection.send_or_give_back(
            [("HMGET", keys.meta, *ids), ("HMGET", keys.data, *ids)]
        )
        if replies is None:
            return None
        connection.release()
        metas, datas = replies
        chain = codec.checked_chain(namespace, ids, metas, datas, now)
        if chain is None:
            self.chains.forget(namespace, cid)
        return chain

    # -- commit and unlock -----------------------------------------------------

    def _take(self, tokens: t.Iterable[str]) -> list[Held]:
        with self._lock:
            return [self._held.pop(token) for token in tokens if token in self._held]

    def commit(self, namespace: str, batch: CommitBatch, now: float) -> t.Any:
        """Apply ``batch`` on the connection of a stack this path holds:
        the script's reply (``commit.lua``), or ``None`` when it holds none
        of the batch's stacks, or when a cluster moved the slot since the
        load (a redirected transaction or script wrote nothing: the
        scripts, through the client, follow the cluster).

        :param namespace: the namespace.
        :param batch: the changes; its unlocks name the held stacks.
        :param now: the store's clock.
        """
        held = self._take(batch.unlock.values())
        if not held:
            return None
        for other in held[1:]:
            # A request holding two stacks: the script releases both.
            self._give_back(other)
        first = held[0]
        connection = first.connection
        rv = connection.attempt(self._apply, first, namespace, batch, now)
        if rv is not None:
            connection.release()
        return rv

    def _apply(self, held: Held, namespace: str, batch: CommitBatch, now: float) -> t.Any:
        """The transaction of a batch that only renews the loaded chain, else
        (or if something changed since the load) ``commit.lua``, on the held
        connection: the reply.
        """
        before = ["UNWATCH"]
        if self._renews_only(held, batch, now):
            if held.connection.send(self._transaction(held, batch))[-1] is not None:
                return [Reply.COMMITTED]
            # Something changed since the load; EXEC dropped the WATCH.
            before = []
        return held.connection.script(
            self._scripts.commit,
            commit_call(held.keys, namespace, batch, now),
            before,
        )

    def _renews_only(self, held: Held, batch: CommitBatch, now: float) -> bool:
        """Whether ``commit.lua``'s shortcut would write ``batch`` as it is:
        it only saves records of the loaded chain (so the count stays),
        nothing of the namespace can have expired, everything fits, and
        the keys are kept past every save's expiry.
        """
        if batch.deletes or batch.clear or not batch.saves:
            return False
        if batch.unlock.keys() != {held.root_id} or not batch.held <= {held.root_id}:
            return False
        if held.earliest is None or held.earliest <= now or held.count > batch.max_count:
            return False
        ids = held.ids
        if any(r.id not in ids for r in batch.saves):
            return False
        return held.keep is not None and max(r.expires_at for r in batch.saves) <= held.keep

    def _transaction(self, held: Held, batch: CommitBatch) -> list[tuple[t.Any, ...]]:
        metas: list[str] = []
        datas: list[str] = []
        for r in batch.saves:
            metas += (r.id, codec.pack(r))
            datas += (r.id, r.data)
        assert held.earliest is not None
        low = min(r.expires_at for r in batch.saves)
        if low < held.earliest:
            # Renewing moves expiries later; a bound only ever moves down.
            metas += (EARLIEST, repr(low))
        return [
            ("MULTI",),
            ("HSET", held.keys.meta, *metas),
            ("HSET", held.keys.data, *datas),
            ("DEL", held.keys.lock(held.root_id)),
            ("EXEC",),
        ]

    def unlock(self, namespace: str, locks: dict[str, str]) -> dict[str, str]:
        """Release the locks of ``locks`` this path holds, each on its own
        connection; the others are returned, for the scripts, and so is a
        lock whose slot a cluster moved since the load.

        :param namespace: the namespace.
        :param locks: ``root_id -> token``.
        """
        rest = dict(locks)
        for held in self._take(locks.values()):
            connection = held.connection
            call = unlock_call(held.keys, {held.root_id: locks[held.root_id]})
            released = connection.attempt(
                connection.script, self._scripts.unlock, call, ["UNWATCH"]
            )
            if released is None:
                continue
            connection.release()
            del rest[held.root_id]
        return rest

    def _give_back(self, held: Held) -> None:
        try:
            held.connection.send([("UNWATCH",)])
        except BaseException:
            held.connection.release(broken=True)
            raise
        held.connection.release()
