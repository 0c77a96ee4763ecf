"""Where conversations are kept between requests."""

from __future__ import annotations

import contextlib
import typing as t

from .base import ConversationInfo as ConversationInfo
from .base import ConversationRecord as ConversationRecord
from .base import ConversationStore as ConversationStore
from .memory import MemoryStore as MemoryStore
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
