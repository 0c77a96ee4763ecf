"""The redirects of the conversation scope: what a redirect does to the
conversations a request ended (the rules that read and rewrite the
response's ``Location``), and the redirect that answers an unknown cid.

An ended conversation whose cid the redirect carries survives one more
request, so that the page after the redirect can still show its data;
one ended with ``before_redirect=True`` does not, and its cid is taken out
of the ``Location``.
"""

from __future__ import annotations

import dataclasses
import typing as t
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import abort
from flask import flash
from flask import redirect
from flask import url_for

from .config import Settings
from .conversation import Conversation
from .errors import NonexistentConversation

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Response


@dataclasses.dataclass
class Ended:
    """A conversation ended in this request, kept to decide at commit
    whether it survives one more request.

    :param cid: the id it had.
    :param conversation: the conversation the request goes on with: the
        ended one, or a temporary one holding its data.
    :param before_redirect: whether it must not survive a redirect.
    """

    cid: str
    conversation: Conversation
    before_redirect: bool


def redirect_survivors(response: Response, ended: t.Sequence[Ended], param: str) -> list[Ended]:
    """Apply the redirect rules to ``response``: take the cids of
    conversations ended with ``before_redirect`` out of its ``Location``,
    and return the other ended conversations whose cid it carries, in the
    order they ended.

    :param response: the response; only a redirect (3xx with a
        ``Location``) is looked at.
    :param ended: the conversations the request ended.
    :param param: the cid's query parameter (``CONVERSATION_PARAM``).
    """
    location = response.location if 300 <= response.status_code < 400 else None
    if not location or not ended:
        return []
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    carried = {v for k, v in query if k == param}
    stripped = {e.cid for e in ended if e.before_redirect} & carried
    if stripped:
        query = [(k, v) for k, v in query if not (k == param and v in stripped)]
        response.location = urlunsplit(parts._replace(query=urlencode(query)))
    return [e for e in ended if not e.before_redirect and e.cid in carried]


def report_missing(cid: str, settings: Settings) -> t.NoReturn:
    """Raise the error for a cid that named no live conversation:
    :exc:`~flask_conversation.NonexistentConversation`, or a redirect with a
    flashed message when ``CONVERSATION_MISSING_REDIRECT`` is set.

    :param cid: the cid the request named.
    :param settings: the request's settings.
    """
    if settings.missing_redirect:
        flash(settings.missing_flash_message, settings.missing_flash_category)
        abort(redirect(url_for(settings.missing_redirect)))
    raise NonexistentConversation(cid)
