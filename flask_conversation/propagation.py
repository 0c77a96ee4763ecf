"""How the cid travels: written into URLs and forms.

Reading it from a request is :func:`~.cid.read_cid`'s cheap string work.
Writing it asks the request's state for the cid to propagate, which resolves
the conversation on first use.
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import has_request_context
from flask import request
from flask import url_for
from markupsafe import escape
from markupsafe import Markup

from .cid import read_cid
from .context import current_conversation
from .context import get_state


def request_names_cid() -> bool:
    """Whether the current request names a cid, without resolving it;
    ``False`` outside of a request.
    """
    if not has_request_context():
        return False
    config = current_app.config
    return (
        read_cid(request, config["CONVERSATION_PARAM"], config["CONVERSATION_HEADER"]) is not None
    )


def current_cid() -> str | None:
    """The cid to propagate from the current request: the current
    long-running conversation's id, or that of a conversation ended in this
    request that survives a redirect; ``None`` otherwise and outside of a
    request.
    """
    if not has_request_context():
        return None
    current_conversation()  # reports an unknown cid on first use
    return get_state().cid_to_propagate()


def url_for_cid(endpoint: str, **values: t.Any) -> str:
    """Like :func:`flask.url_for`, adding the cid to propagate as the
    ``CONVERSATION_PARAM`` query parameter. A value given for that parameter
    wins (pass ``None`` to leave it out). Also a Jinja global.

    :param endpoint: the endpoint of the URL.
    :param values: the arguments of :func:`flask.url_for`.
    """
    param = current_app.config["CONVERSATION_PARAM"]
    if param not in values:
        cid = current_cid()
        if cid is not None:
            values[param] = cid
    return url_for(endpoint, **values)


def conversation_field() -> Markup:
    """A hidden form field carrying the cid to propagate, or empty markup
    when there is none. A Jinja global: ``{{ conversation_field() }}``.
    """
    cid = current_cid()
    if cid is None:
        return Markup("")
    param = current_app.config["CONVERSATION_PARAM"]
    # Escaped one by one: Markup's % operator costs twice as much.
    return Markup(f'<input type="hidden" name="{escape(param)}" value="{escape(cid)}">')


def auto_propagate(endpoint: str, values: dict[str, t.Any]) -> None:
    """``url_defaults`` callback: with ``CONVERSATION_AUTO_PROPAGATE``, add
    the cid to every URL built for an endpoint other than ``static``.

    :param endpoint: the endpoint being built.
    :param values: the URL values, modified in place.
    """
    if not current_app.config["CONVERSATION_AUTO_PROPAGATE"]:
        return
    if endpoint == "static" or endpoint.endswith(".static"):
        return
    param = current_app.config["CONVERSATION_PARAM"]
    if param in values:
        return
    cid = current_cid()
    if cid is not None:
        values[param] = cid
