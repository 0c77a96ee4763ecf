"""Nesting a conversation: the new child, refused past the limits of
:mod:`.limits`, counted on its stack as the request sees it.
"""

from __future__ import annotations

import typing as t

from .conversation import Conversation
from .conversation import ConversationOwner
from .errors import ConversationLimitReached
from .limits import check_child
from .listing import NamespaceListing

if t.TYPE_CHECKING:  # pragma: no cover
    from .stores.base import ConversationStore


class NestingOwner(ConversationOwner, t.Protocol):
    """What nesting asks of the request's state."""

    #: The application's store; its clock dates the child.
    store: ConversationStore
    #: The namespace's live conversations, to count the child's stack.
    listing: NamespaceListing
    #: Set when a limit refuses the child: the request commits nothing.
    failed: bool
    #: Set with ``failed``: the client keeps working in the conversation
    #: it named.
    refused: bool


def nest(
    owner: NestingOwner,
    parent: Conversation,
    *,
    id: str,
    description: str | None,
    timeout: float | None,
) -> Conversation:
    """A new child of ``parent``, as ``conversation.begin(nested=True)``
    makes it.

    :param owner: the request's state, the child's owner.
    :param parent: the long-running conversation to nest in.
    :param id: the child's id.
    :param description: its description, if given.
    :param timeout: its timeout in seconds; by default its parent's.
    :raise ConversationLimitReached: the child would pass
        ``CONVERSATION_MAX_DEPTH`` or ``CONVERSATION_MAX_COUNT`` (see
        :func:`~.limits.check_child`).
    """
    root = parent.root
    try:
        limit = owner.settings.max_count
        check_child(owner.settings, parent.depth + 1, lambda: owner.listing.stack_size(root, limit))
    except ConversationLimitReached:
        owner.failed = owner.refused = True
        raise
    return Conversation(
        owner,
        {},
        timeout=parent.timeout_seconds if timeout is None else timeout,
        id=id,
        parent=parent,
        description=description,
        created_at=owner.store.clock(),
    )
