"""A test client that behaves like one browser tab."""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs

from flask.testing import FlaskClient
from werkzeug.datastructures import Headers
from werkzeug.formparser import parse_form_data
from werkzeug.test import TestResponse

from .cid import FORM_TYPES

if t.TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import WSGIEnvironment


class ConversationClient(FlaskClient):
    """A :class:`~flask.testing.FlaskClient` that propagates the
    conversation like a browser tab following the application's links: it
    remembers the cid of the last ``X-Conversation-Id`` response header and
    sends it (in that header) with the next request, and forgets it when a
    response to a request that carried it comes back without the header.

    A cid given explicitly in a request (query string, form field or
    header) wins: the remembered one is not sent with that request, and is
    only replaced if the response names another.

    .. code-block:: python

        app.test_client_class = ConversationClient
        tab = app.test_client()
        tab.post("/book/1")             # begins a conversation
        assert tab.cid is not None
        other = tab.new_tab()           # same cookies, no cid
        other.post("/book/2")
        assert tab.cid != other.cid

    The header and parameter names follow ``CONVERSATION_HEADER`` and
    ``CONVERSATION_PARAM``. Requests that follow a redirect
    (``follow_redirects=True``) send the cid that the redirect response
    named, as a tab does.

    .. versionadded:: 0.1
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: The cid this tab sends with its next request, ``None`` for none.
        #: Assign it to switch the tab to another conversation.
        self.cid: str | None = None
        self._following_redirect = False

    def _config(self, key: str, default: str) -> str:
        return str(self.application.config.get(key, default))

    def new_tab(self) -> ConversationClient:
        """Another tab of the same browser: it shares this client's cookie
        jar (so the session and its namespace) and starts without a cid.
        """
        tab = type(self)(
            self.application, self.response_wrapper, use_cookies=self._cookies is not None
        )
        tab._cookies = self._cookies
        tab.environ_base = dict(self.environ_base)
        tab.allow_subdomain_redirects = self.allow_subdomain_redirects
        return tab

    def resolve_redirect(self, response: TestResponse, buffered: bool = False) -> TestResponse:
        """Follow a redirect like a tab: with the cid remembered from the
        redirect response, not the one the previous request carried.

        :meta private:
        """
        self._following_redirect = True
        try:
            return super().resolve_redirect(response, buffered=buffered)
        finally:
            self._following_redirect = False

    def run_wsgi_app(
        self, environ: WSGIEnvironment, buffered: bool = False
    ) -> tuple[t.Iterable[bytes], str, Headers]:
        """Send the remembered cid unless the request names one, run the
        request, then remember the cid of its response.

        :meta private:
        """
        header = self._config("CONVERSATION_HEADER", "X-Conversation-Id")
        key = "HTTP_" + header.upper().replace("-", "_")
        if self._following_redirect:
            # werkzeug rebuilt this request from the previous one, headers
            # included: that header was this tab's, not the caller's choice.
            environ.pop(key, None)
        carried = self._explicit_cids(environ, key)
        if not carried and self.cid is not None:
            environ[key] = self.cid
            carried = {self.cid}

        rv = super().run_wsgi_app(environ, buffered)
        returned = rv[2].get(header)
        if returned:
            self.cid = returned
        elif self.cid in carried:
            self.cid = None
        return rv

    def _explicit_cids(self, environ: WSGIEnvironment, key: str) -> set[str]:
        """The cids the request names by itself, wherever the application
        may read them; blank values count as absent, as they do there.
        """
        param = self._config("CONVERSATION_PARAM", "cid")
        values = [environ.get(key) or ""]
        values += parse_qs(environ.get("QUERY_STRING", "")).get(param, [])
        values += _form_values(environ, param)
        return {v for v in values if v.strip()}


def _form_values(environ: WSGIEnvironment, name: str) -> list[str]:
    """The values of the form field ``name`` in the request body, which is
    left unread for the application. A body that cannot be rewound is not
    looked at.
    """
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    stream = environ.get("wsgi.input")
    if mimetype not in FORM_TYPES or stream is None or not stream.seekable():
        return []
    position = stream.tell()
    try:
        _, form, files = parse_form_data(environ)
        for upload in files.values():
            upload.close()
        return form.getlist(name)
    finally:
        stream.seek(position)
