"""A test client that behaves like one browser tab."""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs

from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

if t.TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import WSGIEnvironment


class ConversationClient(FlaskClient):
    """A :class:`~flask.testing.FlaskClient` that propagates the
    conversation like a browser tab following the application's links: it
    remembers the cid of the last ``X-Conversation-Id`` response header and
    sends it with the next request, and forgets it when a response to a
    request that carried it comes back without the header. A cid given
    explicitly in a request (query string, form or header) wins.

    .. code-block:: python

        app.test_client_class = ConversationClient
        tab = app.test_client()
        tab.post("/book/1")             # begins a conversation
        other = tab.new_tab()           # same cookies, no cid
        assert tab.cid != other.cid

    .. versionadded:: 0.1
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: The cid this tab sends with its next request.
        self.cid: str | None = None
        self._sent: str | None = None

    @property
    def _header(self) -> str:
        return str(self.application.config.get("CONVERSATION_HEADER", "X-Conversation-Id"))

    def new_tab(self) -> ConversationClient:
        """Another tab of the same browser: it shares this client's cookie
        jar and starts without a cid.
        """
        tab = type(self)(self.application, self.response_wrapper, use_cookies=True)
        tab._cookies = self._cookies
        tab.environ_base = dict(self.environ_base)
        return tab

    def run_wsgi_app(
        self, environ: WSGIEnvironment, buffered: bool = False
    ) -> tuple[t.Iterable[bytes], str, Headers]:
        """Send the remembered cid, run the request, then remember the cid
        of its response.

        :meta private:
        """
        key = "HTTP_" + self._header.upper().replace("-", "_")
        explicit = environ.get(key)
        # A redirect rebuilds the request from the previous environ: a header
        # that we added then is not an explicit choice.
        if explicit is None or explicit == self._sent:
            if self.cid is not None:
                environ[key] = self.cid
            else:
                environ.pop(key, None)
        param = str(self.application.config.get("CONVERSATION_PARAM", "cid"))
        carried = {environ.get(key)}
        carried.update(parse_qs(environ.get("QUERY_STRING", "")).get(param, ()))
        self._sent = environ.get(key)

        rv = super().run_wsgi_app(environ, buffered)
        returned = rv[2].get(self._header)
        if returned:
            self.cid = returned
        elif self.cid is not None and self.cid in carried:
            self.cid = None
        return rv
