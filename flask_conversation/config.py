"""The ``CONVERSATION_*`` configuration: every key with its default, and
the :class:`Settings` a request reads from it.
"""

from __future__ import annotations

import dataclasses
import operator
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
    """The ``CONVERSATION_*`` configuration, as a request that uses the
    conversation reads it: changes to ``app.config`` apply from the next
    such request on (see :class:`SettingsCache`).
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


#: The keys :meth:`Settings.from_config` reads, in one C-level lookup.
_SETTINGS_KEYS = (
    "CONVERSATION_PARAM",
    "CONVERSATION_HEADER",
    "CONVERSATION_TIMEOUT",
    "CONVERSATION_MAX_COUNT",
    "CONVERSATION_MAX_DEPTH",
    "CONVERSATION_MAX_SIZE",
    "CONVERSATION_LOCK_TIMEOUT",
    "CONVERSATION_INITIAL_STATE",
    "CONVERSATION_EXCLUDE",
    "CONVERSATION_MISSING_REDIRECT",
    "CONVERSATION_MISSING_FLASH_MESSAGE",
    "CONVERSATION_MISSING_FLASH_CATEGORY",
)
_read_settings = operator.itemgetter(*_SETTINGS_KEYS)
_EXCLUDE = _SETTINGS_KEYS.index("CONVERSATION_EXCLUDE")
_INITIAL_STATE = _SETTINGS_KEYS.index("CONVERSATION_INITIAL_STATE")
#: Types of a ``CONVERSATION_EXCLUDE`` value that cannot change in place.
_IMMUTABLE = frozenset({tuple, frozenset, str, type(None)})


def _unchanged_in_place(raw: tuple[t.Any, ...], settings: Settings) -> bool:
    # The values compared equal to those ``settings`` was built from; the
    # collections among them may still have changed in place since.
    exclude = raw[_EXCLUDE]
    if type(exclude) not in _IMMUTABLE and frozenset(exclude) != settings.exclude:
        return False
    initial = raw[_INITIAL_STATE]
    # The settings keep the config's own mapping, or a new one for an empty
    # value, which a mapping filled in place since no longer is.
    return initial is settings.initial_state or not (initial or settings.initial_state)


class SettingsCache:
    """The :class:`Settings` of one application's config, built again only
    when one of the values it is built from changed.

    Every request still reads the values (a dict lookup each), so a change
    to ``app.config`` between two requests applies to the second, as with
    :meth:`Settings.from_config`; what is saved is converting them. The
    values are compared by equality, which the same object always passes,
    so the two collections among them are checked for changes made in
    place: ``CONVERSATION_EXCLUDE`` by its members, and
    ``CONVERSATION_INITIAL_STATE`` by being the very mapping the settings
    keep (it is copied at use).
    """

    __slots__ = ("_entry",)

    def __init__(self) -> None:
        # One attribute, replaced whole: a thread never pairs the values of
        # one config with the settings of another.
        self._entry: tuple[tuple[t.Any, ...], Settings] | None = None

    def get(self, config: t.Mapping[str, t.Any]) -> Settings:
        """The settings of ``config`` as it is now.

        :param config: the ``app.config`` mapping.
        """
        raw = _read_settings(config)
        entry = self._entry
        if entry is not None and raw == entry[0] and _unchanged_in_place(raw, entry[1]):
            return entry[1]
        settings = Settings.from_config(config)
        self._entry = (raw, settings)
        return settings
