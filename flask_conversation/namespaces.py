"""Where a request's conversations live: its namespace, from the
application's ``namespace_loader`` or from a random token in the session.
"""

from __future__ import annotations

import secrets
import typing as t

from flask import current_app
from flask import session

from .errors import ConversationError
from .errors import NoSecretKey

#: Session key of the default namespace token.
NAMESPACE_KEY = "_conversation_ns"

#: A function returning the namespace of the current request.
NamespaceLoader: t.TypeAlias = "t.Callable[[], str | None]"


class Scope(t.Protocol):
    """What the request's state asks of the extension."""

    @property
    def namespace_callback(self) -> NamespaceLoader | None:
        """The function set with ``namespace_loader``, if any."""


def load_namespace(loader: NamespaceLoader | None, create: bool = False) -> str | None:
    """The namespace of the current request: what ``loader`` returns, or
    without a loader the session's token.

    :param loader: the application's ``namespace_loader`` function, if any.
    :param create: create the session token if there is none yet, and
        raise if there is still no namespace.
    :raise TypeError: the loader returned something else than a string.
    :raise ConversationError: ``create`` and the loader returned none.
    :raise NoSecretKey: ``create``, no loader, and the session is
        unavailable because the application has no secret key.
    """
    if loader is not None:
        ns = loader()
        if ns is not None and not isinstance(ns, str):
            raise TypeError("namespace_loader must return a str or None.")
        namespace = ns or None
    else:
        namespace = session.get(NAMESPACE_KEY)
        if namespace is None and create:
            if current_app.session_interface.is_null_session(session):
                raise NoSecretKey()
            namespace = secrets.token_urlsafe(12)
            session[NAMESPACE_KEY] = namespace
    if namespace is None and create:
        raise ConversationError(
            "namespace_loader returned no namespace: cannot begin a conversation."
        )
    return namespace
