"""Where conversations are kept between requests."""

from __future__ import annotations

import typing as t

from .base import ConversationInfo as ConversationInfo
from .base import ConversationRecord as ConversationRecord
from .base import ConversationStore as ConversationStore
from .memory import MemoryStore as MemoryStore
from .session import SessionStore as SessionStore

if t.TYPE_CHECKING:  # pragma: no cover
    from .redis import RedisStore as RedisStore
    from .sql import SQLAlchemyStore as SQLAlchemyStore


def __getattr__(name: str) -> object:
    # RedisStore and SQLAlchemyStore need optional packages (``redis``,
    # ``sqlalchemy``): import them on demand.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "SQLAlchemyStore":
        from .sql import SQLAlchemyStore

        return SQLAlchemyStore
    raise AttributeError(name)
