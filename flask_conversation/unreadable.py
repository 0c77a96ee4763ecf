"""Stored conversation data that the store's serializer cannot read back:
written with other serializer tags or by another serializer (a deploy
changed them), edited by hand in the backend, or a session record whose
data text is not valid.

Such a conversation cannot be used, and nothing the client sends can
repair it. A request for it is answered like one for an unknown cid (a 404
through the application's error handlers, or
``CONVERSATION_MISSING_REDIRECT``), a warning says which conversation and
why, and the record is left as it is: deleting or writing over it would
lose what a fixed serializer, or a user, could still read. It expires like
any other record.
"""

from __future__ import annotations

import typing as t

from .errors import NonexistentConversation

if t.TYPE_CHECKING:  # pragma: no cover
    from .conversation import Conversation
    from .serialization import Serializer
    from .stores.records import ConversationRecord


class UnreadableData(NonexistentConversation):
    """The data of a stored conversation cannot be read back by the store's
    serializer. A :exc:`~flask_conversation.NonexistentConversation`, so
    that wherever it reaches the client it is the 404 of an unknown cid.

    :param cid: the conversation that was looked up.
    :param record_id: the conversation whose data cannot be read: ``cid``
        or one of its ancestors.
    :param reason: what the serializer raised, or why what it returned is
        not conversation data.
    """

    cid: str

    def __init__(self, cid: str, record_id: str, reason: str) -> None:
        super().__init__(cid)
        self.record_id = record_id
        self.reason = reason

    def __str__(self) -> str:
        return f"conversation {self.record_id!r} cannot be read: {self.reason}"


def load_data(
    serializer: Serializer, record: ConversationRecord, cid: str | None = None
) -> dict[str, t.Any]:
    """The data of ``record``, as ``serializer`` reads it back.

    :param serializer: the store's serializer.
    :param record: a stored record.
    :param cid: the conversation looked up, when ``record`` is one of its
        ancestors; ``record``'s own id by default.
    :raise UnreadableData: the serializer failed, or returned something
        other than a mapping.
    """
    try:
        data = serializer.loads(record.data)
    except Exception as e:
        # Whatever the serializer raises: a custom one has its own errors.
        reason = f"{type(e).__name__}: {e}"
        raise UnreadableData(cid or record.id, record.id, reason) from e
    if not isinstance(data, dict):
        reason = f"the serializer returned {type(data).__name__}, not a dict"
        raise UnreadableData(cid or record.id, record.id, reason)
    return data


def load_chain(
    serializer: Serializer, chain: list[ConversationRecord]
) -> list[tuple[ConversationRecord, dict[str, t.Any]]]:
    """The records of ``chain`` with their data, every one read before any
    is used: a request adopts the whole chain or nothing of it.

    :param serializer: the store's serializer.
    :param chain: records from a root down to the conversation looked up.
    :raise UnreadableData: the data of one of them cannot be read.
    """
    cid = chain[-1].id
    return [(record, load_data(serializer, record, cid)) for record in chain]


class UnreadableLog(t.Protocol):
    """What :func:`resolve` asks of the request's log of store failures
    (:class:`~.failures.StoreFailureLog`).
    """

    def unreadable(self, error: UnreadableData, during: str) -> None:
        """Log ``error``, found while ``during``, once per request."""


class Resolving(t.Protocol):
    """What :func:`resolve` changes of the request's state."""

    @property
    def failures(self) -> UnreadableLog:
        """The request's log of store failures, which logs this one too."""

    #: ids to delete at commit, with the reason
    deletes: dict[str, str | None]
    #: the live conversation the request named
    named_live: str | None
    #: the cid the request named that was not live, until first reported
    missing: str | None


def resolve(
    state: Resolving,
    named: t.Callable[[], Conversation],
    temporary: t.Callable[[], Conversation],
) -> Conversation:
    """Resolve the request's conversation with ``named()``; when the
    conversation the request names cannot be read, go on in
    ``temporary()`` and answer the request, on first use, like one for an
    unknown cid.

    The warning is logged once through the request's
    :class:`~.failures.StoreFailureLog`. Nothing of the record is used or
    consumed, so nothing is written back; its stack's lock, if taken, is
    released at the end of the request like any other.

    :param state: the request's state.
    :param named: resolves the conversation the request names, if any.
    :param temporary: makes a new temporary conversation.
    """
    try:
        return named()
    except UnreadableData as e:
        state.failures.unreadable(e, "resolving the request's conversation")
        # The ended conversation this request would have consumed stays, and
        # the request named no live conversation after all.
        state.deletes.pop(e.cid, None)
        state.named_live = None
        state.missing = e.cid
        return temporary()
