"""The conversation id: its shape, and where a request carries it.

Pure string work on the request it is given: no session, no store.
"""

from __future__ import annotations

import re
import typing as t

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Request

#: What a cid, generated or natural, may look like: safe in URLs and as a key.
CID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: The request bodies whose form fields may carry the cid; other bodies are
#: left unread.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def is_valid_cid(value: object) -> bool:
    """Whether ``value`` is a string a conversation id may be.

    :param value: the candidate id.
    """
    return isinstance(value, str) and CID_RE.fullmatch(value) is not None


def check_cid(value: object) -> str:
    """Return ``value`` if it is a valid conversation id.

    :param value: the candidate id.
    :raise ValueError: it is not one, with the rule in the message.
    """
    if not is_valid_cid(value):
        raise ValueError(f"Invalid conversation id {value!r}: use 1 to 64 of A-Z a-z 0-9 _ . : -")
    return t.cast(str, value)


#: Where a request's cid came from.
CidSource: t.TypeAlias = 't.Literal["query", "form", "header"]'


def read_cid(request: Request, param: str, header: str) -> str | None:
    """The cid a request names: the query string parameter ``param``, else
    the form field ``param``, else the header ``header``. The first value of
    a repeated parameter is used; an empty or blank value counts as absent.
    The value is returned as sent: check it with :func:`is_valid_cid`.

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
    if request.mimetype in FORM_TYPES:
        value = request.form.get(param)
        if value is not None and value.strip():
            return value, "form"
    value = request.headers.get(header)
    if value is not None and value.strip():
        return value, "header"
    return None
