"""SPEC 3.4 and 4: SessionStore specifics: the cookie guard, and where the
records live.
"""

from __future__ import annotations

import pytest
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationError
from flask_conversation import ConversationScope
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient


@pytest.fixture
def cookie_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    ConversationScope(app)
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        return str(conversation.id)

    @app.post("/fill/<int:size>")
    def fill(size: int) -> str:
        # Random bytes do not compress: the cookie grows with the data.
        import os

        conversation["blob"] = os.urandom(size).hex()
        return "ok"

    @app.get("/size")
    def size() -> str:
        return str(len(conversation.get("blob", "")))

    return app


def test_default_store_is_session_store(cookie_app: Flask) -> None:
    assert isinstance(ConversationScope.get_store(cookie_app), SessionStore)


def test_cookie_guard_refuses_and_keeps_previous_state(cookie_app: Flask) -> None:
    client = cookie_app.test_client()
    client.post("/begin")
    assert client.post("/fill/500").status_code == 200
    with pytest.raises(ConversationError, match='CONVERSATION_STORE = "redis"') as exc:
        client.post("/fill/4000")
    assert "MAX_COOKIE_SIZE" in str(exc.value)
    assert client.get("/size").text == "1000"


def test_cookie_guard_is_500_in_production(cookie_app: Flask) -> None:
    cookie_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = cookie_app.test_client()
    cid = client.post("/begin").text
    client.post("/fill/100")
    assert client.post("/fill/4000").status_code == 500
    assert client.get(f"/size?cid={cid}").text == "200"


def test_cookie_guard_follows_max_cookie_size(cookie_app: Flask) -> None:
    cookie_app.config["MAX_COOKIE_SIZE"] = 600
    client = cookie_app.test_client()
    client.post("/begin")
    with pytest.raises(ConversationError):
        client.post("/fill/400")


def test_records_live_in_the_session(cookie_app: Flask) -> None:
    client = cookie_app.test_client()
    cid = client.post("/begin").text
    with client.session_transaction() as session:
        namespace = session["_conversation_ns"]
        assert list(session["_conversations"][namespace]) == [cid]


def test_namespace_token_only_when_begun(cookie_app: Flask) -> None:
    client = cookie_app.test_client()
    client.get("/size")
    with client.session_transaction() as session:
        assert "_conversation_ns" not in session
