"""Access to the current request's conversation state from anywhere in the
request: :func:`get_state`, :func:`peek_state`, :func:`current_conversation`
and the proxy behind :data:`flask_conversation.conversation`, and the two
lookups of the request hooks.

The state lives on :data:`flask.g`, built on first use from the extension
and the store the application registered in ``app.extensions``.
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import g
from flask import has_request_context
from flask import request
from werkzeug.local import LocalProxy

from .conversation import Conversation
from .errors import ContextNotActive
from .namespaces import Scope
from .state import RequestState

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask
    from flask.ctx import _AppCtxGlobals

    from .config import Settings
    from .stores.base import ConversationStore

#: The key of the request's state on :data:`flask.g`.
STATE_KEY = "_flask_conversation"
#: Set on :data:`flask.g` by a read-only view whose marker the request's
#: first use of the conversation could not see (see :func:`mark_readonly`).
READONLY_KEY = "_flask_conversation_readonly"
#: The attribute :func:`~flask_conversation.conversation_readonly` sets on
#: a view function, so that the request is read-only from its first use of
#: the conversation, also in ``before_request`` functions.
READONLY_VIEW = "_conversation_readonly"


class AppScope(Scope, t.Protocol):
    """The extension as registered in ``app.extensions["conversation"]``."""

    def store_for(self, app: Flask) -> ConversationStore:
        """The store of ``app``."""

    def settings_for(self, app: Flask) -> Settings:
        """The settings of ``app``'s config."""


def app_scope(app: Flask | None = None) -> AppScope:
    """The extension registered on ``app`` (by default the current
    application).

    :param app: the application.
    :raise RuntimeError: the extension is not initialized on ``app``.
    """
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    scope: AppScope | None = app.extensions.get("conversation")
    if scope is None:
        raise RuntimeError(
            "ConversationScope is not initialized on this application:"
            " call ConversationScope(app) or scope.init_app(app)."
        )
    return scope


def get_store(app: Flask | None = None) -> ConversationStore:
    """The store of ``app`` (by default the current application).

    :param app: the application.
    :raise RuntimeError: the extension is not initialized on ``app``.
    """
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app_scope(app).store_for(app)


def _g() -> _AppCtxGlobals:
    # Every use of the conversation and every request's hooks come here:
    # resolving the proxy once is several times cheaper than attribute
    # access through it.
    return g._get_current_object()  # type: ignore[no-any-return]


def get_state() -> RequestState:
    """The current request's :class:`~.state.RequestState`, created on
    first use.

    :raise ContextNotActive: outside of a request.
    """
    try:
        namespace = _g()
    except RuntimeError:
        raise ContextNotActive() from None
    # The state is there only during a request (the teardown hook takes
    # it away), so finding it proves the request context without looking.
    state: RequestState | None = namespace.__dict__.get(STATE_KEY)
    if state is None:
        if not has_request_context():
            raise ContextNotActive()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        scope = app_scope(app)
        readonly = READONLY_KEY in namespace or _readonly_view(app)
        state = RequestState(app, scope, scope.store_for(app), scope.settings_for(app), readonly)
        setattr(namespace, STATE_KEY, state)
    return state


def _readonly_view(app: Flask) -> bool:
    """Whether the request's view is marked read-only."""
    endpoint = request.endpoint
    view = app.view_functions.get(endpoint) if endpoint is not None else None
    return getattr(view, READONLY_VIEW, False) is True


def mark_readonly() -> None:
    """Make the current request read-only before it first uses the
    conversation; for a view whose marker :func:`get_state` cannot see
    (registered through a wrapper that hides it).

    :raise RuntimeError: the conversation was already resolved with its
        stack's lock, e.g. by a ``before_request`` function.
    """
    state = peek_state()
    if state is None:
        setattr(_g(), READONLY_KEY, True)
    elif not state.readonly:
        raise RuntimeError(
            "@conversation_readonly: the conversation was used with its lock before"
            " the view ran. Decorate the view function registered for the route,"
            " so that the request is read-only from its first use."
        )


def peek_state() -> RequestState | None:
    """The current request's state if the conversation was used, else
    ``None``; never resolves it.
    """
    return _g().__dict__.get(STATE_KEY) if has_request_context() else None


def request_state() -> RequestState | None:
    """Like :func:`peek_state`, for the request's own hooks, which run
    only during a request: one lookup on a request that never used the
    conversation.
    """
    # Every request comes here: the lookup of _g() written out, one call less.
    state: RequestState | None = g._get_current_object().__dict__.get(STATE_KEY)
    return state


def pop_request_state() -> RequestState | None:
    """Remove the current request's state from :data:`flask.g` and return
    it, if the conversation was used; for the teardown hook.
    """
    state: RequestState | None = g._get_current_object().__dict__.pop(STATE_KEY, None)
    return state


def current_conversation() -> Conversation:
    """The current conversation; the first use after a request named an
    unknown cid raises the error for it.

    :raise ContextNotActive: outside of a request.
    :raise NonexistentConversation: the request named an unknown cid.
    :raise BusyConversation: its stack stayed locked.
    :raise ConversationStoreError: the store failed.
    """
    try:
        state: RequestState | None = _g().__dict__.get(STATE_KEY)
    except RuntimeError:
        state = None
    if state is None:
        state = get_state()
    elif state.error is None and state.missing is None:
        # Every use of the proxy comes here: the resolved state's
        # conversation, without the checks of its first use.
        return state.current
    if state.error is not None:
        error, state.error = state.error, None
        raise error
    if state.missing is not None:
        state.report_missing()
    return state.current


class _ConversationProxy(LocalProxy):  # type: ignore[type-arg]
    """:class:`~werkzeug.local.LocalProxy` of the current conversation, with
    the item access views use most done in one call each: werkzeug binds
    the object's method anew on every use.
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> t.Any:
        return current_conversation()[key]

    def __setitem__(self, key: str, value: t.Any) -> None:
        current_conversation()[key] = value

    def __contains__(self, key: object) -> bool:
        return key in current_conversation()


#: The proxy behind :data:`flask_conversation.conversation`.
conversation_proxy: Conversation = t.cast(Conversation, _ConversationProxy(current_conversation))
