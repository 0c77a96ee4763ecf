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
    from .redis import RedisStore as RedisStore

#: Why RedisStore cannot be imported, and how to fix it.
REDIS_MISSING = (
    "RedisStore needs the redis client package, which is not installed. Install"
    ' Flask-Conversation with its [redis] extra: pip install -e ".[redis]" in a'
    ' checkout, or pip install "flask-conversation[redis] @ <repository URL>";'
    ' or install the client alone: pip install "redis>=5.0".'
)


def redis_store(client: t.Any) -> ConversationStore:
    """A :class:`~flask_conversation.stores.RedisStore` on ``client``.

    :param client: a Redis client, or a ``redis://`` URL to connect to.
    :raise ModuleNotFoundError: the optional ``redis`` package is not
        installed; the message names the extra to install.
    """
    with _explain_missing_redis():
        # Only here: the optional ``redis`` package is needed by this store alone.
        from .redis import RedisStore

        if isinstance(client, str):
            return RedisStore.from_url(client)
        return RedisStore(client)


@contextlib.contextmanager
def _explain_missing_redis() -> t.Iterator[None]:
    try:
        yield
    except ModuleNotFoundError as e:
        if e.name != "redis" and not (e.name or "").startswith("redis."):
            raise
        raise ModuleNotFoundError(REDIS_MISSING, name=e.name) from None


def __getattr__(name: str) -> object:
    # RedisStore needs the optional ``redis`` package: import it on demand.
    if name == "RedisStore":
        with _explain_missing_redis():
            from .redis import RedisStore

        return RedisStore
    raise AttributeError(name)


def store_from_config(config: t.Mapping[str, t.Any]) -> ConversationStore:
    """Build the store named by ``CONVERSATION_STORE``: ``"session"``,
    ``"memory"`` or ``"redis"`` (with ``CONVERSATION_REDIS``, else
    ``SESSION_REDIS``: a Redis client or a ``redis://`` URL).

    :param config: the application's config.
    :raise ValueError: an unknown store, or Redis without a client.
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
    raise ValueError(
        f'Unknown CONVERSATION_STORE {name!r}: use "session", "memory" or'
        ' "redis", or pass store= to ConversationScope.'
    )
