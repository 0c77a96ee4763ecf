"""The metadata text :class:`~flask_conversation.stores.RedisStore` keeps
for each conversation, apart from its data, so that the scripts read what
the rules need without decoding any data::

    <expires> <ended 0|1> <root> <parent or ~> <last access> <timeout>
    <created> <depth> <size>[ <description>]

(one line, each part separated by one space).

What the scripts read comes first. Times are Python's shortest exact text
of a float, which Lua reads back to the same number, so the scripts compare
the very expiry :func:`~flask_conversation.stores.records.expiry` computed;
cids never contain a space or ``~``. The description comes last, so that it
may contain anything.
"""

from __future__ import annotations

import typing as t

from ..records import ConversationInfo
from ..records import ConversationRecord
from ..records import expiry
from ..records import utc
from .keys import HEADER

#: The parent of a root, in the metadata.
NO_PARENT = "~"


def text(value: t.Any) -> str:
    """A reply value as text, whether or not the client decodes replies.

    :param value: ``bytes`` or ``str``.
    """
    return value.decode() if isinstance(value, bytes) else str(value)


def size(data: str) -> int:
    """Bytes of serialized data, as the listing reports them.

    :param data: the serialized data.
    """
    return len(data) if data.isascii() else len(data.encode())


def pack(record: ConversationRecord) -> str:
    """The metadata of a record.

    :param record: the record.
    """
    meta = (
        f"{record.expires_at!r} {1 if record.ended else 0} {record.root_id}"
        f" {record.parent_id or NO_PARENT} {record.last_access!r} {record.timeout!r}"
        f" {record.created_at!r} {record.depth} {size(record.data)}"
    )
    if record.description is not None:
        meta = f"{meta} {record.description}"
    return meta


def _fields(meta: str) -> list[str]:
    return meta.split(" ", 9)


def unpack(namespace: str, cid: str, meta: t.Any, data: t.Any) -> ConversationRecord:
    """Rebuild a record from its metadata and data.

    :param namespace: the namespace it was found in.
    :param cid: its id.
    :param meta: its metadata, as the client returned it.
    :param data: its data, as the client returned it.
    """
    f = _fields(text(meta))
    return ConversationRecord(
        id=cid,
        namespace=namespace,
        parent_id=None if f[3] == NO_PARENT else f[3],
        root_id=f[2],
        depth=int(f[7]),
        data=text(data),
        description=f[9] if len(f) > 9 else None,
        timeout=float(f[5]),
        created_at=float(f[6]),
        last_access=float(f[4]),
        ended=f[1] == "1",
    )


def chain(
    namespace: str, metas: t.Sequence[t.Any], pairs: t.Sequence[t.Any]
) -> list[ConversationRecord] | None:
    """The records of a chain as ``acquire.lua`` returns it, or ``None``
    if a record's data is missing.

    :param namespace: the namespace it was found in.
    :param metas: flat cid/metadata pairs holding at least the chain's.
    :param pairs: flat cid/data pairs, root first.
    """
    by_id = {text(metas[i]): metas[i + 1] for i in range(0, len(metas), 2)}
    rv = []
    for i in range(0, len(pairs), 2):
        if pairs[i + 1] is None:
            return None
        cid = text(pairs[i])
        rv.append(unpack(namespace, cid, by_id[cid], pairs[i + 1]))
    return rv


def checked_chain(
    namespace: str,
    ids: t.Sequence[str],
    metas: t.Sequence[t.Any],
    datas: t.Sequence[t.Any],
    now: float,
) -> list[ConversationRecord] | None:
    """The records of the chain ``ids`` from their metadata and data read
    field by field, or ``None`` unless every link is there, live and the
    child of the one before, as ``acquire.lua`` follows a chain.

    :param namespace: the namespace they were read in.
    :param ids: the chain's ids, root first.
    :param metas: their metadata, in the same order.
    :param datas: their data, in the same order.
    :param now: the store's clock.
    """
    rv: list[ConversationRecord] = []
    for cid, meta, data in zip(ids, metas, datas, strict=True):
        if meta is None or data is None:
            return None
        record = unpack(namespace, cid, meta, data)
        if record.expires_at <= now or record.parent_id != (rv[-1].id if rv else None):
            return None
        rv.append(record)
    return rv


def listing(flat: t.Sequence[t.Any], now: float) -> list[ConversationInfo]:
    """The live conversations of a metadata hash, summarized.

    :param flat: the hash as a flat field/value sequence.
    :param now: the current time.
    """
    rv = []
    for i in range(0, len(flat), 2):
        cid = text(flat[i])
        if cid.startswith(HEADER):
            continue
        f = _fields(text(flat[i + 1]))
        last_access = float(f[4])
        expires_at = expiry(last_access, float(f[5]))
        if f[1] == "1" or expires_at <= now:
            continue
        rv.append(
            ConversationInfo(
                id=cid,
                description=f[9] if len(f) > 9 else None,
                parent_id=None if f[3] == NO_PARENT else f[3],
                depth=int(f[7]),
                created_at=utc(float(f[6])),
                last_access=utc(last_access),
                expires_at=utc(expires_at),
                size=int(f[8]),
            )
        )
    return rv


def live_count(flat: t.Sequence[t.Any], now: float) -> int:
    """How many conversations of a metadata hash have not expired.

    :param flat: the hash as a flat field/value sequence.
    :param now: the current time.
    """
    count = 0
    for i in range(0, len(flat), 2):
        if text(flat[i]).startswith(HEADER):
            continue
        f = _fields(text(flat[i + 1]))
        count += expiry(float(f[4]), float(f[5])) > now
    return count
