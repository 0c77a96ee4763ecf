"""SPEC 3.4: timeouts, count and depth limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import FakeClock
from flask import Flask

from flask_conversation import conversation
from flask_conversation.testing import ConversationClient


def test_timeout_expires(api: ConversationClient, clock: FakeClock) -> None:
    cid = api.post("/begin").json["id"]
    clock.advance(30 * 60 + 1)
    assert api.get(f"/show?cid={cid}").status_code == 404


def test_timeout_slides_with_use(api: ConversationClient, clock: FakeClock) -> None:
    cid = api.post("/begin").json["id"]
    for _ in range(4):
        clock.advance(20 * 60)
        assert api.get(f"/show?cid={cid}").status_code == 200
    clock.advance(30 * 60 + 1)
    assert api.get(f"/show?cid={cid}").status_code == 404


@pytest.mark.parametrize("value", [timedelta(minutes=5), 300, 300.0])
def test_timeout_config(
    app: Flask, api: ConversationClient, clock: FakeClock, value: object
) -> None:
    app.config["CONVERSATION_TIMEOUT"] = value
    cid = api.post("/begin").json["id"]
    clock.advance(299)
    assert api.get(f"/show?cid={cid}").status_code == 200
    clock.advance(301)
    assert api.get(f"/show?cid={cid}").status_code == 404


@pytest.mark.parametrize("value", [timedelta(seconds=60), 60, 60.5])
def test_begin_timeout_override(api: ConversationClient, clock: FakeClock, value: object) -> None:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    cid = api.post("/begin", json={"timeout": value}).json["id"]
    clock.advance(59)
    assert api.get(f"/show?cid={cid}").status_code == 200
    clock.advance(62)
    assert api.get(f"/show?cid={cid}").status_code == 404


def test_timeout_setter(app: Flask, api: ConversationClient, clock: FakeClock) -> None:
    @app.post("/short")
    def short() -> dict[str, float]:
        conversation.timeout = timedelta(seconds=10)
        return {"timeout": conversation.timeout.total_seconds()}

    cid = api.post("/begin").json["id"]
    assert api.post("/short").json == {"timeout": 10.0}
    clock.advance(11)
    assert api.get(f"/show?cid={cid}").status_code == 404


@pytest.mark.parametrize("bad", [0, -1, "10", True])
def test_invalid_timeout(api: ConversationClient, bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        api.post("/begin", json={"timeout": bad})


def test_child_inherits_timeout_and_renews_ancestors(
    api: ConversationClient, clock: FakeClock
) -> None:
    root = api.post("/begin", json={"timeout": 100}).json["id"]
    child = api.post("/begin", json={"nested": True}).json["id"]
    for _ in range(3):
        clock.advance(90)
        assert api.get(f"/show?cid={child}").status_code == 200
    # The root was renewed by its child's use.
    assert api.get(f"/show?cid={root}").status_code == 200
    clock.advance(101)
    assert api.get(f"/show?cid={child}").status_code == 404


def test_child_own_timeout(api: ConversationClient, clock: FakeClock) -> None:
    root = api.post("/begin", json={"timeout": 1000}).json["id"]
    child = api.post("/begin", json={"nested": True, "timeout": 10}).json["id"]
    clock.advance(11)
    assert api.get(f"/show?cid={child}").status_code == 404
    assert api.get(f"/show?cid={root}").status_code == 200


def test_max_count_evicts_least_recently_used_stack(
    app: Flask, api: ConversationClient, clock: FakeClock
) -> None:
    app.config["CONVERSATION_MAX_COUNT"] = 3
    tabs = [api.new_tab() for _ in range(3)]
    ids = []
    for tab in tabs:
        ids.append(tab.post("/begin").json["id"])
        clock.advance(1)
    # Use the first again: the second is now the least recently used.
    tabs[0].get("/show")
    clock.advance(1)
    fourth = api.new_tab()
    fourth.post("/begin")
    assert tabs[1].get(f"/show?cid={ids[1]}").status_code == 404
    for i in (0, 2):
        assert tabs[i].get(f"/show?cid={ids[i]}").status_code == 200
    assert fourth.get("/show").json["long_running"] is True


def test_max_count_counts_nested_and_evicts_whole_stacks(
    app: Flask, api: ConversationClient, clock: FakeClock
) -> None:
    app.config["CONVERSATION_MAX_COUNT"] = 3
    old = api.new_tab()
    old_root = old.post("/begin").json["id"]
    old_child = old.post("/begin", json={"nested": True}).json["id"]
    clock.advance(1)
    api.post("/begin")
    clock.advance(1)
    api.post("/begin", json={"nested": True})  # 4 > 3: the old stack goes, whole
    assert old.get(f"/show?cid={old_root}").status_code == 404
    assert old.get(f"/show?cid={old_child}").status_code == 404
    assert api.get("/show").json["depth"] == 1


def test_max_count_current_stack_alone(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_MAX_COUNT"] = 2
    api.post("/begin")
    child = api.post("/begin", json={"nested": True}).json["id"]
    rv = api.post("/begin", json={"nested": True})
    assert rv.status_code == 409 and "CONVERSATION_MAX_COUNT (2)" in rv.text
    assert api.get("/show").json["id"] == child


def test_conversations_listing(app: Flask, api: ConversationClient, clock: FakeClock) -> None:
    from flask_conversation import ConversationScope

    @app.get("/list")
    def list_view() -> list[dict[str, object]]:
        scope: ConversationScope = app.extensions["conversation"]
        return [
            {
                "id": c.id,
                "description": c.description,
                "parent_id": c.parent_id,
                "depth": c.depth,
                "aware": all(
                    d.tzinfo is not None for d in (c.created_at, c.last_access, c.expires_at)
                ),
                "ttl": (c.expires_at - c.last_access).total_seconds(),
            }
            for c in scope.conversations()
        ]

    assert api.get("/list").json == []
    other = api.new_tab()
    first = other.post("/begin", json={"description": "First"}).json["id"]
    clock.advance(5)
    root = api.post("/begin", json={"description": "Booking"}).json["id"]
    clock.advance(5)
    child = api.post("/begin", json={"nested": True, "timeout": 60}).json["id"]
    clock.advance(5)
    listing = api.get("/list").json  # uses the child: most recent
    assert [c["id"] for c in listing] == [child, root, first]
    assert listing[0] == {
        "id": child,
        "description": None,
        "parent_id": root,
        "depth": 1,
        "aware": True,
        "ttl": 60.0,
    }
    assert listing[1]["description"] == "Booking"
    assert listing[2]["ttl"] == 1800.0


def test_conversations_jinja_global(app: Flask, api: ConversationClient) -> None:
    from flask import render_template_string

    @app.get("/sidebar")
    def sidebar() -> str:
        return render_template_string(
            "{% for c in conversations() %}{{ c.description }};{% endfor %}"
        )

    api.post("/begin", json={"description": "Hotel A"})
    api.new_tab().post("/begin", json={"description": "Hotel B"})
    assert sorted(api.get("/sidebar").text.rstrip(";").split(";")) == ["Hotel A", "Hotel B"]
