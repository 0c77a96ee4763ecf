"""The examples pick their store from the environment as documented:
``REDIS_URL`` switches the booking site and the bot to Redis, and
``DATABASE_URL`` the booking site to a SQL database. This runs against the
same throwaway servers as the other tests.
"""

from __future__ import annotations

import typing as t

import pytest
import redis
from flask import Flask

from examples import booking
from examples import bot
from examples.bot.views import SECRET_HEADER
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient
from tests.csrf import with_csrf


@pytest.fixture
def app_with_redis_url(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> t.Iterator[t.Callable[[t.Callable[..., Flask]], Flask]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    apps: list[Flask] = []

    def make(factory: t.Callable[..., Flask]) -> Flask:
        app = factory({"TESTING": True, "BOT_WEBHOOK_SECRET": "redis-secret"})
        apps.append(app)
        return app

    yield make
    for app in apps:
        ConversationScope.get_store(app).client.close()  # type: ignore[attr-defined]


def test_defaults_without_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert type(ConversationScope.get_store(booking.create_app())) is SessionStore
    assert type(ConversationScope.get_store(bot.create_app())) is MemoryStore


def test_booking_keeps_conversations_in_redis(
    app_with_redis_url: t.Callable[[t.Callable[..., Flask]], Flask], redis_url: str
) -> None:
    from flask_conversation.stores import RedisStore

    app = app_with_redis_url(booking.create_app)
    assert isinstance(ConversationScope.get_store(app), RedisStore)
    app.test_client_class = ConversationClient
    tab = with_csrf(t.cast(ConversationClient, app.test_client()), "/hotels/2")
    tab.post("/hotels/2/book")
    assert tab.cid is not None
    client = redis.Redis.from_url(redis_url)
    try:
        # Each namespace's data hash has a field per conversation.
        stored = [
            field.decode()
            for key in client.scan_iter(match="conversation:*:d")
            for field in client.hkeys(key)
        ]
    finally:
        client.close()
    assert tab.cid in stored, stored
    page = tab.get("/booking/dates")
    assert "Alpine Lodge" in page.text
    assert "Booking: Alpine Lodge" in tab.get("/").text


def test_booking_keeps_conversations_in_sql(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    import sqlalchemy as sa

    from flask_conversation.stores import SQLAlchemyStore

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    app = booking.create_app({"TESTING": True})
    store = ConversationScope.get_store(app)
    assert isinstance(store, SQLAlchemyStore)
    app.test_client_class = ConversationClient
    tab = with_csrf(t.cast(ConversationClient, app.test_client()), "/hotels/2")
    try:
        tab.post("/hotels/2/book")
        assert tab.cid is not None
        with store.engine.connect() as conn:
            ids = conn.execute(sa.select(store.tables.records.c.id)).scalars().all()
        assert ids == [tab.cid]
        page = tab.get("/booking/dates")
        assert "Alpine Lodge" in page.text
        assert "Booking: Alpine Lodge" in tab.get("/").text
    finally:
        store.engine.dispose()


def test_bot_keeps_chats_in_redis(
    app_with_redis_url: t.Callable[[t.Callable[..., Flask]], Flask],
) -> None:
    from flask_conversation.stores import RedisStore

    # Two application instances stand for two processes sharing Redis.
    one, two = app_with_redis_url(bot.create_app), app_with_redis_url(bot.create_app)
    assert isinstance(ConversationScope.get_store(one), RedisStore)
    message = {"platform": "test", "user_id": "redis-chat", "text": "Hi"}
    secret = {SECRET_HEADER: "redis-secret"}
    assert one.test_client().post("/webhook", json=message, headers=secret).json == {
        "replies": ["Count: 1", "Hi, what's your nickname?"]
    }
    rv = two.test_client().post("/webhook", json={**message, "text": "Tim"}, headers=secret)
    assert rv.json == {"replies": ["Count: 2", "Hello Tim"]}
    rv = one.test_client().post("/webhook", json={**message, "text": "/reset"}, headers=secret)
    assert rv.status_code == 200
