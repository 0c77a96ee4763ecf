"""SPEC 1 and 3.1: temporary and long-running conversations, begin."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationIdInUse
from flask_conversation import ConversationStateError
from flask_conversation.testing import ConversationClient


def test_every_request_has_a_temporary_conversation(api: ConversationClient) -> None:
    rv = api.get("/show")
    assert rv.json == {
        "id": None,
        "long_running": False,
        "nested": False,
        "depth": 0,
        "stack": [None],
        "data": {},
    }
    assert "X-Conversation-Id" not in rv.headers


def test_temporary_data_lasts_one_request(api: ConversationClient) -> None:
    assert api.post("/set", json={"a": 1}).json["data"] == {"a": 1}
    assert api.get("/show").json["data"] == {}


def test_begin_promotes_and_keeps_data(api: ConversationClient) -> None:
    api.post("/set", json={"ignored": 1})
    rv = api.post("/begin")
    assert rv.json["began"] is True
    cid = rv.json["id"]
    assert rv.json["long_running"] is True
    assert rv.headers["X-Conversation-Id"] == cid
    api.post("/set", json={"a": 1})
    assert api.get("/show").json["data"] == {"a": 1}
    assert api.cid == cid


def test_data_written_before_begin_in_same_request_is_kept(app: Flask) -> None:
    @app.post("/start")
    def start() -> dict[str, object]:
        conversation["before"] = 1
        conversation.begin()
        conversation["after"] = 2
        return {"id": conversation.id}

    @app.get("/read")
    def read() -> dict[str, object]:
        return dict(conversation)

    client = app.test_client()
    cid = client.post("/start").json["id"]
    assert client.get(f"/read?cid={cid}").json == {"before": 1, "after": 2}


def test_generated_ids_are_unguessable_and_url_safe(api: ConversationClient) -> None:
    ids = set()
    for _ in range(5):
        tab = api.new_tab()
        cid = tab.post("/begin").json["id"]
        assert len(cid) >= 16  # 96 bits need 16 base64 characters
        assert cid.replace("-", "").replace("_", "").isalnum()
        ids.add(cid)
    assert len(ids) == 5


@pytest.mark.parametrize("kwargs", [{"join": True}, {"nested": True}])
def test_join_or_nested_on_temporary_is_plain_begin(
    api: ConversationClient, kwargs: dict[str, bool]
) -> None:
    rv = api.post("/begin", json=kwargs)
    assert rv.json["began"] is True
    assert rv.json["long_running"] is True
    assert rv.json["nested"] is False


def test_begin_while_long_running_raises(api: ConversationClient) -> None:
    api.post("/begin")
    with pytest.raises(ConversationStateError, match="join=True or nested=True"):
        api.post("/begin")


def test_begin_join_while_long_running_is_noop(api: ConversationClient) -> None:
    cid = api.post("/begin").json["id"]
    rv = api.post("/begin", json={"join": True})
    assert rv.json["began"] is False
    assert rv.json["id"] == cid


def test_begin_nested_pushes_a_child(api: ConversationClient) -> None:
    root = api.post("/begin").json["id"]
    rv = api.post("/begin", json={"nested": True})
    assert rv.json["began"] is True
    assert rv.json["nested"] is True
    assert rv.json["stack"] == [root, rv.json["id"]]
    assert rv.json["depth"] == 1


def test_natural_id(api: ConversationClient) -> None:
    rv = api.post("/begin", json={"id": "booking-42"})
    assert rv.json["id"] == "booking-42"
    assert api.get("/show?cid=booking-42").json["long_running"] is True


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "é", "a/b", "a{b}", "a\n"])
def test_natural_id_is_validated(api: ConversationClient, bad: str) -> None:
    with pytest.raises(ValueError, match="Invalid conversation id"):
        api.post("/begin", json={"id": bad})


def test_natural_id_in_use(api: ConversationClient) -> None:
    api.post("/begin", json={"id": "x"})
    other = api.new_tab()
    with pytest.raises(ConversationIdInUse):
        other.post("/begin", json={"id": "x"})


def test_natural_id_join_switches(api: ConversationClient) -> None:
    api.post("/begin", json={"id": "x"})
    api.post("/set", json={"a": 1})
    other = api.new_tab()
    rv = other.post("/begin", json={"id": "x", "join": True})
    assert rv.json["began"] is False
    assert rv.json["id"] == "x"
    assert rv.json["data"] == {"a": 1}


def test_natural_id_while_long_running_needs_join_or_nested(api: ConversationClient) -> None:
    api.post("/begin")
    with pytest.raises(ConversationStateError):
        api.post("/begin", json={"id": "x"})


def test_natural_id_for_a_nested_child(api: ConversationClient) -> None:
    root = api.post("/begin").json["id"]
    rv = api.post("/begin", json={"nested": True, "id": "step-2"})
    assert rv.json["id"] == "step-2"
    assert rv.json["stack"] == [root, "step-2"]


def test_natural_id_join_from_another_stack(api: ConversationClient) -> None:
    api.post("/begin", json={"id": "x"})
    api.post("/set", json={"where": "x"})
    other = api.new_tab()
    other.post("/begin")
    rv = other.post("/begin", json={"id": "x", "join": True})
    assert rv.json["began"] is False
    assert rv.json["data"] == {"where": "x"}


def test_natural_id_nested_in_use_without_join(api: ConversationClient) -> None:
    api.post("/begin", json={"id": "x"})
    with pytest.raises(ConversationIdInUse):
        api.post("/begin", json={"nested": True, "id": "x"})


def test_two_tabs_never_see_each_other(api: ConversationClient) -> None:
    tab2 = api.new_tab()
    api.post("/begin")
    tab2.post("/begin")
    api.post("/set", json={"hotel": "A"})
    tab2.post("/set", json={"hotel": "B"})
    api.post("/incr")
    tab2.post("/incr")
    tab2.post("/incr")
    assert api.get("/show").json["data"] == {"hotel": "A", "n": 1}
    assert tab2.get("/show").json["data"] == {"hotel": "B", "n": 2}
    assert api.cid != tab2.cid


def test_untouched_request_has_no_session_or_store_access(app: Flask) -> None:
    @app.get("/plain")
    def plain() -> str:
        return "ok"

    client = app.test_client()
    rv = client.get("/plain?cid=whatever")
    assert rv.status_code == 200
    assert "Vary" not in rv.headers
    assert "Set-Cookie" not in rv.headers
    assert "X-Conversation-Id" not in rv.headers


def test_temporary_use_touches_no_session(app: Flask) -> None:
    @app.get("/temp")
    def temp() -> dict[str, object]:
        conversation["a"] = 1
        return {"id": conversation.id}

    rv = app.test_client().get("/temp")
    assert rv.json == {"id": None}
    assert "Vary" not in rv.headers
    assert "Set-Cookie" not in rv.headers


def test_named_cid_unused_renews_nothing(app: Flask, api: ConversationClient, clock) -> None:  # type: ignore[no-untyped-def]
    @app.get("/plain")
    def plain() -> str:
        return "ok"

    cid = api.post("/begin").json["id"]
    clock.advance(20 * 60)
    assert api.get(f"/plain?cid={cid}").status_code == 200
    clock.advance(15 * 60)
    assert api.get(f"/show?cid={cid}").status_code == 404
