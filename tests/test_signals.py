"""SPEC 3.7: signals."""

from __future__ import annotations

import typing as t

import pytest
from conftest import FakeClock
from flask import Flask

from flask_conversation import Conversation
from flask_conversation import conversation_begun
from flask_conversation import conversation_destroyed
from flask_conversation import conversation_ended
from flask_conversation import ConversationScope
from flask_conversation.testing import ConversationClient


@pytest.fixture
def events(app: Flask) -> t.Iterator[list[tuple[str, t.Any]]]:
    received: list[tuple[str, t.Any]] = []

    def begun(sender: Flask, conversation: Conversation) -> None:
        assert sender is app
        received.append(("begun", conversation.id))

    def ended(sender: Flask, conversation: Conversation) -> None:
        received.append(("ended", conversation.id))

    def destroyed(sender: Flask, cid: str, namespace: str, reason: str) -> None:
        assert namespace
        received.append(("destroyed", (cid, reason)))

    with (
        conversation_begun.connected_to(begun, app),
        conversation_ended.connected_to(ended, app),
        conversation_destroyed.connected_to(destroyed, app),
    ):
        yield received


def test_begin_and_end(events: list[tuple[str, t.Any]], api: ConversationClient) -> None:
    root = api.post("/begin").json["id"]
    child = api.post("/begin", json={"nested": True}).json["id"]
    api.post("/begin", json={"join": True})  # nothing new
    api.post("/end")
    api.post("/end")
    assert events == [
        ("begun", root),
        ("begun", child),
        ("ended", child),
        ("destroyed", (child, "ended")),
        ("ended", root),
        ("destroyed", (root, "ended")),
    ]


def test_descendants_destroyed_with_reason_ended(
    events: list[tuple[str, t.Any]], api: ConversationClient
) -> None:
    root = api.post("/begin").json["id"]
    child = api.post("/begin", json={"nested": True}).json["id"]
    grandchild = api.post("/begin", json={"nested": True}).json["id"]
    events.clear()
    api.post(f"/end?cid={root}")
    assert events[0] == ("ended", root)
    assert sorted(events[1:]) == sorted(
        [("destroyed", (c, "ended")) for c in (root, child, grandchild)]
    )


def test_temporary_sends_nothing(events: list[tuple[str, t.Any]], api: ConversationClient) -> None:
    api.post("/set", json={"a": 1})
    assert events == []


def test_evicted(
    app: Flask, events: list[tuple[str, t.Any]], api: ConversationClient, clock: FakeClock
) -> None:
    app.config["CONVERSATION_MAX_COUNT"] = 1
    first = api.post("/begin").json["id"]
    clock.advance(1)
    second = api.new_tab().post("/begin").json["id"]
    assert events == [("begun", first), ("begun", second), ("destroyed", (first, "evicted"))]


def test_expired_reported_when_noticed(
    store_kind: str, events: list[tuple[str, t.Any]], api: ConversationClient, clock: FakeClock
) -> None:
    old = api.post("/begin", json={"timeout": 10}).json["id"]
    clock.advance(11)
    api.new_tab().post("/begin")
    assert ("destroyed", (old, "expired")) in events
    assert [e for e in events if e[0] == "destroyed"] == [("destroyed", (old, "expired"))]


def test_end_all(app: Flask, events: list[tuple[str, t.Any]], api: ConversationClient) -> None:
    @app.post("/logout")
    def logout() -> str:
        scope: ConversationScope = app.extensions["conversation"]
        scope.end_all()
        return "bye"

    a = api.post("/begin").json["id"]
    b = api.post("/begin", json={"nested": True}).json["id"]
    c = api.new_tab().post("/begin").json["id"]
    events.clear()
    rv = api.post("/logout")
    assert "X-Conversation-Id" not in rv.headers
    assert sorted(events) == sorted(("destroyed", (x, "cleared")) for x in (a, b, c))
    for cid in (a, b, c):
        assert api.get(f"/show?cid={cid}").status_code == 404
