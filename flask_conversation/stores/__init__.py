"""Where conversations are kept between requests."""

from __future__ import annotations

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


def __getattr__(name: str) -> object:
    # RedisStore needs the optional ``redis`` package: import it on demand.
    if name == "RedisStore":
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
        # Only here: the optional ``redis`` package is needed by this store alone.
        from .redis import RedisStore

        if isinstance(client, str):
            return RedisStore.from_url(client)
        return RedisStore(client)
    raise ValueError(
        f'Unknown CONVERSATION_STORE {name!r}: use "session", "memory" or'
        ' "redis", or pass store= to ConversationScope.'
    )
