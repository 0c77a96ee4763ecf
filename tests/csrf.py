"""CSRF tokens for test clients of the web examples, which refuse a form
post without the session's token (Flask-WTF's ``CSRFProtect``).
"""

from __future__ import annotations

import re
import typing as t

from flask.testing import FlaskClient

C = t.TypeVar("C", bound=FlaskClient)

#: The hidden field every posting form of the examples carries.
CSRF_RE = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


def csrf_token(html: str) -> str:
    """The CSRF token of the first posting form of a page.

    :param html: the page.
    """
    match = CSRF_RE.search(html)
    assert match is not None, "no form with a CSRF token on the page"
    return match.group(1)


def with_csrf(client: C, page: str = "/") -> C:
    """Send the session's CSRF token, read from a form of ``page``, with
    every request of ``client`` (and of the tabs it opens), as the forms do.

    :param client: a client with a cookie jar.
    :param page: a page with a form that posts.
    """
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client.get(page).text)
    return client
