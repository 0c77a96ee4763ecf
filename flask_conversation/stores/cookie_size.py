"""How long the session cookie would be: a guard for the session store
against a cookie a browser would drop without a word.

Signing and compressing the whole session on every commit costs more than
the commit itself, so the guard first bounds the length from the JSON's
length and the lengths that depend only on the application's settings,
which it measures once; it signs for real only near the limit. The bounds
mirror what Flask's :class:`~flask.sessions.SecureCookieSessionInterface`
and itsdangerous write; where an application's interface or serializer
differs, the guard measures the real cookie instead.
"""

from __future__ import annotations

import json
import typing as t

from flask import Flask
from flask import session
from flask.json.provider import DefaultJSONProvider
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from flask.sessions import SessionMixin
from werkzeug.http import dump_cookie

from ..errors import ConversationError
from ..serialization import default_tags_only
from ..serialization import is_plain


class CookieGuard:
    """Refuses a session that Flask's cookie session could not deliver,
    caching per application the lengths that depend only on its settings.
    """

    def __init__(self) -> None:
        self._cookie_overheads: Lengths = {}
        self._signature_lengths: Lengths = {}

    def check(self, app: Flask, current: SessionMixin, key: str, value: dict[str, t.Any]) -> None:
        """Refuse to store ``value`` under ``key`` of the current session if
        the session cookie would grow past ``MAX_COOKIE_SIZE``: a browser
        drops a cookie over its limit without a word, which would lose every
        conversation of the user.

        :param app: the current application.
        :param current: the current session (not its proxy).
        :param key: the session key.
        :param value: what the session would hold under ``key``.
        :raise ConversationError: the cookie would not fit.
        """
        interface = app.session_interface
        if not isinstance(interface, SecureCookieSessionInterface):
            return
        limit = app.config["MAX_COOKIE_SIZE"]
        if not limit or not app.secret_key:
            return
        length = strings_bound(current, key, value) if _stock(interface) else None
        if length is None:
            length = json_bound(app, interface, current, key, value)
        if length is not None and (
            encoded_length(length)
            + signature_length(app, interface, self._signature_lengths)
            + cookie_overhead(app, interface, self._cookie_overheads, current)
            <= limit
        ):
            return
        serializer = interface.get_signing_serializer(app)
        if serializer is None:
            return
        size = cookie_size(app, interface, serializer.dumps({**current, key: value}), current)
        if size > limit:
            raise ConversationError(
                f"The conversations no longer fit in the session cookie ({size} bytes,"
                f" the limit MAX_COOKIE_SIZE is {limit}); nothing was saved. Keep"
                ' conversations on the server: set CONVERSATION_STORE = "redis" (or'
                ' "memory" for a single process), or use a server-side session.'
            )


#: Lengths cached by the settings they depend on.
Lengths: t.TypeAlias = "dict[t.Any, int]"

#: The most settings a cache of lengths keeps; more are measured again.
_CACHED_SETTINGS = 64


def _remember(cache: Lengths | None, settings: t.Any, length: int) -> int:
    if cache is not None:
        if len(cache) >= _CACHED_SETTINGS:
            cache.clear()
        cache[settings] = length
    return length


#: The config keys Flask's own cookie session reads to write the cookie.
_COOKIE_CONFIG = (
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "APPLICATION_ROOT",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
)


def cookie_size(
    app: Flask,
    interface: SecureCookieSessionInterface,
    value: str,
    current: SessionMixin | None = None,
) -> int:
    """The length of the ``Set-Cookie`` header value Flask writes for the
    session cookie holding ``value``.

    :param current: the session, by default the current one.
    """
    if current is None:
        current = session._get_current_object()  # type: ignore[attr-defined]
    return len(
        dump_cookie(
            interface.get_cookie_name(app),
            value,
            expires=interface.get_expiration_time(app, t.cast(SessionMixin, current)),
            path=interface.get_cookie_path(app),
            domain=interface.get_cookie_domain(app),
            secure=interface.get_cookie_secure(app),
            httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app),
            partitioned=interface.get_cookie_partitioned(app),
            max_size=0,
        )
    )


def cookie_overhead(
    app: Flask,
    interface: SecureCookieSessionInterface,
    cache: Lengths | None = None,
    current: SessionMixin | None = None,
) -> int:
    """The length of the cookie Flask writes, less that of its value, for
    a value that needs no quoting (as the bound's ``"a" * n`` would).

    Flask's own interface builds it from the config and whether the
    session is permanent (an expiry date always has the same length), so
    it is measured once per such settings; a subclass may build it
    otherwise and is measured every time.

    :param current: the session, by default the current one.
    """
    if current is None:
        current = session._get_current_object()  # type: ignore[attr-defined]
    if type(interface) is not SecureCookieSessionInterface:
        return cookie_size(app, interface, "", current)
    settings = (*map(app.config.get, _COOKIE_CONFIG), bool(t.cast(SessionMixin, current).permanent))
    length = None if cache is None else cache.get(settings)
    if length is None:
        length = _remember(cache, settings, cookie_size(app, interface, "", current))
    return length


def value_bound(
    app: Flask,
    interface: SecureCookieSessionInterface,
    current: t.Mapping[str, t.Any],
    key: str,
    all_ns: dict[str, t.Any],
    cache: Lengths | None = None,
) -> int | None:
    """An upper bound of the length of the cookie value Flask's own cookie
    session writes for ``current`` holding ``all_ns`` under ``key`` (plain
    ASCII), or ``None`` where the session is serialized differently.

    Signing compresses the JSON only when that makes it shorter, then
    writes it in unpadded base64 (with a ``.`` in front when compressed)
    followed by the separators, the timestamp and the signature, whose
    lengths do not depend on the payload. Measuring the JSON (see
    :func:`json_bound`) and one empty signature skips the compression and
    signing of the whole session on every commit that is clearly under the
    limit.
    """
    length = json_bound(app, interface, current, key, all_ns)
    if length is None:
        return None
    return encoded_length(length) + signature_length(app, interface, cache)


def encoded_length(json_length: int) -> int:
    """An upper bound of the payload's length in the signed value for JSON
    of ``json_length`` bytes: unpadded base64 of it, with a ``.`` in front
    when compressed (only when that makes it shorter).

    :param json_length: the bytes of the JSON.
    """
    return 1 + (4 * json_length + 2) // 3


def signature_length(
    app: Flask, interface: SecureCookieSessionInterface, cache: Lengths | None = None
) -> int:
    """The length of the signed value less that of its payload, with room
    for a timestamp that grows by a byte before the real signing.

    :param cache: the lengths measured so far, by digest.
    """
    # The length of an empty signed value depends only on the digest: the
    # key, its derivation and the salt change the signature's bytes, never
    # its length.
    digest = interface.digest_method
    length = None if cache is None else cache.get(digest)
    if length is None:
        serializer = interface.get_signing_serializer(app)
        assert serializer is not None
        length = _remember(cache, digest, len(serializer.make_signer(serializer.salt).sign(b"")))
    return length + 2


#: Measures JSON as Flask's own JSON provider writes it, at most as long:
#: built once, with the separators of the session serializer and
#: ``ensure_ascii`` on, so that each character is one byte (with it off,
#: Flask writes a non-ASCII character in fewer bytes than its escape).
_MEASURE = json.JSONEncoder(separators=(",", ":"))


def _json_length(app: Flask, value: t.Any) -> int:
    # The provider's keys are sorted or not: the length is the same.
    if type(app.json).dumps is DefaultJSONProvider.dumps:
        try:
            return len(_MEASURE.encode(value))
        except TypeError:
            pass  # a value only the provider's ``default`` writes
    return len(app.json.dumps(value, separators=(",", ":")).encode())


def _stock(interface: SecureCookieSessionInterface) -> bool:
    # Flask's own signing of Flask's own tagged JSON, with only its own tags.
    serializer = interface.serializer
    return (
        type(interface).get_signing_serializer
        is SecureCookieSessionInterface.get_signing_serializer
        and type(serializer) is TaggedJSONSerializer
        and default_tags_only(serializer)
    )


def strings_bound(current: t.Mapping[str, t.Any], key: str, all_ns: dict[str, t.Any]) -> int | None:
    """An upper bound of the bytes of the JSON of ``current`` holding
    ``all_ns`` under ``key``, from lengths alone, where everything else the
    session holds is a string and ``all_ns`` holds the session store's
    strings; else ``None``. The common session costs a sum, without
    encoding anything.

    A string's JSON is its quotes and at most six bytes per character
    (``\\u0001``), twelve outside the BMP (a surrogate pair). Where a
    string is printable ASCII, as the store's JSON texts are, each of its
    characters is one byte but a quote or a backslash, which gets one more.
    Tagging leaves all of it as it is, but a one-key mapping of namespaces
    or of records whose key looks like a tag, which it wraps (10 more
    bytes).

    :param current: the session.
    :param key: the store's session key.
    :param all_ns: what the session would hold under ``key``.
    """
    # The braces, the key in quotes and its colon; each entry below counts
    # its colon and comma.
    length = 2 + len(key) + 3 + 10 * (1 + len(all_ns))
    for k, v in current.items():
        if k == key:
            continue
        if type(v) is not str or type(k) is not str:
            return None
        length += _string_bound(k) + _string_bound(v) + 2
    length += 2
    for namespace, records in all_ns.items():
        if type(records) is not dict:
            return None
        # Its colon, comma and the braces of its records.
        length += _string_bound(namespace) + 4
        for cid, text in records.items():
            if type(text) is not str:
                return None
            length += _string_bound(cid) + _string_bound(text) + 2
    return length


def _string_bound(text: str) -> int:
    if text.isascii():
        if text.isprintable():
            return len(text) + text.count('"') + text.count("\\") + 2
        return 6 * len(text) + 2
    return 12 * len(text) + 2


def json_bound(
    app: Flask,
    interface: SecureCookieSessionInterface,
    current: t.Mapping[str, t.Any],
    key: str,
    all_ns: dict[str, t.Any],
) -> int | None:
    """An upper bound of the bytes of the JSON of ``current`` holding
    ``all_ns`` under ``key`` (plain ASCII), or ``None`` where Flask's
    cookie session serializes it differently.

    The conversations are measured without Flask's tagging walk: they hold
    only strings, numbers, booleans and dicts, which tagging leaves as they
    are, except that it wraps a one-key dict whose key looks like a tag (10
    more bytes); only the mapping of namespaces and each namespace's
    mapping could be one, since records have more keys.
    """
    if not _stock(interface):
        return None
    serializer = interface.serializer
    slack = 10 * (1 + len(all_ns))
    rest = dict(current)
    rest.pop(key, None)
    if is_plain(rest, serializer.tags):
        # Tagging would leave the rest as it is too: one encoding of all.
        rest[key] = all_ns
        return _json_length(app, rest) + slack
    # The key is plain ASCII: its JSON is the key in quotes.
    return (
        len(serializer.dumps(rest).encode()) + len(key) + 2 + _json_length(app, all_ns) + 2 + slack
    )
