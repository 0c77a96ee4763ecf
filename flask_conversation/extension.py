"""The extension: configuration, the request hooks and the template
helpers.
"""

from __future__ import annotations

import typing as t
import weakref

from flask import Flask
from flask.signals import got_request_exception

from .commit import commit_state
from .commit import finish_headers
from .commit import release_state
from .config import DEFAULTS
from .config import Settings
from .config import SettingsCache
from .context import conversation_proxy
from .context import get_state
from .context import get_store
from .context import peek_state
from .context import pop_request_state
from .context import request_state
from .errors import ConversationStoreError
from .errors import ConversationTooLarge
from .htmx import blueprint
from .htmx import conversation_hx_headers
from .htmx import conversation_script
from .namespaces import NamespaceLoader
from .propagation import auto_propagate
from .propagation import conversation_field
from .propagation import request_names_cid
from .propagation import url_for_cid
from .stores import store_from_config
from .stores.base import ConversationStore
from .stores.records import ConversationInfo

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Response


class ConversationScope:
    """The Flask-Conversation extension.

    .. code-block:: python

        app = Flask(__name__)
        scope = ConversationScope(app)

    or, with an application factory, ``scope.init_app(app)``. The store is
    ``store`` if given, else the one named by ``CONVERSATION_STORE``. One
    instance may serve several applications; it never keeps a reference to
    any of them.

    :param app: the application to initialize now.
    :param store: the store to keep conversations in.

    .. versionadded:: 0.1
    """

    def __init__(self, app: Flask | None = None, store: ConversationStore | None = None) -> None:
        self._store = store
        self._namespace_loader: NamespaceLoader | None = None
        # Weak keys, as Flask-SQLAlchemy keeps its engines: the extension
        # never keeps an application alive.
        self._stores: weakref.WeakKeyDictionary[Flask, ConversationStore] = (
            weakref.WeakKeyDictionary()
        )
        self._settings: weakref.WeakKeyDictionary[Flask, SettingsCache] = (
            weakref.WeakKeyDictionary()
        )
        if app is not None:
            self.init_app(app, store)

    def init_app(self, app: Flask, store: ConversationStore | None = None) -> None:
        """Register the extension on ``app``.

        :param app: the application.
        :param store: the store for this application; by default the one
            given to the constructor, else ``CONVERSATION_STORE``.
        :raise RuntimeError: a ``ConversationScope`` is already registered
            on ``app``.
        :raise ValueError: the configured store cannot be built, or
            ``CONVERSATION_COOKIE_NAME`` is the session cookie's name.
        """
        if "conversation" in app.extensions:
            raise RuntimeError(
                "A ConversationScope is already registered on this application;"
                " use that instance (app.extensions['conversation']) instead of"
                " registering the extension again."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        if app.config["CONVERSATION_COOKIE_NAME"] == app.config["SESSION_COOKIE_NAME"]:
            raise ValueError(
                "CONVERSATION_COOKIE_NAME must differ from SESSION_COOKIE_NAME; set it"
                " to None to keep the namespace token in the session."
            )
        if store is None:
            store = self._store if self._store is not None else store_from_config(app.config, app)
        self._stores[app] = store
        self._settings[app] = SettingsCache()
        app.extensions["conversation"] = self

        app.url_defaults(auto_propagate)
        app.after_request(self.commit_conversation)
        app.teardown_request(self.release_conversation)
        got_request_exception.connect(self.mark_failed, app)
        app.context_processor(_template_context)
        app.jinja_env.globals.update(
            conversation=conversation_proxy,
            url_for_cid=url_for_cid,
            conversation_field=conversation_field,
            conversation_hx_headers=conversation_hx_headers,
            conversation_script=conversation_script,
            conversations=conversations,
        )
        # Serves the page script of conversation_script().
        app.register_blueprint(blueprint)

    def namespace_loader(self, fn: NamespaceLoader) -> NamespaceLoader:
        """Decorate a function that returns the namespace of the current
        request, replacing the default per-session token, e.g. a chat id for
        a bot webhook or the user id for an API. The function is then
        :attr:`namespace_callback`.

        :param fn: called without arguments during a request.
        """
        self._namespace_loader = fn
        return fn

    @property
    def namespace_callback(self) -> NamespaceLoader | None:
        """The function set with :meth:`namespace_loader`, or ``None`` for
        the default per-session token.

        .. versionadded:: 0.1
        """
        return self._namespace_loader

    @staticmethod
    def get_store(app: Flask | None = None) -> ConversationStore:
        """The store of ``app`` (by default the current application).

        :param app: the application.
        :raise RuntimeError: the extension is not initialized on ``app``.
        """
        return get_store(app)

    def store_for(self, app: Flask) -> ConversationStore:
        """The store this extension keeps the conversations of ``app`` in.

        :param app: an application this extension was initialized on.
        :raise KeyError: it was not initialized on ``app``.

        .. versionadded:: 0.1
        """
        return self._stores[app]

    def settings_for(self, app: Flask) -> Settings:
        """The ``CONVERSATION_*`` settings of ``app``'s config as it is
        now, converted again only when a value changed.

        :param app: an application this extension was initialized on.
        :raise KeyError: it was not initialized on ``app``.

        .. versionadded:: 0.1
        """
        return self._settings[app].get(app.config)

    # -- the request hooks -----------------------------------------------------

    def commit_conversation(self, response: Response) -> Response:
        """``after_request``: commit the request's changes, unless the
        request failed with an unhandled exception or a limit refused it;
        then tell shared caches whether the response is private.

        :param response: the response.
        """
        # Every request comes here: one that never used the conversation
        # costs a lookup.
        state = request_state()
        if state is None:
            return response
        if not state.failed:
            try:
                commit_state(state, response)
            except (ConversationStoreError, ConversationTooLarge) as e:
                # Raised here, Flask would turn any error into a 500: answer
                # with the error's own status (503, 413) through the app's
                # handlers.
                state.refused = isinstance(e, ConversationTooLarge)
                app = state.app
                response = app.make_response(app.handle_user_exception(e))
        finish_headers(state, response)
        return response

    def mark_failed(self, sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        """``got_request_exception``: nothing of this request is committed.

        :param sender: the application.
        :param exception: the unhandled exception.
        :param extra: further arguments of the signal.
        """
        state = request_state()
        if state is not None:
            state.failed = True

    def release_conversation(self, exc: BaseException | None) -> None:
        """``teardown_request``: always release the request's locks.

        :param exc: the unhandled exception, if any.
        """
        state = pop_request_state()
        if state is not None:
            release_state(state)

    def conversations(self) -> list[ConversationInfo]:
        """The long-running conversations of the current namespace, most
        recently used first. Also a Jinja global.
        """
        return conversations()

    def end_all(self) -> None:
        """End every conversation of the current namespace (e.g. on logout),
        at the end of the request. Sends ``conversation_destroyed`` with
        reason ``"cleared"`` for each.

        Final: once the request committed, no request of the namespace
        that was already running writes any of them back.
        """
        get_state().end_all()

    def rotate_namespace(self) -> None:
        """Give the current browser a new namespace token at the end of the
        request, and move the namespace's conversations to it: the old
        token, planted or replayed, reaches none of them afterwards. Call
        it when privileges change, e.g. at login (see :doc:`/security`).

        Nothing happens without a token yet (the next conversation gets a
        new one anyway). With :class:`~flask_conversation.stores.SessionStore`
        the token lives in the session; rotate the session itself too where
        the session is kept on the server.

        :raise ConversationError: a ``namespace_loader`` gives the namespace,
            so the application owns it.

        .. versionadded:: 0.1
        """
        get_state().rotate_namespace()


def conversations() -> list[ConversationInfo]:
    """The long-running conversations of the current namespace, most
    recently used first.
    """
    return get_state().listing.conversations()


def _template_context() -> dict[str, t.Any]:
    # A plain value, so that ``cid is none`` and ``cid|tojson`` work. Without
    # a cid in the request nothing is resolved; with one, an unknown cid gives
    # ``None`` here and is reported only where the conversation is used.
    # Outside of a request (a mail rendered by a command) there is none.
    state = peek_state()
    if state is None and request_names_cid():
        state = get_state()
    if state is None:
        return {"cid": None, "conversation": conversation_proxy}
    # Once resolved, templates get the conversation itself: a page uses it
    # dozens of times, and each use through the proxy costs a lookup. A
    # pending error keeps the proxy, which reports it on first use.
    pending = state.missing is not None or state.error is not None
    return {
        "cid": state.cid_to_propagate(),
        "conversation": conversation_proxy if pending else state.current,
    }
