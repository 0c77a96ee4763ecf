"""SPEC 1 and 2.2: namespaces and the namespace loader."""

from __future__ import annotations

import pytest
from flask import Flask
from flask import request

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore


@pytest.fixture
def bot() -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True, CONVERSATION_INITIAL_STATE={"count": 0}, CONVERSATION_TIMEOUT=60
    )
    scope = ConversationScope(app, store=MemoryStore())

    @scope.namespace_loader
    def chat() -> str | None:
        payload = request.get_json(silent=True) or {}
        return f"telegram:{payload['chat']}" if "chat" in payload else None

    @app.post("/webhook")
    def webhook() -> dict[str, int]:
        conversation.begin(id="chat", join=True)
        conversation["count"] += 1
        return {"count": conversation["count"]}

    return app


def test_loader_gives_each_chat_its_state_without_cookies(bot: Flask) -> None:
    client = bot.test_client(use_cookies=False)
    for expected in (1, 2, 3):
        assert client.post("/webhook", json={"chat": 1}).json == {"count": expected}
    assert client.post("/webhook", json={"chat": 2}).json == {"count": 1}
    store = ConversationScope.get_store(bot)
    assert store.namespaces() == {"telegram:1": 1, "telegram:2": 1}


def test_loader_without_namespace_cannot_begin(bot: Flask) -> None:
    rv = bot.test_client().post("/webhook", json={})
    assert rv.status_code == 403 and "who is asking" in rv.text
    assert ConversationScope.get_store(bot).namespaces() == {}


def test_same_cid_in_two_namespaces_is_isolated(bot: Flask) -> None:
    client = bot.test_client(use_cookies=False)
    client.post("/webhook", json={"chat": "a"})
    client.post("/webhook", json={"chat": "a"})
    assert client.post("/webhook", json={"chat": "b"}).json == {"count": 1}
