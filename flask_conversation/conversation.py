"""The conversation object: a mapping whose reads fall through its
ancestors, like :class:`collections.ChainMap`, and whose writes stay its own.

It does no I/O. :meth:`~Conversation.begin` and :meth:`~Conversation.end` hand
the decision to the conversation's owner (the request's state, see
:class:`ConversationOwner`), which records what changed and commits it once,
at the end of the request. The owner changes a conversation only through the
methods of its owner interface (:meth:`~Conversation.promote`,
:meth:`~Conversation.detach`), never through its attributes.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from collections.abc import MutableMapping
from datetime import timedelta

from flask import session

from .config import Settings
from .config import Timeout
from .config import to_seconds
from .errors import NoCidKeyError

_MISSING: t.Any = object()


class ConversationOwner(t.Protocol):
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
        conv: Conversation,
        *,
        join: bool,
        nested: bool,
        id: str | None,
        description: str | None,
        timeout: float | None,
    ) -> bool:
        """Decide :meth:`Conversation.begin` for ``conv``."""

    def end(self, conv: Conversation, *, root: bool, before_redirect: bool) -> None:
        """Decide :meth:`Conversation.end` for ``conv``."""


class Conversation(MutableMapping[str, t.Any]):
    """The state of one conversation. Use it through the
    :data:`~flask_conversation.conversation` proxy, like :data:`flask.session`.

    A child conversation reads its ancestors' keys as if they were its own
    and shadows them when it writes; ``len``, iteration and ``dict()`` include
    inherited keys, while ``del`` and :meth:`pop` act on its own keys only.
    Keys listed in ``CONVERSATION_EXCLUDE`` are read from and written to
    :data:`flask.session` instead.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        state: ConversationOwner,
        data: dict[str, t.Any],
        *,
        timeout: float,
        id: str | None = None,
        parent: Conversation | None = None,
        description: str | None = None,
        created_at: float | None = None,
    ) -> None:
        self._state = state
        self._data = data
        self._id = id
        self._parent = parent
        self._description = description
        self._timeout = timeout
        self._created_at = created_at

    # -- identity --------------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The conversation id, ``None`` while the conversation is temporary."""
        return self._id

    @property
    def long_running(self) -> bool:
        """Whether the conversation is kept across requests."""
        return self._id is not None

    @property
    def nested(self) -> bool:
        """Whether the conversation has a parent."""
        return self._parent is not None

    @property
    def parent(self) -> Conversation | None:
        """The parent conversation, or ``None``."""
        return self._parent

    @property
    def root(self) -> Conversation:
        """The root of the stack: the conversation itself if not nested."""
        conv = self
        while conv._parent is not None:
            conv = conv._parent
        return conv

    @property
    def stack(self) -> list[Conversation]:
        """The conversations from the root down to this one, for breadcrumbs."""
        chain = [self]
        while chain[-1]._parent is not None:
            chain.append(chain[-1]._parent)
        chain.reverse()
        return chain

    @property
    def depth(self) -> int:
        """``0`` for a root, the parent's depth + 1 for a child."""
        return len(self.stack) - 1

    @property
    def description(self) -> str | None:
        """Optional text shown in listings such as
        :meth:`~flask_conversation.ConversationScope.conversations`.
        """
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = value

    @property
    def timeout(self) -> timedelta:
        """The inactivity timeout of this conversation. Set it to a
        :class:`~datetime.timedelta` or a number of seconds.
        """
        return timedelta(seconds=self._timeout)

    @timeout.setter
    def timeout(self, value: Timeout) -> None:
        self._timeout = to_seconds(value)

    # -- the owner's interface --------------------------------------------------

    @property
    def own_data(self) -> dict[str, t.Any]:
        """The conversation's own keys and values, without its ancestors':
        what its owner stores for it. Views use the mapping interface.
        """
        return self._data

    @property
    def timeout_seconds(self) -> float:
        """The inactivity timeout in seconds, as stored."""
        return self._timeout

    @property
    def created_at(self) -> float | None:
        """When it became long-running, seconds since the epoch; ``None``
        while it is temporary and never was.
        """
        return self._created_at

    def promote(
        self,
        id: str,
        created_at: float,
        *,
        timeout: float | None = None,
        description: str | None = None,
    ) -> None:
        """Make this conversation the long-running root ``id``. Called by
        its owner when :meth:`begin` decided so.

        :param id: the new id.
        :param created_at: when it began, seconds since the epoch.
        :param timeout: a new timeout in seconds, if given.
        :param description: a new description, if given.
        """
        if timeout is not None:
            self._timeout = timeout
        if description is not None:
            self._description = description
        self._parent = None
        self._id = id
        self._created_at = created_at

    def detach(self) -> None:
        """Make this conversation temporary again: it ended, or every
        conversation of the namespace was ended. Its data stays readable.
        Called by its owner.
        """
        self._id = None

    # -- lifecycle -------------------------------------------------------------

    def begin(
        self,
        join: bool = False,
        nested: bool = False,
        id: str | None = None,
        description: str | None = None,
        timeout: Timeout | None = None,
    ) -> bool:
        """Make this conversation long-running, or start a nested one.

        :param join: if a long-running conversation is active, keep it
            instead of raising; with ``id``, switch to that conversation if
            it exists.
        :param nested: if a long-running conversation is active, push a
            child conversation onto its stack.
        :param id: a natural id matching ``[A-Za-z0-9_.:-]{1,64}`` instead of
            a generated one.
        :param description: text shown in listings.
        :param timeout: inactivity timeout, a :class:`~datetime.timedelta` or
            seconds; by default the parent's, or ``CONVERSATION_TIMEOUT``.
        :return: ``True`` if a new long-running conversation began.
        :raise ConversationStateError: already long-running, and neither
            ``join`` nor ``nested`` was given.
        :raise ConversationIdInUse: ``id`` is live and ``join`` was not given.
        :raise ValueError: ``id`` is malformed.
        :raise ConversationError: the stack would be deeper than
            ``CONVERSATION_MAX_DEPTH``.
        """
        return self._state.begin(
            self,
            join=join,
            nested=nested,
            id=id,
            description=description,
            timeout=None if timeout is None else to_seconds(timeout),
        )

    def end(self, root: bool = False, before_redirect: bool = False) -> None:
        """End this long-running conversation (or, with ``root``, its whole
        stack). Its data stays readable for the rest of the request.

        :param root: end the root of the stack, so the whole stack.
        :param before_redirect: destroy it at the end of this request even if
            the response redirects with its cid, instead of keeping it for one
            more request.
        :raise ConversationStateError: the conversation is temporary.
        """
        self._state.end(self, root=root, before_redirect=before_redirect)

    def reset(self) -> None:
        """Replace the data with a fresh copy of
        ``CONVERSATION_INITIAL_STATE``.
        """
        self._data = self._state.initial_state()

    # -- mapping -----------------------------------------------------------------

    def _excluded(self, key: str) -> bool:
        return key in self._state.settings.exclude

    def __getitem__(self, key: str) -> t.Any:
        if self._excluded(key):
            return session[key]
        conv: Conversation | None = self
        while conv is not None:
            if key in conv._data:
                return conv._data[key]
            conv = conv._parent
        if self._id is None and self._created_at is None and not self._state.named_cid:
            # Never long-running, in a request without a cid: the key most
            # likely lives in a conversation the cid was meant to name.
            raise NoCidKeyError(key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: t.Any) -> None:
        if self._excluded(key):
            session[key] = value
        else:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        if self._excluded(key):
            del session[key]
        elif key in self._data:
            del self._data[key]
        else:
            raise KeyError(f"Key not found in the conversation's own data: {key!r}")

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and self._excluded(key):
            return key in session
        return any(key in conv._data for conv in self.stack)

    def _merged(self) -> dict[str, None]:
        keys: dict[str, None] = {}
        for conv in self.stack:
            keys.update(dict.fromkeys(conv._data))
        return keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged() if self._parent is not None else list(self._data))

    def __len__(self) -> int:
        return len(self._merged()) if self._parent is not None else len(self._data)

    def pop(self, key: str, default: t.Any = _MISSING) -> t.Any:
        """Remove ``key`` from this conversation's own data and return its
        value, like :meth:`collections.ChainMap.pop`.

        :param key: the key to remove.
        :param default: returned if the key is not in the own data;
            without it, :exc:`KeyError` is raised.
        """
        if self._excluded(key):
            return session.pop(key) if default is _MISSING else session.pop(key, default)
        if key in self._data:
            return self._data.pop(key)
        if default is _MISSING:
            raise KeyError(f"Key not found in the conversation's own data: {key!r}")
        return default

    def popitem(self) -> tuple[str, t.Any]:
        """Remove and return a pair from the own data.

        :raise KeyError: the own data is empty.
        """
        try:
            return self._data.popitem()
        except KeyError:
            raise KeyError("The conversation's own data is empty.") from None

    def clear(self) -> None:
        """Remove every key of the own data (inherited keys stay visible)."""
        self._data.clear()

    def __repr__(self) -> str:
        kind = f"id={self._id!r}" if self._id is not None else "temporary"
        return f"<{type(self).__name__} {kind} {dict(self)!r}>"
