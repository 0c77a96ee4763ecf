"""SPEC 3.6: one request at a time per stack, within one process."""

from __future__ import annotations

import threading
import typing as t

import pytest
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.testing import ConversationClient


@pytest.fixture
def gate(app: Flask) -> t.Iterator[dict[str, threading.Event]]:
    events = {"entered": threading.Event(), "release": threading.Event()}

    @app.post("/hold")
    def hold() -> str:
        conversation["held"] = True
        events["entered"].set()
        events["release"].wait(10)
        return "held"

    @app.post("/crash")
    def crash() -> str:
        conversation["x"] = 1
        raise RuntimeError("boom")

    yield events
    events["release"].set()


def run(fn: t.Callable[[], t.Any]) -> tuple[threading.Thread, list[t.Any]]:
    out: list[t.Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    return thread, out


def test_same_stack_waits_then_busy(
    app: Flask, gate: dict[str, threading.Event], api: ConversationClient
) -> None:
    app.config["CONVERSATION_LOCK_TIMEOUT"] = 0.2
    cid = api.post("/begin").json["id"]
    child = api.post("/begin", json={"nested": True}).json["id"]
    holder = api.new_tab()
    thread, out = run(lambda: holder.post(f"/hold?cid={cid}"))
    assert gate["entered"].wait(5)
    # The child is in the same stack: it waits for the root's lock.
    busy = api.new_tab().get(f"/show?cid={child}")
    assert busy.status_code == 503
    assert int(busy.headers["Retry-After"]) >= 1
    gate["release"].set()
    thread.join(5)
    assert out[0].status_code == 200
    assert api.new_tab().get(f"/show?cid={child}").status_code == 200


def test_other_stacks_do_not_wait(
    app: Flask, gate: dict[str, threading.Event], api: ConversationClient
) -> None:
    app.config["CONVERSATION_LOCK_TIMEOUT"] = 0.2
    first = api.post("/begin").json["id"]
    second = api.new_tab().post("/begin").json["id"]
    thread, _ = run(lambda: api.new_tab().post(f"/hold?cid={first}"))
    assert gate["entered"].wait(5)
    assert api.new_tab().post(f"/incr?cid={second}").status_code == 200
    gate["release"].set()
    thread.join(5)


def test_lock_released_after_an_error(
    app: Flask, gate: dict[str, threading.Event], api: ConversationClient
) -> None:
    app.config.update(CONVERSATION_LOCK_TIMEOUT=0.2, PROPAGATE_EXCEPTIONS=False)
    cid = api.post("/begin").json["id"]
    assert api.new_tab().post(f"/crash?cid={cid}").status_code == 500
    assert api.new_tab().get(f"/show?cid={cid}").status_code == 200


def test_lock_released_after_busy_and_404(
    app: Flask, gate: dict[str, threading.Event], api: ConversationClient
) -> None:
    cid = api.post("/begin").json["id"]
    assert api.get("/show?cid=unknown").status_code == 404
    api.post(f"/end?cid={cid}")
    assert api.get(f"/show?cid={cid}").status_code == 404
    assert held_locks(app) == 0


def held_locks(app: Flask) -> int:
    """How many stack locks the application's store holds."""
    store = ConversationScope.get_store(app)
    if hasattr(store, "_locks"):
        return len(store._locks)
    if type(store).__name__ == "SQLAlchemyStore":
        with store.engine.connect() as conn:
            return len(conn.execute(store.tables.leases.select()).all())
    from redis.cluster import RedisCluster

    client, pattern = store.client, f"{store.prefix}*:l:*"
    if isinstance(client, RedisCluster):
        return len(client.keys(pattern, target_nodes=RedisCluster.PRIMARIES))
    return len(client.keys(pattern))


@pytest.mark.parametrize("store_kind", ["memory", "redis"])
def test_two_requests_creating_one_natural_id(app: Flask, api: ConversationClient) -> None:
    """The second request waits for the first to create the conversation,
    then joins it: no count is lost.
    """
    entered, release = threading.Event(), threading.Event()

    @app.post("/chat")
    def chat() -> dict[str, int]:
        conversation.begin(id="chat", join=True)
        conversation["n"] = conversation.get("n", 0) + 1
        if not entered.is_set():
            entered.set()
            release.wait(10)
        return {"n": conversation["n"]}

    api.post("/begin")  # the browser's namespace exists before both requests
    first, first_out = run(lambda: api.new_tab().post("/chat"))
    assert entered.wait(5)
    second, second_out = run(lambda: api.new_tab().post("/chat"))
    # Without the lock, the second request would finish meanwhile.
    second.join(0.5)
    release.set()
    first.join(5)
    second.join(5)
    assert first_out[0].json == {"n": 1}
    assert second_out[0].json == {"n": 2}
