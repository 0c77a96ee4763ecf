"""Load, bounded in count and time, on loopback only.

-   10,000 conversations begun and abandoned, each by another user: the
    MemoryStore never holds more than ``max_size`` records and its memory
    stops growing; Redis holds only what has not expired yet, and nothing
    once the timeout has passed.
-   A mixed load from several browsers against gunicorn with RedisStore
    (the fast version of ``soak.py``): no 5xx other than documented 503s,
    no lost update, every ended conversation's final state checked.

The numbers of each run are written to ``tests/artifacts/``.
"""

from __future__ import annotations

import gc
import secrets
import time
import typing as t
from pathlib import Path

import redis
from flask import Flask
from flask import jsonify
from flask import request

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import RedisStore
from tests.hardening.instrumented import write_artifact
from tests.hardening.processes import Gunicorn
from tests.hardening.processes import RedisProcess
from tests.hardening.soak import keys_by_kind
from tests.hardening.soak import run_load
from tests.hardening.soak import wait_for_expiry

ABANDONED = 10_000


def abandoning_app(store: ConversationStore, timeout: float = 1800) -> Flask:
    """An app whose users are named by a header, as behind a chat-bot
    webhook, so that every request can be another user.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY="load", CONVERSATION_TIMEOUT=timeout)
    scope = ConversationScope(app, store=store)

    @scope.namespace_loader
    def user() -> str:
        return request.headers["X-User"]

    @app.post("/begin")
    def begin() -> t.Any:
        conversation.begin()
        conversation["payload"] = request.form["payload"]
        return jsonify(id=conversation.id)

    return app


def begin_many(
    app: Flask, count: int, start: int = 0, users: t.Sequence[str] | None = None
) -> None:
    """Begin ``count`` conversations, each as another user (``user-<n>``
    from ``start`` on, or the given ``users``).
    """
    client = app.test_client(use_cookies=False)
    names = users or [f"user-{i}" for i in range(start, start + count)]
    for name in names[:count]:
        rv = client.post(
            "/begin",
            headers={"X-User": name},
            data={"payload": secrets.token_hex(100)},
        )
        assert rv.status_code == 200


def test_abandoned_conversations_memory_store() -> None:
    """``max_size`` bounds the records, the namespace index and the locks;
    after the first ``max_size`` conversations, 9,000 more add no memory
    beyond noise.
    """
    store = MemoryStore(max_size=500)
    app = abandoning_app(store)
    begin_many(app, 1000)
    gc.collect()
    warm = len(gc.get_objects())
    for batch in range(9):
        begin_many(app, 1000, start=1000 * (batch + 1))
        assert len(store) <= 500
        assert len(store.namespaces()) <= 500
        assert len(store._locks) == 0
    gc.collect()
    end = len(gc.get_objects())
    write_artifact(
        "abandoned-memory",
        {
            "conversations": ABANDONED,
            "max_size": 500,
            "records_kept": len(store),
            "namespaces_kept": len(store.namespaces()),
            "live_objects_after_1000": warm,
            "live_objects_after_10000": end,
        },
    )
    # Keeping what 9,000 more conversations left behind would mean tens of
    # thousands of objects (a record, its key, its strings, each).
    assert end - warm < 2_000, (warm, end)


def test_abandoned_conversations_redis_expire(fast_redis: RedisProcess) -> None:
    """Every key the store writes carries a time to live, so 10,000
    abandoned conversations leave no record, lock or index behind once
    their timeout has passed.
    """
    client = redis.Redis.from_url(fast_redis.url)
    try:
        store = RedisStore(client)
        app = abandoning_app(store, timeout=2)
        started = time.monotonic()
        peak = 0
        for batch in range(10):
            begin_many(app, ABANDONED // 10, start=batch * ABANDONED // 10)
            keys = keys_by_kind(client)
            assert keys.get("records_without_ttl", 0) == 0
            assert keys.get("locks", 0) == 0
            peak = max(peak, keys.get("records", 0))
        seconds = time.monotonic() - started
        after_run = keys_by_kind(client)
        after_expiry = wait_for_expiry(client, 15)
        write_artifact(
            "abandoned-redis",
            {
                "conversations": ABANDONED,
                "timeout_seconds": 2,
                "seconds": round(seconds, 1),
                "peak_records": peak,
                "keys_after_run": after_run,
                "keys_after_expiry": after_expiry,
            },
        )
        assert not any(after_expiry.get(k) for k in ("records", "locks", "indexes", "other"))
    finally:
        client.close()


def test_mixed_load_against_gunicorn(tmp_path: Path, durable_redis: RedisProcess) -> None:
    """2,000 requests from 6 browsers on 2 gunicorn workers of 4 threads:
    begin, steps, nested, end, abandon, and one conversation all browsers
    fight over. The lock timeout is short, so that some of those get the
    documented 503 busy, and none of them may lose an acknowledged update.
    """
    env = {
        "FC_REDIS_URL": durable_redis.url,
        "FC_TIMEOUT": "3",
        "FC_LOCK_TIMEOUT": "0.02",
        "FC_LOCK_LEASE": "30",
    }
    with Gunicorn(env, tmp_path / "gunicorn.log") as server:
        report = run_load(server.url, total=2000, threads=6, seed=7)
    with redis.Redis.from_url(durable_redis.url) as client:
        report.keys_after_run = keys_by_kind(client)
        report.keys_after_expiry = wait_for_expiry(client, 15)
    write_artifact("mixed-load", report.summary())

    assert report.problems == []
    assert report.other_5xx == 0
    assert report.store_503 == 0
    assert report.statuses.keys() <= {200, 404, 503}
    assert report.connection_errors == 0
    assert report.lost_updates == 0
    assert report.hot_acked > 0 and report.hot_count == report.hot_acked
    assert report.ended_checked > 0 and report.children_ended > 0
    assert report.keys_after_run.get("locks", 0) == 0
    assert not any(report.keys_after_expiry.get(k) for k in ("records", "locks", "indexes"))


def test_redis_namespace_registry_stays_bounded(fast_redis: RedisProcess) -> None:
    """With the default namespace (one per session, so one per visitor),
    what the store keeps per namespace must go when the namespace's
    conversations expire, or Redis grows with every visitor ever seen. The
    namespace registries are a fixed number of keys, and a registry forgets
    the namespaces that expired at the next commit in its shard.
    """
    from flask_conversation.stores.redis import shard_tag
    from flask_conversation.stores.redis import SHARDS

    # 201 users whose namespaces share one registry.
    users = [u for u in (f"user-{i}" for i in range(400_000)) if shard_tag(u) == "s0"][:201]
    assert len(users) == 201
    client = redis.Redis.from_url(fast_redis.url)
    try:
        app = abandoning_app(RedisStore(client), timeout=1)
        begin_many(app, 200, users=users[:200])
        keys = wait_for_expiry(client, 10)
        assert not any(keys.get(k) for k in ("records", "locks", "indexes", "other"))
        assert keys.get("registries", 0) == 1
        begin_many(app, 1, users=users[200:])
        keys = keys_by_kind(client)
        assert keys.get("registry_members") == 1, keys
        begin_many(app, 3000, start=10_000)
        assert keys_by_kind(client).get("registries", 0) <= SHARDS
    finally:
        client.close()
