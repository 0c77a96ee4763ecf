"""A conversation's owner: what a conversation asks of the request state
that holds it. The owner decides :meth:`~.Conversation.begin` and
:meth:`~.Conversation.end`, records what changed and commits it once, at
the end of the request.

The protocol is generic in the conversation it is handed, so that it needs
nothing of :mod:`.conversation`, which imports it: a conversation holds an
owner of conversations like itself (``ConversationOwner[Conversation]``).
"""

from __future__ import annotations

import typing as t

from .config import Settings

#: The conversation an owner is handed.
Conv = t.TypeVar("Conv", contravariant=True)


class ConversationOwner(t.Protocol[Conv]):
    """What a conversation asks of the request state that holds it."""

    #: The request's settings; the conversation reads ``exclude``.
    settings: Settings

    #: Whether the request named a cid: a key missing from a temporary
    #: conversation of a request that named none gets a hint.
    named_cid: bool

    def initial_state(self) -> dict[str, t.Any]:
        """A fresh copy of ``CONVERSATION_INITIAL_STATE``."""

    def begin(
        self,
        conv: Conv,
        *,
        join: bool,
        nested: bool,
        id: str | None,
        description: str | None,
        timeout: float | None,
    ) -> bool:
        """Decide :meth:`~.Conversation.begin` for ``conv``."""

    def end(self, conv: Conv, *, root: bool, before_redirect: bool) -> None:
        """Decide :meth:`~.Conversation.end` for ``conv``."""
