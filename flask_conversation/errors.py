"""The exceptions raised by Flask-Conversation.

Every error derives from :class:`ConversationError`. The ones a client can
cause (an unknown cid, a busy conversation, a missing conversation, a store
outage, a limit reached) are also :class:`~werkzeug.exceptions.HTTPException` subclasses, so an
application that registers no handler answers with a clean error page instead
of a 500. The one exception is :class:`NoCidKeyError`, a plain
:exc:`KeyError` for a missing key, whose message says why it may be missing.
"""

from __future__ import annotations

from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import Conflict
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import ServiceUnavailable


class ConversationError(Exception):
    """Base class of every error raised by Flask-Conversation."""


class ConversationStateError(ConversationError):
    """A lifecycle method was called in a state that does not allow it:
    :meth:`~flask_conversation.Conversation.begin` while a long-running
    conversation is active (without ``join`` or ``nested``), or
    :meth:`~flask_conversation.Conversation.end` while the conversation is
    temporary.
    """


class ConversationIdInUse(ConversationError):
    """``begin(id=...)`` named a conversation that is already live in this
    namespace, and ``join`` was not given.

    :param cid: the conversation id that is taken.
    """

    def __init__(self, cid: str) -> None:
        super().__init__(
            f"The conversation id {cid!r} is already in use; pass join=True to switch to it."
        )
        self.cid = cid


class ContextNotActive(ConversationError, RuntimeError):
    """The conversation was used outside of a request."""

    def __init__(self) -> None:
        super().__init__(
            "Working outside of a request: the conversation scope is only"
            " active while a request is handled. In a shell, a test or a CLI"
            " command, push one first: 'with app.test_request_context(): ...'."
        )


class NoSecretKey(ConversationError, RuntimeError):
    """A conversation was begun in an application without a secret key.
    The namespace token that ties a browser to its conversations is signed
    with that key, whatever the store. A :exc:`RuntimeError`, like Flask's
    own error for a session without a key.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        super().__init__(
            "Cannot begin a conversation: the namespace token that ties this"
            " browser to its conversations is signed with the application's"
            " secret key, and none is set. Set one before the first request, e.g."
            ' app.config["SECRET_KEY"] = os.environ["SECRET_KEY"], with a value'
            " from: python -c 'import secrets; print(secrets.token_hex())'."
            " (Or give the extension a namespace_loader.)"
        )


#: What a request without a cid usually forgot, for the messages that say so.
MISSING_CID_CAUSES = (
    "a form without {{ conversation_field() }}, or a link or redirect built"
    " with url_for() instead of url_for_cid()"
)


class NoCidKeyError(KeyError):
    """A key missing from a temporary conversation, in a request that named
    no cid: usually the cid was not passed on, so the request did not find
    the conversation that holds the key. ``args[0]`` is the key, as for
    every :exc:`KeyError`; the message adds the hint. Not a
    :exc:`ConversationError`: handlers for those should not catch a
    missing key.

    :param key: the key that is missing.

    .. versionadded:: 0.1
    """

    def __init__(self, key: object) -> None:
        super().__init__(key)

    def __str__(self) -> str:
        return (
            f"{self.args[0]!r}. This request named no cid, so the conversation"
            " is a new temporary one. The usual causes: "
            f"{MISSING_CID_CAUSES}."
        )


class NonexistentConversation(ConversationError, NotFound):
    """The request named a cid that is not a live conversation of its
    namespace: it never existed, it ended, it expired or was evicted, it is
    malformed, or it belongs to somebody else. Answers with 404.

    :param cid: the cid that the request named.
    """

    description = "The conversation this page belongs to has ended or expired. Please start again."

    def __init__(self, cid: str | None = None) -> None:
        super().__init__()
        self.cid = cid


class BusyConversation(ConversationError, ServiceUnavailable):
    """Another request held the conversation's stack for longer than
    ``CONVERSATION_LOCK_TIMEOUT``. Answers with 503 and ``Retry-After``.

    :param retry_after: seconds the client should wait before retrying.
    """

    description = "This conversation is busy with another request. Please try again in a moment."

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after=retry_after)


class NoConversation(ConversationError, BadRequest):
    """A view that requires a long-running conversation was requested
    without one. Answers with 400.
    """

    description = "This page can only be used within a conversation."


class ConversationStoreError(ConversationError, ServiceUnavailable):
    """The conversation store failed or could not be reached. Nothing was
    written. Answers with 503 and ``Retry-After``.

    :param message: what went wrong, for the logs.
    :param retry_after: seconds the client should wait before retrying.
    """

    description = "The conversation store is unavailable. Please try again in a moment."

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(retry_after=retry_after)
        self.message = message

    def __str__(self) -> str:
        if self.message:
            return f"{self.code} {self.name}: {self.message}"
        return super().__str__()


class ConversationTooLarge(ConversationError, RequestEntityTooLarge):
    """A conversation's data grew past ``CONVERSATION_MAX_SIZE``. Answers
    with 413; nothing of the request was written.

    :param message: what is too large; it names the largest key.
    :param key: the largest key of the conversation.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key

    def __str__(self) -> str:
        return str(self.description)


class ConversationLimitReached(ConversationError, Conflict):
    """A begin would pass a limit the client drives: a nested conversation
    deeper than ``CONVERSATION_MAX_DEPTH``, or one stack that alone would
    hold more than ``CONVERSATION_MAX_COUNT`` conversations. Answers with
    409; nothing of the request is written.

    :param message: which limit was reached, with its value.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.description)


class NoNamespace(ConversationError, Forbidden):
    """A conversation was begun in a request for which the application's
    ``namespace_loader`` returned no namespace: the application does not
    know who is asking, so it has nowhere to keep a conversation for them.
    Answers with 403.

    .. versionadded:: 0.1
    """

    description = "This request cannot keep a conversation: it does not say who is asking."
