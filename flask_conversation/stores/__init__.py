"""Where conversations are kept between requests."""

from __future__ import annotations

import contextlib
import typing as t

from .base import ConversationStore as ConversationStore
from .locks import lock_retries as lock_retries
from .memory import MemoryStore as MemoryStore
from .records import Acquired as Acquired
from .records import CommitBatch as CommitBatch
from .records import ConversationInfo as ConversationInfo
from .records import ConversationRecord as ConversationRecord
from .rules import plan_commit as plan_commit
from .session import SessionStore as SessionStore

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask

    from .redis import RedisStore as RedisStore
    from .sql import SQLAlchemyStore as SQLAlchemyStore

#: Why RedisStore cannot be imported, and how to fix it.
REDIS_MISSING = (
    "RedisStore needs the redis client package, which is not installed. Install"
    ' Flask-Conversation with its [redis] extra: pip install -e ".[redis]" in a'
    ' checkout, or pip install "flask-conversation[redis] @ <repository URL>";'
    ' or install the client alone: pip install "redis>=5.0".'
)

#: Why SQLAlchemyStore cannot be imported, and how to fix it.
SQLALCHEMY_MISSING = (
    "SQLAlchemyStore needs SQLAlchemy, which is not installed. Install"
    ' Flask-Conversation with its [sql] extra: pip install -e ".[sql]" in a'
    ' checkout, or pip install "flask-conversation[sql] @ <repository URL>";'
    ' or install it alone: pip install "sqlalchemy>=2.0". Add your database\'s'
    " driver too (e.g. psycopg for PostgreSQL, pymysql for MySQL and MariaDB)."
)


def redis_store(client: t.Any) -> ConversationStore:
    """A :class:`~flask_conversation.stores.RedisStore` on ``client``.

    :param client: a Redis client, or a ``redis://`` URL to connect to.
    :raise ModuleNotFoundError: the optional ``redis`` package is not
        installed; the message names the extra to install.
    """
    with _explain_missing("redis", REDIS_MISSING):
        # Only here: the optional ``redis`` package is needed by this store alone.
        from .redis import RedisStore

        if isinstance(client, str):
            return RedisStore.from_url(client)
        return RedisStore(client)


def sql_store(engine: t.Any) -> ConversationStore:
    """A :class:`~flask_conversation.stores.SQLAlchemyStore` on ``engine``.

    :param engine: a SQLAlchemy engine, or a database URL to create one for.
    :raise ModuleNotFoundError: the optional ``sqlalchemy`` package is not
        installed; the message names the extra to install.
    """
    with _explain_missing("sqlalchemy", SQLALCHEMY_MISSING):
        # Only here: the optional ``sqlalchemy`` package is needed by this store alone.
        from .sql import SQLAlchemyStore

        return SQLAlchemyStore(engine)


@contextlib.contextmanager
def _explain_missing(package: str, message: str) -> t.Iterator[None]:
    try:
        yield
    except ModuleNotFoundError as e:
        if e.name != package and not (e.name or "").startswith(f"{package}."):
            raise
        raise ModuleNotFoundError(message, name=e.name) from None


def __getattr__(name: str) -> object:
    # RedisStore and SQLAlchemyStore need optional packages (``redis``,
    # ``sqlalchemy``): import them on demand.
    if name == "RedisStore":
        with _explain_missing("redis", REDIS_MISSING):
            from .redis import RedisStore

        return RedisStore
    if name == "SQLAlchemyStore":
        with _explain_missing("sqlalchemy", SQLALCHEMY_MISSING):
            from .sql import SQLAlchemyStore

        return SQLAlchemyStore
    raise AttributeError(name)


def store_from_config(config: t.Mapping[str, t.Any], app: Flask | None = None) -> ConversationStore:
    """Build the store named by ``CONVERSATION_STORE``: ``"session"``,
    ``"memory"``, ``"redis"`` (with ``CONVERSATION_REDIS``, else
    ``SESSION_REDIS``: a Redis client or a ``redis://`` URL) or
    ``"sqlalchemy"`` (with ``CONVERSATION_SQLALCHEMY``, an engine or a
    database URL, else the engine of Flask-SQLAlchemy on ``app``).

    :param config: the application's config.
    :param app: the application, whose Flask-SQLAlchemy engine
        ``"sqlalchemy"`` falls back to.
    :raise ValueError: an unknown store, or Redis or SQL without its
        setting.
    """
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
        return redis_store(client)
    if name == "sqlalchemy":
        engine = config.get("CONVERSATION_SQLALCHEMY")
        if engine is None and app is not None:
            engine = _flask_sqlalchemy_engine(app)
        if engine is None:
            raise ValueError(
                'CONVERSATION_STORE = "sqlalchemy" needs CONVERSATION_SQLALCHEMY (a'
                " SQLAlchemy engine or a database URL), or Flask-SQLAlchemy initialised"
                " on the application before ConversationScope."
            )
        return sql_store(engine)
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
