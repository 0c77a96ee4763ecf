"""SPEC 2.1 and 3.5: the data, its initial state, exclusions, what can be
stored, and the all-or-nothing commit.
"""

from __future__ import annotations

import datetime
import uuid

import pytest
from flask import abort
from flask import Flask
from flask import session

from flask_conversation import conversation
from flask_conversation import ConversationError
from flask_conversation.testing import ConversationClient


@pytest.fixture
def views(app: Flask) -> None:
    @app.post("/append")
    def append() -> dict[str, object]:
        conversation.setdefault("cart", []).append(len(conversation.get("cart", [])))
        conversation.setdefault("meta", {})["count"] = len(conversation["cart"])
        return dict(conversation)

    @app.post("/reset")
    def reset() -> dict[str, object]:
        conversation.reset()
        return dict(conversation)

    @app.post("/store/<kind>")
    def store(kind: str) -> str:
        values = {
            "set": {1, 2},
            "object": object(),
            "intkeys": {1: "a"},
            "nan": float("nan"),
            "nested": {"ok": [1, {"bad": object()}]},
        }
        conversation["fine"] = "changed"
        conversation[kind] = values[kind]
        return "ok"

    @app.post("/rich")
    def rich() -> str:
        conversation["rich"] = {
            "tuple": (1, 2),
            "bytes": b"\x00\xff",
            "uuid": uuid.UUID(int=7),
            "when": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc),
        }
        return "ok"

    @app.get("/rich")
    def read_rich() -> dict[str, bool]:
        rich = conversation["rich"]
        return {
            "tuple": rich["tuple"] == (1, 2),
            "bytes": rich["bytes"] == b"\x00\xff",
            "uuid": rich["uuid"] == uuid.UUID(int=7),
            "when": rich["when"] == datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc),
        }

    @app.post("/fail")
    def fail() -> str:
        conversation["fine"] = "changed"
        raise RuntimeError("boom")

    @app.post("/abort")
    def aborted() -> str:
        conversation["fine"] = "aborted"
        abort(400)

    @app.post("/exclude")
    def exclude() -> dict[str, object]:
        conversation["user"] = "ann"
        conversation["step"] = 1
        return {
            "session": session.get("user"),
            "keys": sorted(conversation),
            "get": conversation["user"],
            "in": "user" in conversation,
        }

    @app.get("/exclude")
    def read_exclude() -> dict[str, object]:
        return {"keys": sorted(conversation), "user": conversation.get("user")}


def test_in_place_mutation_persists(views: None, api: ConversationClient) -> None:
    api.post("/begin")
    api.post("/append")
    rv = api.post("/append")
    assert rv.json == {"cart": [0, 1], "meta": {"count": 2}}
    assert api.get("/show").json["data"] == {"cart": [0, 1], "meta": {"count": 2}}


def test_initial_state_and_reset(app: Flask, views: None, api: ConversationClient) -> None:
    app.config["CONVERSATION_INITIAL_STATE"] = {"count": 0, "items": []}
    assert api.get("/show").json["data"] == {"count": 0, "items": []}
    api.post("/begin")
    api.post("/set", json={"count": 3, "other": True})
    assert api.post("/reset").json == {"count": 0, "items": []}
    assert api.get("/show").json["data"] == {"count": 0, "items": []}


def test_initial_state_is_deep_copied(app: Flask, views: None, api: ConversationClient) -> None:
    initial: dict[str, list[int]] = {"cart": []}
    app.config["CONVERSATION_INITIAL_STATE"] = initial
    api.post("/begin")
    api.post("/append")
    assert initial == {"cart": []}
    assert api.new_tab().get("/show").json["data"] == {"cart": []}


def test_update_is_shallow_merge(api: ConversationClient) -> None:
    api.post("/begin")
    api.post("/set", json={"a": {"x": 1}, "b": 1})
    assert api.post("/set", json={"a": {"y": 2}}).json["data"] == {"a": {"y": 2}, "b": 1}


def test_rich_values_round_trip(views: None, api: ConversationClient) -> None:
    api.post("/begin")
    api.post("/rich")
    assert api.get("/rich").json == {"tuple": True, "bytes": True, "uuid": True, "when": True}


@pytest.mark.parametrize("kind", ["set", "object", "intkeys", "nan", "nested"])
def test_unstorable_value_names_the_key(views: None, api: ConversationClient, kind: str) -> None:
    api.post("/begin")
    api.post("/set", json={"fine": "before"})
    with pytest.raises(ConversationError, match=repr(kind)):
        api.post(f"/store/{kind}")
    assert api.get("/show").json["data"] == {"fine": "before"}


def test_unstorable_value_in_temporary_is_fine(views: None, api: ConversationClient) -> None:
    assert api.post("/store/object").status_code == 200


def test_unstorable_value_is_500_without_propagation(
    app: Flask, views: None, api: ConversationClient
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    cid = api.post("/begin").json["id"]
    api.post("/set", json={"fine": "before"})
    assert api.post("/store/object").status_code == 500
    assert api.get(f"/show?cid={cid}").json["data"] == {"fine": "before"}


def test_max_size(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_MAX_SIZE"] = 100
    api.post("/begin")
    api.post("/set", json={"small": "x"})
    rv = api.post("/set", json={"big": "y" * 200})
    assert rv.status_code == 413 and "&#39;big&#39;" in rv.text
    assert api.get("/show").json["data"] == {"small": "x"}


def test_unhandled_exception_commits_nothing(
    app: Flask, views: None, api: ConversationClient
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    cid = api.post("/begin").json["id"]
    api.post("/set", json={"fine": "before"})
    assert api.post("/fail").status_code == 500
    assert api.get(f"/show?cid={cid}").json["data"] == {"fine": "before"}


def test_unhandled_exception_does_not_keep_a_new_conversation(app: Flask) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.post("/begin-fail")
    def begin_fail() -> str:
        conversation.begin(id="never")
        raise RuntimeError("boom")

    @app.get("/probe")
    def probe() -> str:
        return str(conversation.id)

    client = app.test_client()
    assert client.post("/begin-fail").status_code == 500
    assert client.get("/probe?cid=never").status_code == 404


def test_abort_still_commits(views: None, api: ConversationClient) -> None:
    api.post("/begin")
    assert api.post("/abort").status_code == 400
    assert api.get("/show").json["data"] == {"fine": "aborted"}


def test_exclude_keys_live_in_the_session(app: Flask, views: None, api: ConversationClient) -> None:
    app.config["CONVERSATION_EXCLUDE"] = {"user"}
    api.post("/begin")
    assert api.post("/exclude").json == {
        "session": "ann",
        "keys": ["step"],
        "get": "ann",
        "in": True,
    }
    other = api.new_tab()
    assert other.get("/exclude").json == {"keys": [], "user": "ann"}
    assert api.get("/exclude").json == {"keys": ["step"], "user": "ann"}
