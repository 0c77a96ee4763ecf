"""SPEC 1 and 6: stacks behave like collections.ChainMap."""

from __future__ import annotations

import collections

import pytest
from flask import Flask

from flask_conversation import conversation
from flask_conversation.testing import ConversationClient


@pytest.fixture
def views(app: Flask) -> None:
    @app.get("/own")
    def own() -> dict[str, object]:
        return dict(conversation._data)

    @app.get("/semantics")
    def semantics() -> dict[str, object]:
        parent = conversation.parent
        assert parent is not None
        expected = collections.ChainMap(dict(conversation._data), dict(parent._data))
        results: dict[str, object] = {
            "len": len(conversation) == len(expected),
            "iter": list(conversation) == list(expected),
            "dict": dict(conversation) == dict(expected),
            "contains": ("a" in conversation) is True and ("zzz" in conversation) is False,
            "get": conversation.get("a") == 1 and conversation.get("zzz", 5) == 5,
        }
        for op in ("del", "pop"):
            try:
                if op == "del":
                    del conversation["a"]
                else:
                    conversation.pop("a")
            except KeyError:
                results[op] = True
            else:
                results[op] = False
        results["pop_default"] = conversation.pop("a", "d") == expected.pop("a", "d")
        results["own_pop"] = conversation.pop("b") == 2 and "b" not in conversation
        results["setdefault"] = conversation.setdefault("a", 9) == 1
        return results

    @app.get("/family")
    def family() -> dict[str, object]:
        parent = conversation.parent
        assert parent is not None
        return {
            "root_is_parent": conversation.root is parent,
            "parent_root_is_itself": parent.root is parent,
            "parent_nested": parent.nested,
            "stack": [c.id for c in conversation.stack] == [parent.id, conversation.id],
        }


@pytest.fixture
def chain_app(app: Flask, views: None, api: ConversationClient) -> ConversationClient:
    """A root with ``a`` and ``shared``, a child that shadows ``shared``."""
    api.post("/begin")
    api.post("/set", json={"a": 1, "shared": "root"})
    api.post("/begin", json={"nested": True})
    api.post("/set", json={"b": 2, "shared": "child"})
    return api


def test_reads_fall_through_and_writes_shadow(chain_app: ConversationClient) -> None:
    rv = chain_app.get("/show")
    assert rv.json["data"] == {"a": 1, "shared": "child", "b": 2}
    root = rv.json["stack"][0]
    assert chain_app.get(f"/show?cid={root}").json["data"] == {"a": 1, "shared": "root"}


def test_child_starts_empty_with_initial_state(
    app: Flask, views: None, api: ConversationClient
) -> None:
    app.config["CONVERSATION_INITIAL_STATE"] = {"count": 0}
    api.post("/begin")
    api.post("/incr")
    api.post("/begin", json={"nested": True})
    assert api.get("/own").json == {}
    assert api.get("/show").json["data"] == {"count": 0, "n": 1}


def test_chainmap_semantics(chain_app: ConversationClient) -> None:
    rv = chain_app.get("/semantics")
    assert rv.json == {k: True for k in rv.json}
    assert len(rv.json) == 10


def test_parent_never_modified_from_child(chain_app: ConversationClient) -> None:
    stack = chain_app.get("/show").json["stack"]
    chain_app.post("/set", json={"a": "changed"})
    assert chain_app.get(f"/show?cid={stack[0]}").json["data"]["a"] == 1
    assert chain_app.get(f"/show?cid={stack[1]}").json["data"]["a"] == "changed"


def test_stack_parent_root(chain_app: ConversationClient) -> None:
    assert chain_app.get("/family").json == {
        "root_is_parent": True,
        "parent_root_is_itself": True,
        "parent_nested": False,
        "stack": True,
    }


def test_siblings(api: ConversationClient) -> None:
    root = api.post("/begin").json["id"]
    first = api.post("/begin", json={"nested": True}).json["id"]
    api.post("/set", json={"choice": 1})
    # The back button: the root's page, a second child.
    second = api.post(f"/begin?cid={root}", json={"nested": True}).json["id"]
    api.post("/set", json={"choice": 2})
    assert api.get(f"/show?cid={first}").json["data"] == {"choice": 1}
    assert api.get(f"/show?cid={second}").json["data"] == {"choice": 2}


def test_max_depth(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_MAX_DEPTH"] = 2
    api.post("/begin")
    assert api.post("/begin", json={"nested": True}).json["depth"] == 1
    assert api.post("/begin", json={"nested": True}).json["depth"] == 2
    rv = api.post("/begin", json={"nested": True})
    assert rv.status_code == 409 and "CONVERSATION_MAX_DEPTH (2)" in rv.text
    assert api.get("/show").json["depth"] == 2
