"""The redirects of the conversation scope: what a redirect does to the
conversations a request ended, and the redirect that answers an unknown cid.

A plain redirect names its target in ``Location`` (on a 3xx response).
htmx never sees a 3xx (the browser follows it inside the request), so htmx
applications redirect with ``HX-Redirect: URL`` (a full page load) or
``HX-Location: URL`` / ``HX-Location: {"path": URL, ...}`` (an htmx
request) on a 2xx response. The rules look at all three the same way: an
ended conversation whose cid the redirect carries survives one more
request, so that the page after the redirect can still show its data; one
ended with ``before_redirect=True`` does not, and its cid is taken out of
the URL.

The URL work is plain string work: the cid pairs of a URL are found and
removed without decoding and re-encoding the rest of it, so a signed or
unusual URL (``%FF%FE``, ``a=1;b=2``, a bare ``flag``, a fragment) reaches
the browser byte for byte as the view wrote it.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from urllib.parse import unquote_plus

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from .config import Settings
from .conversation import Conversation
from .errors import NonexistentConversation

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.datastructures import Headers
    from werkzeug.sansio.request import Request


#: The request header htmx sends with each of its requests.
HX_REQUEST = "HX-Request"
#: The response header that makes htmx load a page in full.
HX_REDIRECT = "HX-Redirect"
#: The response header that makes htmx fetch a page as an htmx request.
HX_LOCATION = "HX-Location"


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
    conversations ended with ``before_redirect`` out of the URLs it
    redirects to, and return the other ended conversations whose cid they
    carry, in the order they ended.

    :param response: the response; ``Location`` of a 3xx, ``HX-Redirect``
        and ``HX-Location`` of a 2xx are looked at.
    :param ended: the conversations the request ended.
    :param param: the cid's query parameter (``CONVERSATION_PARAM``).
    """
    if not ended:
        return []
    urls = redirect_urls(response)
    carried = {cid for url in urls.values() for cid in url_cids(url, param)}
    stripped = {e.cid for e in ended if e.before_redirect} & carried
    if stripped:
        for name, url in urls.items():
            new_url = strip_cids(url, param, stripped)
            if new_url != url:
                replace_redirect_url(response, name, new_url)
    return [e for e in ended if not e.before_redirect and e.cid in carried]


def report_missing(cid: str, settings: Settings) -> t.NoReturn:
    """Raise the error for a cid that named no live conversation:
    :exc:`~flask_conversation.NonexistentConversation`, or, when
    ``CONVERSATION_MISSING_REDIRECT`` is set, a redirect there with a
    flashed message (for htmx, ``200`` with ``HX-Redirect``).

    :param cid: the cid the request named.
    :param settings: the request's settings.
    """
    if settings.missing_redirect:
        flash(settings.missing_flash_message, settings.missing_flash_category)
        abort(redirect_response(url_for(settings.missing_redirect), is_htmx(request)))
    raise NonexistentConversation(cid)


def _pairs(url: str) -> tuple[str, list[str], str]:
    """Split ``url`` into what comes before its query, the query's
    ``&``-separated pairs as written, and what follows (the fragment).
    """
    base, hash_mark, fragment = url.partition("#")
    before, question_mark, query = base.partition("?")
    if not question_mark:
        return url, [], ""
    return before, query.split("&"), hash_mark + fragment


def _decoded(pair: str) -> tuple[str, str]:
    name, _, value = pair.partition("=")
    return unquote_plus(name), unquote_plus(value)


def url_cids(url: str, param: str) -> list[str]:
    """The values of the query parameter ``param`` in ``url``, decoded, in
    order: the cids the URL carries.

    :param url: a URL as a view wrote it, absolute or relative.
    :param param: the parameter name (``CONVERSATION_PARAM``).
    """
    _, pairs, _ = _pairs(url)
    return [value for name, value in map(_decoded, pairs) if name == param]


def strip_cids(url: str, param: str, cids: t.Container[str]) -> str:
    """Remove the ``param=<cid>`` pairs whose cid is in ``cids`` from the
    query of ``url``. Every other byte stays as it was (nothing is decoded or
    re-encoded); a query left empty loses its ``?``.

    :param url: a URL as a view wrote it, absolute or relative.
    :param param: the parameter name (``CONVERSATION_PARAM``).
    :param cids: the cids to remove.
    """
    before, pairs, after = _pairs(url)

    def is_cid(pair: str) -> bool:
        name, value = _decoded(pair)
        return name == param and value in cids

    kept = [pair for pair in pairs if not is_cid(pair)]
    if len(kept) == len(pairs):
        return url
    query = "&".join(kept)
    if not query.strip("&"):
        return before + after
    return f"{before}?{query}{after}"


def _location_path(value: str) -> str | None:
    """The URL of an ``HX-Location`` value: the value itself, or the
    ``path`` of its JSON form; ``None`` if the JSON names no path.
    """
    if not value.lstrip().startswith("{"):
        return value
    try:
        data = json.loads(value)
    except ValueError:
        return None
    path = data.get("path") if isinstance(data, dict) else None
    return path if isinstance(path, str) else None


def redirect_urls(response: Response) -> dict[str, str]:
    """The URLs ``response`` sends the browser to, by header: ``Location``
    of a 3xx response, ``HX-Redirect`` and ``HX-Location`` of a 2xx one.

    :param response: the response about to be sent.
    """
    headers: Headers = response.headers
    names: tuple[str, ...]
    if 300 <= response.status_code < 400:
        names = ("Location",)
    elif 200 <= response.status_code < 300:
        names = (HX_REDIRECT, HX_LOCATION)
    else:
        return {}
    urls = {}
    for name in names:
        value = headers.get(name)
        url = _location_path(value) if name == HX_LOCATION and value else value
        if url:
            urls[name] = url
    return urls


def replace_redirect_url(response: Response, name: str, url: str) -> None:
    """Make the header ``name`` of ``response`` send the browser to ``url``
    instead of the URL :func:`redirect_urls` found there. The JSON form of
    ``HX-Location`` keeps its other members; only the ``path`` string changes.

    :param response: the response about to be sent.
    :param name: a header :func:`redirect_urls` returned.
    :param url: the new URL.
    """
    value = response.headers[name]
    if name == HX_LOCATION and value.lstrip().startswith("{"):
        value = _replace_json_path(value, url)
    else:
        value = url
    response.headers[name] = value


def _replace_json_path(value: str, url: str) -> str:
    data = json.loads(value)
    old = data["path"]
    # The path's JSON string, as common encoders write it, replaced in
    # place: the rest of the header keeps its spelling.
    for ensure_ascii in (True, False):
        token = json.dumps(old, ensure_ascii=ensure_ascii)
        if value.count(token) == 1:
            return value.replace(token, json.dumps(url, ensure_ascii=ensure_ascii))
    data["path"] = url
    return json.dumps(data)


def is_htmx(request: Request) -> bool:
    """Whether ``request`` was sent by htmx (``HX-Request: true``).

    :param request: the request.
    """
    return request.headers.get(HX_REQUEST) == "true"


def redirect_response(url: str, htmx: bool) -> Response:
    """A response that sends the browser to ``url``: a 302, or for an htmx
    request a 200 with ``HX-Redirect``, so that htmx loads the page in full
    instead of swapping it into the element that made the request.

    :param url: where to go.
    :param htmx: whether the request came from htmx.
    """
    if htmx:
        return Response(status=200, headers={HX_REDIRECT: url})
    return redirect(url)
