"""SPEC 9, caches: a response that depends on the caller's conversations
is ``Cache-Control: private`` (unless the view chose its own), and varies
on the cid header when the cid came from it, so that a shared cache never
serves one user's conversation to another. On every store.

A request that names a cid whose conversation is missing or ended gets the
same headers: whether the cid is found depends on who asks.
"""

from __future__ import annotations

from flask import Flask
from flask import request
from flask import Response
from flask.testing import FlaskClient

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.testing import ConversationClient


def private(rv: Response) -> bool:
    return rv.headers.get("Cache-Control") == "private"


def varies_on(rv: Response, header: str) -> bool:
    return header.lower() in {h.lower() for h in rv.vary}


def test_request_without_conversation_gets_no_cache_headers(api: ConversationClient) -> None:
    rv = api.get("/show")
    assert rv.status_code == 200
    assert "Cache-Control" not in rv.headers
    assert not varies_on(rv, "X-Conversation-Id")


def test_begin_is_private(api: ConversationClient) -> None:
    rv = api.post("/begin")
    assert private(rv)
    # The request named no cid: nothing to vary on.
    assert not varies_on(rv, "X-Conversation-Id")


def test_cid_from_the_header_varies_on_it(api: ConversationClient) -> None:
    cid = api.post("/begin").json["id"]
    rv = api.get("/show", headers={"X-Conversation-Id": cid})
    assert rv.json["id"] == cid
    assert private(rv) and varies_on(rv, "X-Conversation-Id")


def test_cid_from_the_query_is_private_without_vary(api: ConversationClient) -> None:
    cid = api.post("/begin").json["id"]
    rv = api.new_tab().get(f"/show?cid={cid}")
    assert rv.json["id"] == cid
    assert private(rv) and not varies_on(rv, "X-Conversation-Id")


def test_configured_header_name(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_HEADER"] = "X-Flow"
    cid = api.post("/begin").json["id"]
    rv = api.get("/show", headers={"X-Flow": cid})
    assert rv.json["id"] == cid
    assert varies_on(rv, "X-Flow") and not varies_on(rv, "X-Conversation-Id")


def test_missing_or_ended_cid_gets_them_too(api: ConversationClient) -> None:
    rv = api.get("/show", headers={"X-Conversation-Id": "never-existed"})
    assert rv.status_code == 404
    assert private(rv) and varies_on(rv, "X-Conversation-Id")
    cid = api.post("/begin").json["id"]
    api.post("/end", headers={"X-Conversation-Id": cid})
    rv = api.get("/show", headers={"X-Conversation-Id": cid})
    assert rv.status_code == 404
    assert private(rv) and varies_on(rv, "X-Conversation-Id")


def test_the_views_own_headers_are_kept(app: Flask, api: ConversationClient) -> None:
    @app.get("/no-store")
    def no_store() -> Response:
        rv = Response(str(conversation.get("n")))
        rv.headers["Cache-Control"] = "no-store"
        rv.vary.add("Accept-Encoding")
        return rv

    cid = api.post("/begin").json["id"]
    rv = api.get("/no-store", headers={"X-Conversation-Id": cid})
    assert rv.headers["Cache-Control"] == "no-store"
    assert varies_on(rv, "Accept-Encoding") and varies_on(rv, "X-Conversation-Id")


def test_namespace_from_a_header_is_private(app: Flask) -> None:
    """With a header-keyed ``namespace_loader``, a page that lists the
    caller's conversations depends on that header alone: private.
    """
    scope: ConversationScope = app.extensions["conversation"]
    scope.namespace_loader(lambda: request.headers.get("X-User"))

    @app.post("/open")
    def open_() -> str:
        conversation.begin(description=request.headers["X-User"])
        return "ok"

    @app.get("/mine")
    def mine() -> list[str | None]:
        return [c.description for c in scope.conversations()]

    # A client that sends no cid; cookies, since SessionStore keeps the
    # conversations in the session.
    client = FlaskClient(app, app.response_class, use_cookies=True)
    client.post("/open", headers={"X-User": "ada"})
    rv = client.get("/mine", headers={"X-User": "ada"})
    assert rv.json == ["ada"] and private(rv)
    # Nobody: nothing that depends on a user.
    rv = client.get("/mine")
    assert rv.json == [] and "Cache-Control" not in rv.headers


def test_private_header_is_what_cache_control_writes() -> None:
    """The header written directly is the one werkzeug's ``cache_control``
    writes into a response without ``Cache-Control``, and a view's own
    value is kept as it is.
    """
    from flask_conversation.caching import mark_private

    for kwargs in ({}, {"headers": {"Vary": "Accept"}}, {"status": 302}):
        fast = Response("x", **kwargs)  # type: ignore[arg-type]
        slow = Response("x", **kwargs)  # type: ignore[arg-type]
        mark_private(fast, "X-Conversation-Id", "query")
        slow.cache_control.private = True
        assert fast.headers.getlist("Cache-Control") == slow.headers.getlist("Cache-Control")
        assert fast.cache_control.private is True
    own = Response("x", headers={"Cache-Control": "no-store"})
    mark_private(own, "X-Conversation-Id", "header")
    assert own.headers.getlist("Cache-Control") == ["no-store"]
    assert own.headers["Vary"] == "X-Conversation-Id"


def test_vary_is_what_werkzeug_writes() -> None:
    """``add_vary`` writes the ``Vary`` that ``response.vary.add`` writes,
    with or without a ``Vary`` already there.
    """
    from flask_conversation.caching import add_vary

    for existing in (None, "Accept", "Cookie", "Accept, Cookie", "*"):
        headers = {} if existing is None else {"Vary": existing}
        fast = Response("x", headers=headers)
        slow = Response("x", headers=headers)
        for name in ("Cookie", "X-Conversation-Id"):
            add_vary(fast, name)
            slow.vary.add(name)
            assert fast.headers.getlist("Vary") == slow.headers.getlist("Vary"), existing
