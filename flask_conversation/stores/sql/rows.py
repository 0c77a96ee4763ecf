"""From rows to records and back: the columns of ``<prefix>records`` are
the fields of a :class:`~flask_conversation.stores.records.ConversationRecord`,
plus its size and expiry, kept so that listings and the commit rules never
read the data.
"""

from __future__ import annotations

import typing as t

from ..records import ConversationInfo
from ..records import ConversationRecord


def record_params(record: ConversationRecord, key: str) -> dict[str, t.Any]:
    """The bound values that write ``record``.

    :param record: the record.
    :param key: its namespace's key.
    """
    return {
        "namespace": key,
        "id": record.id,
        "root_id": record.root_id,
        "parent_id": record.parent_id,
        "depth": record.depth,
        "data": record.data,
        "size": len(record.data.encode()),
        "description": record.description,
        "timeout": record.timeout,
        "created_at": record.created_at,
        "last_access": record.last_access,
        "expires_at": record.expires_at,
        "ended": record.ended,
        "version": 0,
    }


def to_record(row: t.Any, namespace: str, data: str | None = None) -> ConversationRecord:
    """The record a row holds.

    :param row: a row with the record's columns.
    :param namespace: the namespace the row was read for.
    :param data: the data, for a row read without it.
    """
    return ConversationRecord(
        id=row.id,
        namespace=namespace,
        parent_id=row.parent_id,
        root_id=row.root_id,
        depth=row.depth,
        data=row.data if data is None else data,
        description=row.description,
        timeout=row.timeout,
        created_at=row.created_at,
        last_access=row.last_access,
        ended=bool(row.ended),
    )


def live_chain(
    records: t.Iterable[ConversationRecord], cid: str, now: float
) -> list[ConversationRecord] | None:
    """The records from the root down to ``cid``, found among the records
    of its stack, or ``None`` if a link is missing or expired.

    :param records: the records of the stack.
    :param cid: the conversation id.
    :param now: the store's time.
    """
    by_id = {r.id: r for r in records}
    chain: list[ConversationRecord] = []
    next_id: str | None = cid
    while next_id is not None:
        record = by_id.get(next_id)
        if record is None or record.expires_at <= now or len(chain) > 1024:
            return None
        chain.append(record)
        next_id = record.parent_id
    chain.reverse()
    return chain


def listing(rows: t.Sequence[t.Any], namespace: str) -> t.Callable[[float], list[ConversationInfo]]:
    """The listing of a namespace whose metadata came with a lease: called
    with the current time, the summaries of its live conversations.

    :param rows: the metadata rows of every conversation of the namespace.
    :param namespace: the namespace.
    """
    records = [(to_record(row, namespace, data=""), row.size) for row in rows]

    def at(now: float) -> list[ConversationInfo]:
        return [
            ConversationInfo.from_compact(r.id, r.to_dict(), size)
            for r, size in records
            if not r.ended and r.expires_at > now
        ]

    return at
