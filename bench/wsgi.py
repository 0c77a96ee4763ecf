"""Drive a Flask application's WSGI callable directly, without sockets or
a test client, so that what is measured is the application's own work.
"""

from __future__ import annotations

import io
import typing as t

from flask import Flask
from werkzeug.test import EnvironBuilder

from .timing import Call


class BadResponse(AssertionError):
    """A benchmarked request did not answer as the benchmark expects."""


def prepare(
    app: Flask,
    path: str,
    *,
    method: str = "GET",
    query: dict[str, str] | None = None,
    cookie: str | None = None,
    data: dict[str, str] | None = None,
) -> tuple[dict[str, t.Any], bytes]:
    """Build a WSGI environ once, to be copied for every request.

    :param app: the application (for its server name and root path).
    :param path: the request path.
    :param method: the HTTP method.
    :param query: query string parameters.
    :param cookie: the value of the ``Cookie`` header.
    :param data: form fields, sent urlencoded.
    """
    headers = {"Cookie": cookie} if cookie else {}
    builder = EnvironBuilder(
        path=path, method=method, query_string=query, headers=headers, data=data
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    body = environ["wsgi.input"].read()
    return environ, body


def caller(
    app: Flask,
    environ: dict[str, t.Any],
    body: bytes = b"",
    expect_status: int = 200,
    expect_header: str | None = None,
) -> Call:
    """A call that sends the prepared request through ``app.wsgi_app``.
    It is run once here, checking the answer, so that a benchmark never
    times error pages.

    :param app: the application.
    :param environ: the prepared environ (copied per request).
    :param body: the request body.
    :param expect_status: the status the request must get.
    :param expect_header: a response header the request must get.
    """
    wsgi = app.wsgi_app
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        seen.append((status, headers))
        return None

    def call() -> None:
        env = environ.copy()
        env["wsgi.input"] = io.BytesIO(body)
        rv = wsgi(env, start_response)
        try:
            for _ in rv:
                pass
        finally:
            close = getattr(rv, "close", None)
            if close is not None:
                close()

    call()
    status, headers = seen[-1]
    if int(status.split()[0]) != expect_status:
        raise BadResponse(f"{environ['PATH_INFO']}: expected {expect_status}, got {status}")
    if expect_header is not None and expect_header not in dict(headers):
        raise BadResponse(f"{environ['PATH_INFO']}: no {expect_header} header in {headers}")

    def timed_call() -> None:
        call()
        seen.clear()

    timed_call()
    return timed_call
