"""What a request writes for a conversation: the store's record of it, as
it is at commit.
"""

from __future__ import annotations

import typing as t

from .conversation import Conversation
from .stores.records import ConversationRecord


def record_of(conv: Conversation, namespace: str, now: float, data: str) -> ConversationRecord:
    """The record of a long-running conversation, used now.

    :param conv: the conversation.
    :param namespace: the namespace it lives in.
    :param now: the current time, its last access.
    :param data: its own data, serialized.
    """
    return ConversationRecord(
        id=t.cast(str, conv.id),
        namespace=namespace,
        parent_id=conv.parent.id if conv.parent is not None else None,
        root_id=t.cast(str, conv.root.id),
        depth=conv.depth,
        data=data,
        description=conv.description,
        timeout=conv.timeout_seconds,
        created_at=conv.created_at or now,
        last_access=now,
    )


def survivor_of(
    cid: str, conv: Conversation, namespace: str, now: float, data: str
) -> ConversationRecord:
    """The record that keeps a conversation ended in this request for the
    one request after its redirect: a root, whatever its depth was, marked
    ended.

    :param cid: the id it had.
    :param conv: the conversation holding its data.
    :param namespace: the namespace it lived in.
    :param now: the current time.
    :param data: its data with its ancestors', serialized.
    """
    return ConversationRecord(
        id=cid,
        namespace=namespace,
        parent_id=None,
        root_id=cid,
        depth=0,
        data=data,
        description=conv.description,
        timeout=conv.timeout_seconds,
        created_at=conv.created_at or now,
        last_access=now,
        ended=True,
    )
