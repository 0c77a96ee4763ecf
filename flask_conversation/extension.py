"""The extension: configuration, the request hooks and the template
helpers.
"""

from __future__ import annotations

import typing as t
import weakref
from datetime import timedelta

from flask import current_app
from flask import Flask
from flask.signals import got_request_exception

from .lifecycle import commit_conversation
from .lifecycle import conversation_proxy
from .lifecycle import get_state
from .lifecycle import mark_failed
from .lifecycle import peek_state
from .lifecycle import release_conversation
from .propagation import auto_propagate
from .propagation import conversation_field
from .propagation import request_names_cid
from .propagation import url_for_cid
from .stores.base import ConversationInfo
from .stores.base import ConversationStore
from .stores.memory import MemoryStore
from .stores.session import SessionStore

#: Every configuration key with its default.
DEFAULTS: dict[str, t.Any] = {
    "CONVERSATION_STORE": "session",
    "CONVERSATION_REDIS": None,
    "CONVERSATION_SQLALCHEMY": None,
    "CONVERSATION_PARAM": "cid",
    "CONVERSATION_HEADER": "X-Conversation-Id",
    "CONVERSATION_TIMEOUT": timedelta(minutes=30),
    "CONVERSATION_MAX_COUNT": 32,
    "CONVERSATION_MAX_DEPTH": 16,
    "CONVERSATION_MAX_SIZE": 1024 * 1024,
    "CONVERSATION_LOCK_TIMEOUT": 5,
    "CONVERSATION_INITIAL_STATE": {},
    "CONVERSATION_EXCLUDE": (),
    "CONVERSATION_AUTO_PROPAGATE": False,
    "CONVERSATION_MISSING_REDIRECT": None,
    "CONVERSATION_MISSING_FLASH_MESSAGE": (
        "That conversation has ended or expired. Please start again."
    ),
    "CONVERSATION_MISSING_FLASH_CATEGORY": "warning",
}


def store_from_config(app: Flask) -> ConversationStore:
    """Build the store named by ``CONVERSATION_STORE``: ``"session"``,
    ``"memory"``, ``"redis"`` (with ``CONVERSATION_REDIS``, else
    ``SESSION_REDIS``: a Redis client or a ``redis://`` URL) or
    ``"sqlalchemy"`` (with ``CONVERSATION_SQLALCHEMY``, an engine or a
    database URL, else the engine of Flask-SQLAlchemy initialised on the
    application).

    :param app: the application.
    :raise ValueError: an unknown store, or a server store without its
        setting.
    """
    config = app.config
    name = config["CONVERSATION_STORE"]
    if isinstance(name, ConversationStore):
        return name
    if name == "session":
        return SessionStore()
    if name == "memory":
        return MemoryStore()
    if name == "redis":
        client = config.get("CONVERSATION_REDIS") or config.get("SESSION_REDIS")
        if client is None:
            raise ValueError(
                'CONVERSATION_STORE = "redis" needs CONVERSATION_REDIS (a Redis'
                " client or a redis:// URL), or Flask-Session's SESSION_REDIS."
            )
        from .stores.redis import RedisStore

        if isinstance(client, str):
            return RedisStore.from_url(client)
        return RedisStore(client)
    if name == "sqlalchemy":
        engine = config.get("CONVERSATION_SQLALCHEMY") or _flask_sqlalchemy_engine(app)
        if engine is None:
            raise ValueError(
                'CONVERSATION_STORE = "sqlalchemy" needs CONVERSATION_SQLALCHEMY (a'
                " SQLAlchemy engine or a database URL), or Flask-SQLAlchemy initialised"
                " on the application before ConversationScope."
            )
        from .stores.sql import SQLAlchemyStore

        return SQLAlchemyStore(engine)
    raise ValueError(
        f'Unknown CONVERSATION_STORE {name!r}: use "session", "memory", "redis" or'
        ' "sqlalchemy", or pass store= to ConversationScope.'
    )


def _flask_sqlalchemy_engine(app: Flask) -> t.Any:
    """The default engine of Flask-SQLAlchemy on ``app``, or ``None`` if it
    is not initialised there.
    """
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return None
    # Flask-SQLAlchemy keeps an engine per application, found through the
    # application context.
    with app.app_context():
        return db.engine


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
        self._namespace_loader: t.Callable[[], str | None] | None = None
        # Weak keys, as Flask-SQLAlchemy keeps its engines: the extension
        # never keeps an application alive.
        self._stores: weakref.WeakKeyDictionary[Flask, ConversationStore] = (
            weakref.WeakKeyDictionary()
        )
        if app is not None:
            self.init_app(app, store)

    def init_app(self, app: Flask, store: ConversationStore | None = None) -> None:
        """Register the extension on ``app``.

        :param app: the application.
        :param store: the store for this application; by default the one
            given to the constructor, else ``CONVERSATION_STORE``.
        :raise ValueError: the configured store cannot be built.
        """
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        if store is None:
            store = self._store if self._store is not None else store_from_config(app)
        self._stores[app] = store
        app.extensions["conversation"] = self

        app.url_defaults(auto_propagate)
        app.after_request(commit_conversation)
        app.teardown_request(release_conversation)
        got_request_exception.connect(mark_failed, app)
        app.context_processor(_template_context)
        app.jinja_env.globals.update(
            conversation=conversation_proxy,
            url_for_cid=url_for_cid,
            conversation_field=conversation_field,
            conversations=conversations,
        )

    def namespace_loader(self, fn: t.Callable[[], str | None]) -> t.Callable[[], str | None]:
        """Decorate a function that returns the namespace of the current
        request, replacing the default per-session token, e.g. a chat id for
        a bot webhook or the user id for an API.

        :param fn: called without arguments during a request.
        """
        self._namespace_loader = fn
        return fn

    @staticmethod
    def get_store(app: Flask | None = None) -> ConversationStore:
        """The store of ``app`` (by default the current application).

        :param app: the application.
        :raise RuntimeError: the extension is not initialized on ``app``.
        """
        if app is None:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        scope = app.extensions.get("conversation")
        if scope is None:
            raise RuntimeError(
                "ConversationScope is not initialized on this application:"
                " call ConversationScope(app) or scope.init_app(app)."
            )
        return t.cast(ConversationStore, scope._stores[app])

    def conversations(self) -> list[ConversationInfo]:
        """The long-running conversations of the current namespace, most
        recently used first. Also a Jinja global.
        """
        return conversations()

    def end_all(self) -> None:
        """End every conversation of the current namespace (e.g. on logout),
        at the end of the request. Sends ``conversation_destroyed`` with
        reason ``"cleared"`` for each.
        """
        get_state().end_all()


def conversations() -> list[ConversationInfo]:
    """The long-running conversations of the current namespace, most
    recently used first.
    """
    return get_state().conversations()


def _template_context() -> dict[str, t.Any]:
    # A plain value, so that ``cid is none`` and ``cid|tojson`` work. Without
    # a cid in the request nothing is resolved; with one, an unknown cid gives
    # ``None`` here and is reported only where the conversation is used.
    state = get_state() if request_names_cid() else peek_state()
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
