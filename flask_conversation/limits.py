"""The limits a client drives when it begins conversations: how deep a
stack may nest, and how many conversations one stack may hold. Reaching
one is the client's doing, so it is a 409
(:exc:`~flask_conversation.ConversationLimitReached`), never a 500.
"""

from __future__ import annotations

import typing as t

from .config import Settings
from .errors import ConversationLimitReached

if t.TYPE_CHECKING:  # pragma: no cover
    from .stores.records import ConversationInfo


def check_child(settings: Settings, depth: int, stack_size: t.Callable[[], int]) -> None:
    """Refuse a new child at ``depth`` past ``CONVERSATION_MAX_DEPTH``, or
    one its stack alone could not hold within ``CONVERSATION_MAX_COUNT``:
    evicting other stacks would not make room, and the stack itself is in
    use.

    :param settings: the request's settings.
    :param depth: the depth the child would have.
    :param stack_size: returns how many live conversations its stack holds
        now; called only when the depth is within the limit.
    :raise ConversationLimitReached: a limit would be passed.
    """
    if depth > settings.max_depth:
        raise ConversationLimitReached(
            f"Cannot nest deeper than CONVERSATION_MAX_DEPTH ({settings.max_depth})."
        )
    if stack_size() + 1 > settings.max_count:
        raise ConversationLimitReached(
            "Cannot begin another conversation: this stack alone holds"
            f" CONVERSATION_MAX_COUNT ({settings.max_count})."
        )


def stack_size(infos: t.Iterable[ConversationInfo], root_id: str) -> int:
    """How many of ``infos`` belong to the stack of ``root_id``, following
    the parent links (siblings count: a user who went back and forth).

    :param infos: the live conversations of a namespace.
    :param root_id: the id of the stack's root.
    """
    parents = {i.id: i.parent_id for i in infos}
    size = 0
    for cid in parents:
        top = cid
        # Bounded, so that damaged parent links cannot loop forever.
        for _ in range(len(parents)):
            parent_id = parents.get(top)
            if parent_id is None:
                break
            top = parent_id
        size += top == root_id
    return size
