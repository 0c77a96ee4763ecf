"""SPEC 3.2: ending conversations, and the one request an ended
conversation survives after a redirect.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask import redirect
from werkzeug.wrappers import Response

from flask_conversation import conversation
from flask_conversation import ConversationStateError
from flask_conversation import end_conversation
from flask_conversation import url_for_cid
from flask_conversation.testing import ConversationClient


def test_end_on_temporary_raises(api: ConversationClient) -> None:
    with pytest.raises(ConversationStateError):
        api.post("/end")


def test_end_nested_returns_to_parent(api: ConversationClient) -> None:
    root = api.post("/begin").json["id"]
    api.post("/set", json={"a": 1})
    child = api.post("/begin", json={"nested": True}).json["id"]
    api.post("/set", json={"b": 2})
    rv = api.post("/end")
    assert rv.json["id"] == root
    assert rv.json["long_running"] is True
    assert rv.json["data"] == {"a": 1}
    assert rv.headers["X-Conversation-Id"] == root
    assert api.get(f"/show?cid={child}").status_code == 404
    assert api.get(f"/show?cid={root}").json["data"] == {"a": 1}


def test_end_nested_destroys_its_descendants(api: ConversationClient) -> None:
    root = api.post("/begin").json["id"]
    child = api.post("/begin", json={"nested": True}).json["id"]
    grandchild = api.post("/begin", json={"nested": True}).json["id"]
    # Back to the child (as with the back button), then end it.
    api.post(f"/end?cid={child}")
    assert api.get(f"/show?cid={grandchild}").status_code == 404
    assert api.get(f"/show?cid={child}").status_code == 404
    assert api.get(f"/show?cid={root}").status_code == 200


def test_end_root_becomes_temporary_and_data_stays_readable(api: ConversationClient) -> None:
    cid = api.post("/begin").json["id"]
    api.post("/set", json={"a": 1})
    rv = api.post("/end")
    assert rv.json["id"] is None
    assert rv.json["long_running"] is False
    assert rv.json["data"] == {"a": 1}
    assert "X-Conversation-Id" not in rv.headers
    assert api.get(f"/show?cid={cid}").status_code == 404


def test_end_root_true_ends_the_whole_stack_only(api: ConversationClient) -> None:
    other = api.new_tab()
    other_cid = other.post("/begin").json["id"]
    root = api.post("/begin").json["id"]
    api.post("/set", json={"a": 1})
    child = api.post("/begin", json={"nested": True}).json["id"]
    api.post("/set", json={"b": 2})
    rv = api.post("/end", json={"root": True})
    assert rv.json["id"] is None
    assert rv.json["long_running"] is False
    assert rv.json["data"] == {"a": 1, "b": 2}
    for cid in (root, child):
        assert api.get(f"/show?cid={cid}").status_code == 404
    assert other.get(f"/show?cid={other_cid}").status_code == 200


def test_end_root_leaves_other_stacks(api: ConversationClient) -> None:
    other = api.new_tab()
    other.post("/begin")
    other.post("/set", json={"mine": True})
    api.post("/begin")
    api.post("/end")
    assert other.get("/show").json["data"] == {"mine": True}


@pytest.fixture
def checkout(app: Flask, api: ConversationClient) -> ConversationClient:
    @app.post("/pay")
    def pay() -> Response:
        conversation.end(before_redirect=app.config.get("BEFORE_REDIRECT", False))
        return redirect(url_for_cid("confirm"))

    @app.post("/pay-decorated")
    @end_conversation(before_redirect=True)
    def pay_decorated() -> Response:
        return redirect(url_for_cid("confirm"))

    @app.post("/pay-plain")
    def pay_plain() -> Response:
        conversation.end()
        return redirect("/confirm")

    @app.get("/confirm")
    def confirm() -> dict[str, object]:
        conversation["seen"] = True
        return {
            "id": conversation.id,
            "long_running": conversation.long_running,
            "data": dict(conversation),
            "link": url_for_cid("confirm"),
        }

    api.post("/begin")
    api.post("/set", json={"hotel": "Ritz"})
    return api


def test_ended_conversation_survives_one_redirect(checkout: ConversationClient) -> None:
    cid = checkout.cid
    rv = checkout.post("/pay")
    assert rv.status_code == 302
    assert rv.location == f"/confirm?cid={cid}"
    rv = checkout.get(rv.location)
    assert rv.status_code == 200
    assert rv.json == {
        "id": None,
        "long_running": False,
        "data": {"hotel": "Ritz", "seen": True},
        "link": "/confirm",
    }
    assert "X-Conversation-Id" not in rv.headers
    # Reloading the confirmation is a request for an unknown cid.
    assert checkout.get(f"/confirm?cid={cid}").status_code == 404


def test_follow_redirects_shows_confirmation(checkout: ConversationClient) -> None:
    rv = checkout.post("/pay", follow_redirects=True)
    assert rv.json["data"]["hotel"] == "Ritz"
    assert checkout.cid is None


def test_before_redirect_destroys_at_once(app: Flask, checkout: ConversationClient) -> None:
    app.config["BEFORE_REDIRECT"] = True
    cid = checkout.cid
    rv = checkout.post("/pay")
    assert rv.location == "/confirm"
    assert checkout.get(f"/confirm?cid={cid}").status_code == 404


def test_before_redirect_decorator_strips_cid(checkout: ConversationClient) -> None:
    cid = checkout.cid
    rv = checkout.post("/pay-decorated")
    assert rv.location == "/confirm"
    assert checkout.get("/confirm").json["data"] == {"seen": True}
    assert checkout.get(f"/confirm?cid={cid}").status_code == 404


def test_plain_redirect_does_not_propagate(checkout: ConversationClient) -> None:
    cid = checkout.cid
    rv = checkout.post("/pay-plain")
    assert rv.location == "/confirm"
    assert checkout.get(f"/confirm?cid={cid}").status_code == 404


def test_double_submit_with_ended_cid_is_unknown(app: Flask, api: ConversationClient) -> None:
    @app.post("/finish")
    @end_conversation()
    def finish() -> str:
        return "done"

    cid = api.post("/begin").json["id"]
    assert api.post(f"/finish?cid={cid}").status_code == 200
    assert api.post(f"/finish?cid={cid}").status_code == 404
    # Without a cid the decorator is tolerant.
    assert api.post("/finish").status_code == 200


def test_end_decorator_does_not_end_when_view_raises(app: Flask, api: ConversationClient) -> None:
    @app.post("/fail")
    @end_conversation()
    def fail() -> str:
        raise KeyError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    cid = api.post("/begin").json["id"]
    assert api.post(f"/fail?cid={cid}").status_code == 500
    assert api.get(f"/show?cid={cid}").status_code == 200


def test_end_then_begin_in_one_request(app: Flask, api: ConversationClient) -> None:
    @app.post("/restart")
    def restart() -> dict[str, object]:
        conversation.end()
        conversation.begin()
        return {"id": conversation.id, "data": dict(conversation)}

    old = api.post("/begin").json["id"]
    api.post("/set", json={"a": 1})
    rv = api.post("/restart")
    assert rv.json["id"] not in (None, old)
    assert rv.json["data"] == {"a": 1}
    assert rv.headers["X-Conversation-Id"] == rv.json["id"]
    assert api.get(f"/show?cid={old}").status_code == 404
    assert api.get(f"/show?cid={rv.json['id']}").json["data"] == {"a": 1}
