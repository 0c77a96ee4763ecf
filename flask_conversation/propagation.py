"""How the cid travels: read from a request, written into URLs, forms and
response headers.

Reading is cheap string work on the request (no session, no store). Writing
asks the request's lifecycle for the cid to propagate, which resolves the
conversation on first use.
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import has_request_context
from flask import request
from flask import url_for
from flask.wrappers import Request
from markupsafe import Markup

#: Where a request's cid came from.
CidSource: t.TypeAlias = 't.Literal["query", "form", "header"]'


def read_cid(request: Request, param: str, header: str) -> str | None:
    """The cid a request names: the query string parameter ``param``, else
    the form field ``param``, else the header ``header``. The first value of
    a repeated parameter is used; an empty or blank value counts as absent.

    :param request: the request to read.
    :param param: the parameter and form field name (``CONVERSATION_PARAM``).
    :param header: the header name (``CONVERSATION_HEADER``).
    """
    found = locate_cid(request, param, header)
    return None if found is None else found[0]


def locate_cid(request: Request, param: str, header: str) -> tuple[str, CidSource] | None:
    """Like :func:`read_cid`, with where the cid was found: ``"query"``,
    ``"form"`` or ``"header"``. A response that depends on a cid from the
    header must say so in ``Vary``.

    :param request: the request to read.
    :param param: the parameter and form field name (``CONVERSATION_PARAM``).
    :param header: the header name (``CONVERSATION_HEADER``).
    """
    value = request.args.get(param)
    if value is not None and value.strip():
        return value, "query"
    # Only form bodies are parsed; other bodies are left unread.
    if request.mimetype in _FORM_TYPES:
        value = request.form.get(param)
        if value is not None and value.strip():
            return value, "form"
    value = request.headers.get(header)
    if value is not None and value.strip():
        return value, "header"
    return None


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def request_names_cid() -> bool:
    """Whether the current request names a cid, without resolving it."""
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
    from .lifecycle import current_conversation
    from .lifecycle import get_state

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
    return Markup('<input type="hidden" name="%s" value="%s">') % (param, cid)


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
