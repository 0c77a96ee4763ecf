"""How conversation data becomes text for a store, and back.

The default :class:`ConversationSerializer` is strict JSON plus the tags of
Flask's session serializer (``tuple``, ``bytes``, ``Markup``, ``UUID``,
``datetime``). Nothing is ever pickled: a value that would not come back as
it went in is refused with an error that names its key.
"""

from __future__ import annotations

import json
import typing as t

from flask.json import tag as flask_tag
from flask.json.tag import JSONTag
from flask.json.tag import TaggedJSONSerializer

from .errors import ConversationError
from .errors import ConversationTooLarge


class Serializer(t.Protocol):
    """What a store needs from a serializer: text out, equal value back."""

    def dumps(self, value: t.Any) -> str: ...  # pragma: no cover

    def loads(self, value: str) -> t.Any: ...  # pragma: no cover


class _RejectNonStringKeys(JSONTag):
    # JSON would silently turn ``{1: "a"}`` into ``{"1": "a"}``: refuse it so
    # that what is read back is what was stored.
    __slots__ = ()

    def check(self, value: t.Any) -> bool:
        return isinstance(value, dict) and any(not isinstance(k, str) for k in value)

    def to_json(self, value: t.Any) -> t.Any:
        bad = next(k for k in value if not isinstance(k, str))
        raise TypeError(f"dict keys must be str, not {type(bad).__name__} ({bad!r})")


class ConversationSerializer(TaggedJSONSerializer):
    """Flask's tagged JSON, made strict: no ``default`` hook (a dataclass or
    a set is an error, not a silent conversion), no ``NaN``, only ``str`` keys.

    .. versionadded:: 0.1
    """

    __slots__ = ("_plain_safe",)

    def __init__(self) -> None:
        super().__init__()
        #: ``(len(self.order), default_tags_only(self))``: tags are only
        #: ever added, so the answer holds while the length does.
        self._plain_safe = (-1, False)
        self.register(_RejectNonStringKeys, index=0)

    def _default_tags_only(self) -> bool:
        count, safe = self._plain_safe
        if count != len(self.order):
            safe = default_tags_only(self)
            self._plain_safe = (len(self.order), safe)
        return safe

    def dumps(self, value: t.Any) -> str:
        """Serialize ``value`` to compact JSON text.

        :param value: the data to serialize.
        :raise TypeError: a value of a type JSON does not carry.
        :raise ValueError: ``NaN`` or infinity.
        """
        if not (self._default_tags_only() and is_plain(value, self.tags)):
            value = self.tag(value)
        return _ENCODER.encode(value)

    def loads(self, value: str) -> t.Any:
        """Load data serialized by :meth:`dumps`.

        :param value: the JSON text.
        """
        data = json.loads(value)
        if self._default_tags_only() and '" ' not in value and '"\\u0020' not in value:
            # Every default tag's key starts with a space, and no string of
            # the text does: there is nothing to untag, so skip the walk.
            return data
        return self._untag_scan(data)


#: What serializing an unstorable value raises: a type JSON does not carry,
#: NaN, a lone surrogate (no store can encode it), a value nested too deeply
#: or containing itself.
_UNSTORABLE = (TypeError, ValueError, OverflowError, RecursionError)


#: What :meth:`ConversationSerializer.dumps` writes with: built once, as
#: ``json.dumps`` would build it on every call with these arguments.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dumps(serializer: Serializer, value: t.Any) -> str:
    text = serializer.dumps(value)
    if not text.isascii():
        text.encode()  # raises UnicodeEncodeError on a lone surrogate
    return text


def _reason(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "it is nested too deeply or contains itself"
    return str(error)


#: The tags that never claim a value of an exact JSON type other than a
#: one-key dict with a tag's key; with another tag registered, every value
#: is tagged.
_PLAIN_SAFE_TAGS = frozenset(
    {
        _RejectNonStringKeys,
        flask_tag.TagDict,
        flask_tag.PassDict,
        flask_tag.TagTuple,
        flask_tag.PassList,
        flask_tag.TagBytes,
        flask_tag.TagMarkup,
        flask_tag.TagUUID,
        flask_tag.TagDateTime,
    }
)


def default_tags_only(serializer: TaggedJSONSerializer) -> bool:
    """Whether ``serializer`` has only tags that leave plain JSON data as it
    is, so that :func:`is_plain` data needs no tagging walk.

    :param serializer: a tagged JSON serializer.
    """
    return _PLAIN_SAFE_TAGS.issuperset(map(type, serializer.order))


def is_plain(value: t.Any, tags: t.Mapping[str, t.Any]) -> bool:
    """Whether tagging ``value`` would give back an equal structure: only
    exact JSON types, ``str`` keys, and no one-key dict whose key looks like
    a tag. Such data skips the tagging walk, which costs more than the JSON
    encoding itself.

    :param value: the data.
    :param tags: the serializer's tags by key.
    """
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        if len(value) == 1 and next(iter(value)) in tags:
            return False
        for key, item in value.items():
            # Scalars are checked here: most values are, and a call each
            # would cost more than the check.
            if type(key) is not str or (type(item) not in _SCALARS and not is_plain(item, tags)):
                return False
        return True
    if kind is list:
        return all(type(item) in _SCALARS or is_plain(item, tags) for item in value)
    return False


#: The exact types of JSON's scalars.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def dump_data(
    serializer: Serializer, data: dict[str, t.Any], cid: str | None, max_size: int
) -> str:
    """Serialize one conversation's own data, naming the key at fault when a
    value cannot be stored or the result is larger than ``max_size`` bytes.

    :param serializer: the store's serializer.
    :param data: the conversation's own keys and values.
    :param cid: the conversation id, for the message.
    :param max_size: the largest accepted size in bytes of the result.
    :raise ConversationError: naming the key that cannot be stored.
    :raise ConversationTooLarge: naming the largest key.
    """
    try:
        text = _dumps(serializer, data)
    except _UNSTORABLE as e:
        for key, value in data.items():
            try:
                _dumps(serializer, {key: value})
            except _UNSTORABLE as key_error:
                raise ConversationError(
                    f"The value of {key!r} in conversation {cid!r} cannot be"
                    f" stored: {_reason(key_error)}. Store JSON data (str, int,"
                    " float, bool, None, list, dict with str keys)."
                ) from key_error
        raise ConversationError(
            f"The data of conversation {cid!r} cannot be stored: {_reason(e)}"
        ) from e

    size = len(text.encode())
    if size > max_size:
        largest = max(data, key=lambda k: len(serializer.dumps({k: data[k]})), default=None)
        raise ConversationTooLarge(
            f"Conversation {cid!r} holds {size} bytes, more than"
            f" CONVERSATION_MAX_SIZE ({max_size}); its largest key is {largest!r}.",
            largest,
        )
    return text
