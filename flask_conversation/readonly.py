"""The conversation of a read-only request
(:func:`~flask_conversation.conversation_readonly`): read without its
stack's lock, so nothing of it may change.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

from .config import Timeout
from .conversation import Conversation
from .errors import ConversationStateError


class ReadOnlyConversation(Conversation):
    """The conversation of a read-only request
    (:func:`~flask_conversation.conversation_readonly`): it reads like any
    other, and every change raises
    :exc:`~flask_conversation.ConversationStateError`. A value changed in
    place (``conversation["cart"].append(x)``) is simply never written.

    .. versionadded:: 0.1
    """

    def _refuse(self) -> t.NoReturn:
        raise ConversationStateError(
            "Cannot change the conversation in a read-only request"
            " (@conversation_readonly): it is read without its lock, and"
            " nothing of it is written back."
        )

    @property
    def description(self) -> str | None:
        """See :attr:`Conversation.description`; read-only here."""
        return super().description

    @description.setter
    def description(self, value: str | None) -> None:
        self._refuse()

    @property
    def timeout(self) -> timedelta:
        """See :attr:`Conversation.timeout`; read-only here."""
        return super().timeout

    @timeout.setter
    def timeout(self, value: Timeout) -> None:
        self._refuse()

    def reset(self) -> None:
        self._refuse()

    def __setitem__(self, key: str, value: t.Any) -> None:
        self._refuse()

    def __delitem__(self, key: str) -> None:
        self._refuse()

    def pop(self, key: str, default: t.Any = None) -> t.Any:
        self._refuse()

    def popitem(self) -> tuple[str, t.Any]:
        self._refuse()

    def clear(self) -> None:
        self._refuse()
