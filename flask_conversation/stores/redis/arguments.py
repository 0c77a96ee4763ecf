"""The ``KEYS`` and ``ARGV`` of the script calls that both of
:class:`~flask_conversation.stores.RedisStore`'s paths make: the scripts
through the client, and the plain-command path (:mod:`.watched`) when it
hands a request over to them on the connection it holds.
"""

from __future__ import annotations

import typing as t

from ..records import CommitBatch
from . import codec
from .keys import NamespaceKeys

#: A script call's keys and arguments.
Call = tuple[list[str], list[t.Any]]


def commit_call(keys: NamespaceKeys, namespace: str, batch: CommitBatch, now: float) -> Call:
    """What ``commit.lua`` is called with for ``batch`` (see its header).

    :param keys: the namespace's keys.
    :param namespace: the namespace.
    :param batch: the changes.
    :param now: the store's clock.
    """
    saves = batch.saves
    expiries = [r.expires_at for r in saves]
    args: list[t.Any] = [
        repr(float(now)),
        namespace,
        batch.max_count,
        repr(min(expiries)) if saves else "",
        repr(max(expiries)) if saves else "",
        "1" if batch.clear else "",
        keys.locks,
        len(batch.keep_roots),
        *batch.keep_roots,
        len(batch.held),
        *batch.held,
        len(saves),
    ]
    for r in saves:
        args += (r.id, codec.pack(r))
    for r in saves:
        args += (r.id, r.data)
    args.append(len(batch.deletes))
    for cid, reason in batch.deletes.items():
        args += (cid, reason or "")
    args.append(len(batch.unlock))
    for pair in batch.unlock.items():
        args += pair
    locks = [keys.lock(root_id) for root_id in batch.unlock]
    return [keys.meta, keys.data, keys.registry, *locks], args


def unlock_call(keys: NamespaceKeys, locks: t.Mapping[str, str]) -> Call:
    """What ``unlock.lua`` is called with to release ``locks``.

    :param keys: the namespace's keys.
    :param locks: ``root_id -> token``.
    """
    return [keys.lock(root_id) for root_id in locks], list(locks.values())
