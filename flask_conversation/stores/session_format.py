"""How :class:`~.session.SessionStore` writes a record into the session:
one string each, the record's compact form without its data, in JSON,
followed by the data's text as the store's serializer wrote it.

One string per record, rather than the compact form as a mapping, because
Flask's session serializer walks every value of the session in Python to
tag it, on every request that reads or writes it; its JSON encoding and
decoding, in C, cost a fraction of that walk. The data's text is kept as
it is: loading it back gives exactly what the serializer wrote, tags
included.
"""

from __future__ import annotations

import json
import typing as t

from .records import compact_expiry
from .records import ConversationRecord
from .records import Keys

#: Writes the compact form as the session's JSON would hold it (names and
#: non-ASCII text as they are; the session's own JSON escapes them).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()
#: What a malformed stored value raises while it is read.
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)
#: The number types a record's times hold.
_NUMBERS = frozenset({int, float})


def encode(record: ConversationRecord) -> str:
    """The session's string for ``record``; :func:`decode` reverses it.

    :param record: the record.
    """
    meta = record.to_dict()
    data: str = meta.pop(Keys.DATA)
    return _ENCODER.encode(meta) + data


def meta_of(text: t.Any) -> dict[str, t.Any] | None:
    """The compact form of a stored string, without its data, and where
    the data begins under :attr:`~.records.Keys.DATA`; ``None`` for a value
    that is not one (a session changed by other code, or by hand).

    :param text: the stored value.
    """
    try:
        meta, end = _DECODER.raw_decode(text)
    except _MALFORMED:
        return None
    # Checked here, so that every reader of the record can rely on them.
    if (
        type(meta) is not dict
        or type(meta.get(Keys.LAST_ACCESS)) not in _NUMBERS
        or type(meta.get(Keys.TIMEOUT)) not in _NUMBERS
    ):
        return None
    meta[Keys.DATA] = end
    return meta


def decode(namespace: str, cid: str, text: t.Any) -> ConversationRecord | None:
    """The record :func:`encode` wrote, or ``None`` for a malformed value.

    :param namespace: the namespace it was found in.
    :param cid: the id it was found under.
    :param text: the stored value.
    """
    meta = meta_of(text)
    if meta is None:
        return None
    meta[Keys.DATA] = text[meta[Keys.DATA] :]
    try:
        record = ConversationRecord.from_dict(namespace, cid, meta)
    except _MALFORMED:
        return None
    return record if _well_typed(record) else None


def _well_typed(record: ConversationRecord) -> bool:
    # A record whose fields have other types would fail later, far from
    # where it was read: the request would answer 500 instead of finding
    # no conversation.
    return (
        type(record.timeout) in _NUMBERS
        and type(record.created_at) in _NUMBERS
        and type(record.last_access) in _NUMBERS
        and type(record.depth) is int
        and type(record.root_id) is str
        and (record.parent_id is None or type(record.parent_id) is str)
        and (record.description is None or type(record.description) is str)
    )


def expiry_of(text: t.Any) -> float:
    """When a stored record expires; ``-inf`` for a malformed value, which
    the commit rules then drop with the expired records.

    :param text: the stored value.
    """
    meta = meta_of(text)
    return float("-inf") if meta is None else compact_expiry(meta)
