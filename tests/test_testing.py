"""SPEC 5 and 6: ``ConversationClient`` behaves like one browser tab."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import redirect
from flask import request
from flask import session

from flask_conversation import conversation
from flask_conversation import url_for_cid
from flask_conversation.testing import ConversationClient


@pytest.fixture
def views(app: Flask) -> Flask:
    """Views that drive the conversation and report what they saw."""

    def seen() -> dict[str, t.Any]:
        return {
            "id": conversation.id,
            "stack": [c.id for c in conversation.stack] if conversation.long_running else [],
            "n": conversation.get("n"),
            "header": request.headers.get("X-Conversation-Id"),
            "arg": request.args.get("cid"),
        }

    @app.route("/show", methods=["GET", "POST"])
    def show() -> dict[str, t.Any]:
        return seen()

    @app.route("/plain", methods=["GET", "POST"])
    def plain() -> dict[str, t.Any]:
        # Never touches the conversation: no header in the response.
        return {"header": request.headers.get("X-Conversation-Id")}

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin(nested=conversation.long_running)
        conversation["n"] = request.args.get("n", type=int)
        return seen()

    @app.post("/end")
    def end() -> dict[str, t.Any]:
        conversation.end()
        return seen()

    @app.post("/begin-and-go")
    def begin_and_go() -> t.Any:
        conversation.begin(nested=conversation.long_running)
        conversation["n"] = 7
        return redirect(url_for_cid("show"))

    @app.post("/begin-and-go-plain")
    def begin_and_go_plain() -> t.Any:
        conversation.begin(nested=conversation.long_running)
        return redirect("/show")

    @app.post("/end-and-go")
    def end_and_go() -> t.Any:
        conversation.end()
        return redirect(url_for_cid("show"))

    @app.post("/cookie")
    def cookie() -> dict[str, t.Any]:
        session["seen"] = session.get("seen", 0) + 1
        return {"seen": session["seen"]}

    return app


@pytest.fixture
def tab(views: Flask) -> ConversationClient:
    return t.cast(ConversationClient, views.test_client())


def test_remembers_and_sends_the_cid(tab: ConversationClient) -> None:
    assert tab.cid is None
    assert tab.get("/show").json == {
        "id": None,
        "stack": [],
        "n": None,
        "header": None,
        "arg": None,
    }
    began = tab.post("/begin?n=1").json
    assert began is not None and tab.cid == began["id"] is not None
    shown = tab.get("/show").json
    assert shown is not None
    assert shown["id"] == tab.cid and shown["n"] == 1 and shown["header"] == tab.cid


def test_forgets_the_cid_after_a_page_that_does_not_propagate_it(
    tab: ConversationClient,
) -> None:
    tab.post("/begin?n=1")
    cid = tab.cid
    # The page never used the conversation, so it could not propagate it
    # either (its response has no header), like a link without the cid.
    assert tab.get("/plain").json == {"header": cid}
    assert tab.cid is None


def test_follows_nested_conversations(tab: ConversationClient) -> None:
    tab.post("/begin?n=1")
    root = tab.cid
    tab.post("/begin?n=2")
    child = tab.cid
    assert child not in (None, root)
    shown = tab.get("/show").json
    assert shown is not None and shown["stack"] == [root, child]
    ended = tab.post("/end").json
    assert ended is not None and ended["id"] == root
    assert tab.cid == root


def test_forgets_the_cid_when_the_conversation_ends(tab: ConversationClient) -> None:
    tab.post("/begin")
    cid = tab.cid
    assert tab.post("/end").json == {
        "id": None,
        "stack": [],
        "n": None,
        "header": cid,
        "arg": None,
    }
    assert tab.cid is None
    shown = tab.get("/show").json
    assert shown is not None and shown["header"] is None


def test_forgets_an_unknown_cid(tab: ConversationClient) -> None:
    tab.cid = "no-such-conversation"
    assert tab.get("/show").status_code == 404
    assert tab.cid is None
    assert tab.get("/show").status_code == 200


def test_explicit_cid_wins(tab: ConversationClient) -> None:
    tab.post("/begin?n=1")
    first = tab.cid
    other = tab.new_tab()
    other.post("/begin?n=2")
    second = other.cid
    assert first and second and first != second

    # In the query string: the remembered cid is not sent at all.
    shown = tab.get(f"/show?cid={second}").json
    assert shown is not None and shown["n"] == 2 and shown["header"] is None
    # The response named the other conversation, so the tab follows it.
    assert tab.cid == second

    tab.cid = first
    shown = tab.post("/show", data={"cid": second}).json
    assert shown is not None and shown["n"] == 2 and shown["header"] is None

    tab.cid = first
    shown = tab.get("/show", headers={"X-Conversation-Id": second}).json
    assert shown is not None and shown["n"] == 2 and shown["header"] == second


def test_explicit_unknown_cid_keeps_the_remembered_one(tab: ConversationClient) -> None:
    tab.post("/begin?n=1")
    cid = tab.cid
    assert tab.get("/show?cid=gone").status_code == 404
    assert tab.post("/show", data={"cid": "gone"}).status_code == 404
    assert tab.get("/show", headers={"X-Conversation-Id": "gone"}).status_code == 404
    # None of those requests carried the tab's cid: it is still there.
    assert tab.cid == cid
    shown = tab.get("/show").json
    assert shown is not None and shown["n"] == 1


def test_blank_explicit_cid_counts_as_absent(tab: ConversationClient) -> None:
    tab.post("/begin?n=1")
    shown = tab.get("/show?cid=%20").json
    assert shown is not None and shown["n"] == 1 and shown["header"] == tab.cid


def test_multipart_form_is_left_for_the_app(tab: ConversationClient) -> None:
    import io

    tab.post("/begin?n=1")
    first = tab.cid
    other = tab.new_tab()
    other.post("/begin?n=2")
    data = {"cid": other.cid, "upload": (io.BytesIO(b"x" * 100), "a.txt")}
    shown = tab.post("/show", data=data, content_type="multipart/form-data").json
    assert shown is not None and shown["n"] == 2
    assert tab.cid == other.cid
    assert first != other.cid


def test_follow_redirects_uses_the_redirect_cid(tab: ConversationClient) -> None:
    rv = tab.post("/begin-and-go", follow_redirects=True)
    assert rv.json is not None and rv.json["n"] == 7 and rv.json["arg"] == tab.cid
    root = tab.cid
    # A plain redirect carries no cid in its URL: the tab sends the one the
    # redirect response named, not the one it sent before.
    rv = tab.post("/begin-and-go-plain", follow_redirects=True)
    assert rv.json is not None
    assert rv.json["arg"] is None and rv.json["header"] == tab.cid != root
    assert rv.json["stack"] == [root, tab.cid]


def test_end_and_redirect_survives_one_request(tab: ConversationClient) -> None:
    tab.post("/begin?n=5")
    cid = tab.cid
    rv = tab.post("/end-and-go", follow_redirects=True)
    assert rv.json is not None and rv.json["n"] == 5 and rv.json["id"] is None
    assert rv.json["arg"] == cid
    assert tab.cid is None
    assert tab.get(f"/show?cid={cid}").status_code == 404


def test_new_tab_shares_cookies_not_cid(tab: ConversationClient) -> None:
    tab.post("/begin?n=1")
    cid = tab.cid
    other = tab.new_tab()
    assert other.cid is None and isinstance(other, ConversationClient)
    assert tab.post("/cookie").json == {"seen": 1}
    assert other.post("/cookie").json == {"seen": 2}
    # The same session, so the same namespace: the other tab may open the
    # first tab's conversation by naming it.
    shown = other.get(f"/show?cid={cid}").json
    assert shown is not None and shown["n"] == 1


def test_separate_clients_do_not_share(views: Flask) -> None:
    one = t.cast(ConversationClient, views.test_client())
    two = t.cast(ConversationClient, views.test_client())
    one.post("/begin?n=1")
    # Another browser: another session, so the cid is unknown there.
    assert two.get(f"/show?cid={one.cid}").status_code == 404


def test_custom_header_and_param(views: Flask) -> None:
    views.config.update(CONVERSATION_HEADER="X-Tab", CONVERSATION_PARAM="conv")
    tab = t.cast(ConversationClient, views.test_client())
    rv = tab.post("/begin?n=3")
    assert rv.headers["X-Tab"] == tab.cid is not None
    assert "X-Conversation-Id" not in rv.headers
    shown = tab.get("/show").json
    assert shown is not None and shown["n"] == 3
    other = tab.new_tab()
    shown = other.get(f"/show?conv={tab.cid}").json
    assert shown is not None and shown["n"] == 3


def test_explicit_header_wins_even_if_sent_before(tab: ConversationClient) -> None:
    tab.post("/begin?n=1")
    root = tab.cid
    tab.post("/begin?n=2")  # sent the root's cid in the header
    assert tab.cid != root
    assert root is not None
    shown = tab.get("/show", headers={"X-Conversation-Id": root}).json
    assert shown is not None and shown["id"] == root and shown["n"] == 1
