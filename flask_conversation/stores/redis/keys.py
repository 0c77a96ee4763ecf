"""Where :class:`~flask_conversation.stores.RedisStore` keeps a namespace.

Every key of a namespace carries the same hash tag, so that a namespace
lives in one slot of a Redis Cluster and one script may touch all of them::

    <prefix>{<shard>}:<ns>:m      metadata hash: cid -> metadata (text),
                                  plus the "~" fields of the header
    <prefix>{<shard>}:<ns>:d      data hash: cid -> serialized data
    <prefix>{<shard>}:<ns>:l:<root>  the lock of a stack: the owner's random
                                  token, expiring with the lease
    <prefix>{<shard>}:namespaces  the shard's namespaces (sorted set), each
                                  scored by when its keys expire

``<shard>`` is one of :data:`SHARDS` short tags picked by a hash of the
namespace (:func:`shard_tag`), so that a namespace can be any string
without breaking the tag, and the shard's registry shares its slot.
``<ns>`` is the namespace percent-encoded (:func:`escape`), so that keys of
different namespaces never collide.

The metadata hash holds everything the commit rules and the listing read,
so no script ever reads conversation data; its ``~`` fields (never a cid)
are:

``~e``
    a time no conversation of the namespace expires before, so that a
    commit which only renews or adds conversations can skip the rules;
``~x``
    the time up to which the namespace's keys are kept, which is also its
    score in the registry; moved only when a commit saves past it;
``~h``
    the roots (space-separated) whose locks keep the keys longer than
    ``~x`` (a lease outlasts the conversations), so that the commit that
    releases the last of them gives the keys back their own time.

A stack's lock is a key of its own rather than a field, so that its lease
is Redis's native expiry: a lock whose lease ran out is simply gone, and a
client that watches it (``WATCH``) learns that it was lost.
"""

from __future__ import annotations

import binascii
import dataclasses
import functools

#: How many registries the namespaces are spread over; each lives in the
#: slot of the namespaces it lists.
SHARDS = 1024

#: Metadata fields that start with this are not conversations.
HEADER = "~"
#: The metadata field of the namespace's earliest expiry (a lower bound).
EARLIEST = "~e"
#: The metadata field of the time the namespace's keys are kept until.
KEEP = "~x"
#: The metadata field listing the roots whose locks keep the keys longer
#: than KEEP.
HOLD = "~h"


def shard_tag(namespace: str) -> str:
    """The hash tag content of a namespace's keys: one of :data:`SHARDS`
    short tags, picked by a hash of the namespace, so that any string gives
    a well-formed tag.

    :param namespace: the namespace.
    """
    return f"s{binascii.crc_hqx(namespace.encode(), 0) % SHARDS}"


def escape(namespace: str) -> str:
    """The namespace as it appears in keys: ``%`` and ``:`` percent-encoded,
    so that it never contains the separator that follows it.

    :param namespace: the namespace.
    """
    return namespace.replace("%", "%25").replace(":", "%3A")


@dataclasses.dataclass(frozen=True)
class NamespaceKeys:
    """The keys of one namespace.

    :param base: the start of every key of the namespace, hash tag included.
    :param meta: the metadata hash.
    :param data: the data hash.
    :param registry: the sorted set of the namespaces of its shard.
    :param locks: the start of the key of a stack's lock; the root's id
        follows (:meth:`lock`).
    """

    base: str
    meta: str
    data: str
    registry: str
    locks: str

    def lock(self, root_id: str) -> str:
        """The key of the lock of the stack whose root is ``root_id``.

        :param root_id: the stack's root.
        """
        return f"{self.locks}{root_id}"


@functools.lru_cache(maxsize=4096)
def namespace_keys(prefix: str, namespace: str) -> NamespaceKeys:
    """The keys of ``namespace`` under ``prefix``, remembered for the
    namespaces in use.

    :param prefix: the store's key prefix.
    :param namespace: the namespace.
    """
    tag = f"{prefix}{{{shard_tag(namespace)}}}:"
    base = f"{tag}{escape(namespace)}:"
    return NamespaceKeys(base, f"{base}m", f"{base}d", f"{tag}namespaces", f"{base}l:")


def registry_key(prefix: str, shard: int) -> str:
    """The registry of one shard.

    :param prefix: the store's key prefix.
    :param shard: the shard's number, below :data:`SHARDS`.
    """
    return f"{prefix}{{s{shard}}}:namespaces"
