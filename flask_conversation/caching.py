"""What a response tells shared caches (a CDN, a proxy) when it was built
from a user's conversations: that it is private, and that it depends on
the cid header when the cid came from there.
"""

from __future__ import annotations

import typing as t

#: The ``Cache-Control`` value of a response that only the user may cache.
PRIVATE = "private"

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Response

    from .cid import CidSource


def mark_private(response: Response, header: str, cid_source: CidSource | None) -> None:
    """``Cache-Control: private``, unless the view set ``Cache-Control``
    itself; and, when the cid came from ``header``, a ``Vary`` that names
    it (added to any ``Vary`` the response has).

    :param response: a response that depends on who asks.
    :param header: ``CONVERSATION_HEADER``.
    :param cid_source: where the request's cid came from, if it named one.
    """
    headers = response.headers
    if "Cache-Control" not in headers:
        # What ``response.cache_control.private = True`` writes into a
        # response without the header, without parsing and building it,
        # and added: there is none to replace.
        headers.add("Cache-Control", PRIVATE)
    if cid_source == "header":
        add_vary(response, header)


def add_vary(response: Response, name: str) -> None:
    """Name the request header ``name`` in the response's ``Vary``, as
    ``response.vary.add(name)`` does, without parsing and rebuilding the
    header when the response has none yet (the usual case).

    :param response: the response.
    :param name: a request header the response depends on.
    """
    if "Vary" in response.headers:
        response.vary.add(name)
    else:
        response.headers.add("Vary", name)
