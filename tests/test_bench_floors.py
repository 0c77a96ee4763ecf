"""The floors of the benchmark's figures 2 and 3 do the store work of the
extension: each reads what the extension wrote and writes what it reads
back, on the same records, with the same response headers.
"""

from __future__ import annotations

import typing as t

import pytest
import redis
from flask import Flask

from bench import apps
from bench import floors
from flask_conversation.stores.redis import RedisStore


def _step(app: Flask, cid: str, cookie: str) -> tuple[str, str]:
    rv = app.test_client(use_cookies=False).get(
        "/step", query_string={"cid": cid}, headers={"Cookie": cookie}
    )
    assert rv.status_code == 200, rv.get_data(as_text=True)
    assert rv.headers["X-Conversation-Id"] == cid
    assert rv.headers["Cache-Control"] == "private"
    assert "Cookie" in rv.headers["Vary"]
    return rv.get_data(as_text=True), apps.merge_cookies(cookie, rv.headers.getlist("Set-Cookie"))


def _alternate(conv: Flask, floor: Flask) -> list[str]:
    cid, cookie = apps.start(conv)
    bodies = []
    for app in (floor, floor, conv, floor, conv):
        body, cookie = _step(app, cid, cookie)
        bodies.append(body)
    return bodies


STEPS = [f"h-42: step {n}" for n in range(2, 7)]


def test_session_floor_shares_the_records() -> None:
    assert _alternate(apps.conversation_app(), floors.session_floor_app()) == STEPS


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_floor_shares_the_records(redis_url: str, protocol: int) -> None:
    def client() -> t.Any:
        return redis.Redis.from_url(redis_url, protocol=protocol)

    conv = apps.conversation_app(RedisStore(client(), prefix="floor:"))
    floor = floors.redis_floor_app(client(), "floor:")
    assert _alternate(conv, floor) == STEPS
    # The floor's transaction released its lock like the store's.
    assert not [k for k in client().keys("floor:*") if b":l:" in k]
