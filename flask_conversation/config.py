"""The ``CONVERSATION_*`` configuration: every key with its default, and
the :class:`Settings` a request reads from it.
"""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import timedelta

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
    "CONVERSATION_COOKIE_NAME": "conversation_ns",
}

#: A timeout given as a :class:`~datetime.timedelta` or as seconds.
Timeout: t.TypeAlias = "timedelta | int | float"


def to_seconds(value: Timeout, name: str = "timeout") -> float:
    """Convert a timeout to seconds, refusing values that are not positive.

    :param value: a :class:`~datetime.timedelta` or a number of seconds.
    :param name: what to call the value in the error message.
    :raise ValueError: the value is not a positive duration.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{name} must be a timedelta or a number of seconds.")
    if not seconds > 0:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return float(seconds)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``CONVERSATION_*`` configuration, read once per request that
    uses the conversation, so that changes to ``app.config`` apply.
    """

    param: str
    header: str
    timeout: float
    max_count: int
    max_depth: int
    max_size: int
    lock_timeout: float
    initial_state: t.Mapping[str, t.Any]
    exclude: frozenset[str]
    missing_redirect: str | None
    missing_flash_message: str
    missing_flash_category: str

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read the settings from an application's config.

        :param config: the ``app.config`` mapping.
        """
        return cls(
            param=config["CONVERSATION_PARAM"],
            header=config["CONVERSATION_HEADER"],
            timeout=to_seconds(config["CONVERSATION_TIMEOUT"], "CONVERSATION_TIMEOUT"),
            max_count=config["CONVERSATION_MAX_COUNT"],
            max_depth=config["CONVERSATION_MAX_DEPTH"],
            max_size=config["CONVERSATION_MAX_SIZE"],
            lock_timeout=to_seconds(
                config["CONVERSATION_LOCK_TIMEOUT"], "CONVERSATION_LOCK_TIMEOUT"
            ),
            initial_state=config["CONVERSATION_INITIAL_STATE"] or {},
            exclude=frozenset(config["CONVERSATION_EXCLUDE"] or ()),
            missing_redirect=config["CONVERSATION_MISSING_REDIRECT"],
            missing_flash_message=config["CONVERSATION_MISSING_FLASH_MESSAGE"],
            missing_flash_category=config["CONVERSATION_MISSING_FLASH_CATEGORY"],
        )
