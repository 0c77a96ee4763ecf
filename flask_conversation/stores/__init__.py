"""Where conversations are kept between requests."""

from __future__ import annotations

import typing as t

from .base import ConversationInfo as ConversationInfo
from .base import ConversationRecord as ConversationRecord
from .base import ConversationStore as ConversationStore
from .base import lock_retries as lock_retries
from .memory import MemoryStore as MemoryStore
from .session import SessionStore as SessionStore

if t.TYPE_CHECKING:  # pragma: no cover
    from .redis import RedisStore as RedisStore


def __getattr__(name: str) -> object:
    # RedisStore needs the optional ``redis`` package: import it on demand.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(name)
