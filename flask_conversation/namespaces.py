"""Where a request's conversations live: its namespace, from the
application's ``namespace_loader`` or from the browser's namespace token.

Without a ``namespace_loader``, a browser gets a random token the first
time it begins a conversation, and the token is the namespace:

-   With :class:`~.stores.SessionStore` (any store whose
    :attr:`~.stores.ConversationStore.in_session` is true) the token is kept
    in :data:`flask.session` under :data:`NAMESPACE_KEY`, next to the
    conversations themselves.
-   With every other store it is kept in a small signed cookie of its own,
    named by ``CONVERSATION_COOKIE_NAME``, so that a request which uses a
    conversation learns its namespace without Flask's session: the session
    is neither decoded nor signed for it. Setting ``CONVERSATION_COOKIE_NAME``
    to ``None`` keeps the token in the session for every store, and so does
    an application without a secret key to sign the cookie (a server-side
    session needs none).

The cookie is written only when the token is created, rotated, moved out of
the session, or refreshed, never on the other requests.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time
import typing as t

from flask import request
from flask import session
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import TimestampSigner
from werkzeug.wrappers import Response

from .caching import add_vary
from .errors import ConversationError
from .errors import NoNamespace
from .errors import NoSecretKey
from .stores.base import ConversationStore

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask

#: Session key of the token when the session carries it (and where the
#: cookie's token is found once, when an application moves to the cookie).
NAMESPACE_KEY = "_conversation_ns"

#: Separates the cookie's signatures from every other use of the secret key.
SALT = "flask-conversation.namespace"

#: What a token looks like: :func:`new_token`'s output, or an older
#: (96-bit) one that moves out of the session.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")

#: A function returning the namespace of the current request.
NamespaceLoader: t.TypeAlias = "t.Callable[[], str | None]"


class Scope(t.Protocol):
    """What the request's state asks of the extension."""

    @property
    def namespace_callback(self) -> NamespaceLoader | None:
        """The function set with ``namespace_loader``, if any."""


def new_token() -> str:
    """A new namespace token: 128 bits from :mod:`secrets`, URL-safe."""
    return secrets.token_urlsafe(16)


def signer(app: Flask, fallbacks: bool = False) -> TimestampSigner:
    """The signer of the namespace cookie: HMAC-SHA256 with the
    application's secret key, salted with :data:`SALT`, and a timestamp.

    :param app: the application.
    :param fallbacks: with the keys of ``SECRET_KEY_FALLBACKS`` instead, to
        read a cookie signed before the key changed.
    :raise NoSecretKey: the application has no secret key.
    """
    if not app.secret_key:
        raise NoSecretKey()
    keys = (app.config["SECRET_KEY_FALLBACKS"] or ()) if fallbacks else (app.secret_key,)
    return _signer(tuple(k if isinstance(k, bytes) else str(k).encode() for k in keys))


@functools.lru_cache(maxsize=16)
def _signer(keys: tuple[bytes, ...]) -> TimestampSigner:
    # itsdangerous's "hmac" key derivation, done once per key rather than
    # at every use: the same signatures, one HMAC less per request.
    derived = [hmac.new(key, SALT.encode(), hashlib.sha256).digest() for key in keys]
    return TimestampSigner(derived, salt=SALT, key_derivation="none", digest_method=hashlib.sha256)


def read_signed(signer: TimestampSigner, raw: str, max_age: int) -> tuple[str, float]:
    """The value of a cookie signed by ``signer`` and when it was signed.

    :param signer: the signer, from :func:`signer`.
    :param raw: the cookie's value.
    :param max_age: refuse a signature older than this many seconds.
    :raise BadSignature: the signature is not ``signer``'s, or it is
        expired (:exc:`~itsdangerous.SignatureExpired`).
    """
    value, signed_at = _verified(signer, raw)
    # itsdangerous's own rule, in whole seconds.
    age = int(time.time()) - int(signed_at)
    if age > max_age or age < 0:
        raise SignatureExpired(f"Signature age {age} is not within {max_age} seconds.")
    return value, signed_at


@functools.lru_cache(maxsize=4096)
def _verified(signer: TimestampSigner, raw: str) -> tuple[str, float]:
    # A user sends the same cookie with every request: its signature is
    # checked once per process and found again by a dictionary lookup.
    # Only good signatures are remembered (a raised error is not cached),
    # so forged cookies cannot crowd them out.
    value, signed_at = signer.unsign(raw, return_timestamp=True)
    return value.decode("ascii", "replace"), signed_at.timestamp()


class RequestNamespace:
    """The namespace of one request: read on first need, created by the
    first begin, rotated on demand, and given to the client once the
    request committed.

    :param app: the application handling the request.
    :param loader: the application's ``namespace_loader`` function, if any.
    :param store: the application's store; one that keeps its records in
        the session (:attr:`~.stores.ConversationStore.in_session`) keeps
        the token there too.
    """

    def __init__(
        self, app: Flask, loader: NamespaceLoader | None, store: ConversationStore
    ) -> None:
        self._app = app
        self._loader = loader
        name = app.config["CONVERSATION_COOKIE_NAME"]
        # Without a key to sign it, a cookie cannot carry the token: a
        # server-side session, which needs no key, still can.
        in_session = store.in_session or not app.secret_key
        #: the cookie carrying the token, ``None`` when the session does
        self._cookie: str | None = None if in_session else name or None
        self._value: str | None = None
        self._resolved = False
        #: the client must be given the token at the end of the request
        self._send = False
        #: the token was found in the session and moves to the cookie
        self._from_session = False
        #: ``(old, new)`` once a rotation was asked for an existing token
        self._rotation: tuple[str, str] | None = None

    @property
    def known(self) -> str | None:
        """The namespace if it was already looked up; never looks it up."""
        return self._value

    def get(self, create: bool = False) -> str | None:
        """The namespace of this request, looked up once.

        :param create: create a token if there is none yet.
        :raise NoNamespace: ``create``, and ``namespace_loader`` returned no
            namespace (403).
        :raise NoSecretKey: ``create``, no loader, and neither a cookie nor
            the session can carry a token: the application has no secret key.
        :raise TypeError: the loader returned something else than a string.
        """
        if not self._resolved:
            self._value = self._load()
            self._resolved = True
        if self._value is None and create:
            if self._loader is not None:
                # The application does not know who is asking (e.g. nobody
                # logged in): a refusal for this client, not a server error.
                raise NoNamespace()
            if self._cookie is None and self._app.session_interface.is_null_session(session):
                raise NoSecretKey()
            self._value = new_token()
            self._send = True
            if self._cookie is None:
                session[NAMESPACE_KEY] = self._value
        return self._value

    def rotate(self) -> None:
        """Ask for a new token at the end of the request, to which the
        store then moves the conversations of the current one.

        :raise ConversationError: the application's ``namespace_loader``
            owns the namespace.
        """
        if self._loader is not None:
            raise ConversationError(
                "rotate_namespace() cannot rotate a namespace that namespace_loader"
                " returns: the application owns it."
            )
        old = self.get()
        # Without a token there is nothing to move: any token this request
        # still creates is new.
        if old is not None:
            self._rotation = (old, new_token())

    def rotation(self) -> tuple[str, str] | None:
        """``(old, new)`` if this request rotates its token, for the store
        to move the conversations before :meth:`save`.
        """
        return self._rotation

    def save(self, response: Response) -> None:
        """Give the client its token, after the request's conversations were
        committed (and moved, for a rotation).

        :param response: the response about to be sent.
        """
        if self._rotation is not None:
            self._value = self._rotation[1]
            self._rotation = None
            self._send = True
            if self._cookie is None:
                session[NAMESPACE_KEY] = self._value
        if self._cookie is None or not self._resolved:
            return
        # The response depends on the cookie that named the namespace.
        add_vary(response, "Cookie")
        if not self._send or self._value is None:
            return
        self._send = False
        app = self._app
        interface = app.session_interface
        response.set_cookie(
            self._cookie,
            signer(app).sign(self._value).decode("ascii"),
            expires=interface.get_expiration_time(app, session),
            path=interface.get_cookie_path(app),
            domain=interface.get_cookie_domain(app),
            secure=interface.get_cookie_secure(app),
            # Scripts never need the token, whatever the session cookie allows.
            httponly=True,
            samesite=interface.get_cookie_samesite(app),
            partitioned=interface.get_cookie_partitioned(app),
        )
        if self._from_session:
            self._from_session = False
            session.pop(NAMESPACE_KEY, None)

    def _load(self) -> str | None:
        if self._loader is not None:
            ns = self._loader()
            if ns is not None and not isinstance(ns, str):
                raise TypeError("namespace_loader must return a str or None.")
            return ns or None
        if self._cookie is None:
            value = session.get(NAMESPACE_KEY)
            return value if isinstance(value, str) else None
        token = self._read_cookie(self._cookie)
        if token is None and self._app.config["SESSION_COOKIE_NAME"] in request.cookies:
            # Kept in the session by an earlier version or configuration:
            # adopted once, so that open conversations stay reachable.
            value = session.get(NAMESPACE_KEY)
            if isinstance(value, str) and TOKEN_RE.fullmatch(value):
                token = value
                self._from_session = self._send = True
        return token

    def _read_cookie(self, name: str) -> str | None:
        app = self._app
        raw = request.cookies.get(name)
        if not raw:
            return None
        lifetime = int(app.permanent_session_lifetime.total_seconds())
        try:
            token, signed_at = read_signed(signer(app), raw, lifetime)
        except SignatureExpired:
            return None
        except BadSignature:
            if not app.config["SECRET_KEY_FALLBACKS"]:
                return None
            try:
                token, signed_at = read_signed(signer(app, fallbacks=True), raw, lifetime)
            except BadSignature:
                return None
            # Signed again with the current key, before the old one goes.
            self._send = True
        if TOKEN_RE.fullmatch(token) is None:
            return None
        # Sliding, like a permanent session, but rewritten only once half of
        # its lifetime has passed instead of on every request.
        if app.config["SESSION_REFRESH_EACH_REQUEST"] and time.time() - signed_at > lifetime / 2:
            self._send = True
        return token
