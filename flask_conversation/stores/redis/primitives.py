"""The primitives of :class:`~flask_conversation.stores.RedisStore` that
take no lock: one record read, written or removed, a namespace listed, the
live namespaces counted, each in one call (a script or a pipelined batch).

They serve the ``flask conversation`` commands, the listing of a namespace
too large to come with its lock, and the composite operations
:class:`~flask_conversation.stores.ConversationStore` builds on them
(moving a namespace, purging). A request that uses a conversation never
calls them: it locks, loads and commits through the store's own methods.
The store turns the errors they raise into
:exc:`~flask_conversation.ConversationStoreError`.
"""

from __future__ import annotations

import typing as t

from ..records import ConversationRecord
from . import codec
from .keys import NamespaceKeys
from .keys import registry_key
from .keys import SHARDS
from .scripts import Scripts


def load(
    scripts: Scripts, keys: NamespaceKeys, namespace: str, cid: str
) -> ConversationRecord | None:
    """One conversation's metadata and data, read together in one script
    call: unlike a transaction, which a Redis Cluster client cannot send
    on while the namespace's slot migrates, a script call follows the slot.

    :param scripts: the store's scripts.
    :param keys: the namespace's keys.
    :param namespace: the namespace to look in.
    :param cid: the conversation id.
    """
    meta, data = scripts.load(keys=[keys.meta, keys.data], args=[cid])
    if meta is None or data is None:
        return None
    return codec.unpack(namespace, cid, meta, data)


def save(scripts: Scripts, keys: NamespaceKeys, record: ConversationRecord, now: float) -> None:
    """Write a record, its metadata and data, in one script call.

    :param scripts: the store's scripts.
    :param keys: the keys of the record's namespace.
    :param record: the record to write.
    :param now: the store's clock.
    """
    scripts.save(
        keys=[keys.meta, keys.data, keys.registry],
        args=[
            repr(float(now)),
            record.namespace,
            record.id,
            codec.pack(record),
            record.data,
        ],
    )


def delete(scripts: Scripts, keys: NamespaceKeys, namespace: str, cid: str) -> None:
    """Remove a record in one script call.

    :param scripts: the store's scripts.
    :param keys: the namespace's keys.
    :param namespace: the namespace of the record.
    :param cid: the conversation id.
    """
    scripts.delete(keys=[keys.meta, keys.data, keys.registry], args=[namespace, cid])


def list_namespace(
    scripts: Scripts, keys: NamespaceKeys, namespace: str
) -> list[ConversationRecord]:
    """Every record of a namespace in one script call.

    :param scripts: the store's scripts.
    :param keys: the namespace's keys.
    :param namespace: the namespace to list.
    """
    metas, datas = scripts.list(keys=[keys.meta, keys.data])
    data = {codec.text(datas[i]): datas[i + 1] for i in range(0, len(datas), 2)}
    rv = []
    for i in range(0, len(metas), 2):
        cid = codec.text(metas[i])
        if cid in data:
            rv.append(codec.unpack(namespace, cid, metas[i + 1], data[cid]))
    return rv


def namespaces(
    client: t.Any, prefix: str, keys: t.Callable[[str], NamespaceKeys], now: float
) -> dict[str, int]:
    """Every namespace with its number of live records, read from the
    shards' registries and the namespaces' metadata in two pipelined
    batches.

    :param client: the store's client.
    :param prefix: the store's key prefix.
    :param keys: the keys of a namespace, as the store names them.
    :param now: the store's clock.
    """
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.zrangebyscore(registry_key(prefix, shard), f"({now!r}", "+inf")
    names = [codec.text(m) for members in pipe.execute() for m in members]
    pipe = client.pipeline(transaction=False)
    for namespace in names:
        pipe.hgetall(keys(namespace).meta)
    rv: dict[str, int] = {}
    for namespace, metas in zip(names, pipe.execute(), strict=True):
        count = codec.live_count([v for pair in metas.items() for v in pair], now)
        if count:
            rv[namespace] = count
    return rv
