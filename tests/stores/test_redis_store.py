"""What only RedisStore promises, checked on real servers: key layout and
hash tags, JSON values, native expiry, lock leases, round trips per
request, and recovery from an outage.
"""

from __future__ import annotations

import json
import time
import typing as t

import pytest
import redis
from conftest import counted_app
from conftest import FakeClock
from flask import Flask
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from flask_conversation import BusyConversation
from flask_conversation import conversation
from flask_conversation import conversation_readonly
from flask_conversation import ConversationScope
from flask_conversation import ConversationStoreError
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.redis import RedisStore
from flask_conversation.stores.redis import shard_tag
from flask_conversation.testing import ConversationClient
from stores.store_testing import CommandLog
from stores.store_testing import counting_deployment
from stores.store_testing import Records
from tests.redis_servers import RedisServer


@pytest.fixture(params=["redis", "redis-cluster"])
def client(request: pytest.FixtureRequest) -> redis.Redis | RedisCluster:
    fixture = "redis_client" if request.param == "redis" else "redis_cluster_client"
    return t.cast("redis.Redis | RedisCluster", request.getfixturevalue(fixture))


@pytest.fixture
def store(client: redis.Redis | RedisCluster, store_clock: FakeClock) -> RedisStore:
    return RedisStore(client, clock=store_clock)


def all_keys(client: redis.Redis | RedisCluster) -> list[str]:
    if isinstance(client, RedisCluster):
        keys = client.keys(target_nodes=RedisCluster.ALL_NODES)
    else:
        keys = client.keys()
    return sorted(k.decode() for k in keys)


NAMESPACES = ["plain", "telegram:42", "a{b}c", "{", "}x{", "%7B", "", "ünï{}"]


def test_a_namespace_lives_in_one_slot(
    client: redis.Redis | RedisCluster, store: RedisStore, make: Records
) -> None:
    for ns in NAMESPACES:
        keys = store.keys(ns)
        root = make("root", namespace=ns)
        store.save(root)
        store.save(make("child", root, namespace=ns))
        acquired = store.acquire(ns, "child", 1)
        assert acquired is not None
        held = store.lock(ns, "natural-id", 1)
        assert held is not None
        mine = [key for key in all_keys(client) if key.startswith(store.base(ns))]
        # Metadata and data, whatever the stack, and a key per held lock.
        assert sorted(mine) == sorted(
            [keys.meta, keys.data, keys.lock("root"), keys.lock("natural-id")]
        )
        assert {key_slot(key.encode()) for key in mine} == {key_slot(keys.registry.encode())}
        assert client.zscore(keys.registry, ns) is not None
        store.commit(ns, CommitBatch(deletes={"root": "cleared"}, unlock={"root": acquired.token}))
        store.unlock(ns, "natural-id", held)
        assert not [k for k in all_keys(client) if k.startswith(store.base(ns))]
    # Distinct namespaces never share a key prefix.
    bases = [store.base(ns) for ns in NAMESPACES]
    assert len(set(bases)) == len(bases)
    assert not any(a != b and b.startswith(a) for a in bases for b in bases)


def test_prefix_cannot_break_the_hash_tag(client: redis.Redis | RedisCluster) -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisStore(client, prefix="app{1}:")


def test_data_is_kept_apart_from_metadata(
    client: redis.Redis | RedisCluster, store: RedisStore, make: Records
) -> None:
    record = make("root", data='{"cart":[1,"é"]}', description="Trip: 2 nights ~ é")
    store.save(record)
    keys = store.keys("ns")
    # The data as the serializer wrote it (JSON, never pickled), alone.
    assert client.hget(keys.data, "root") == record.data.encode()
    meta = client.hget(keys.meta, "root")
    assert meta is not None and b"cart" not in meta
    assert meta.decode().endswith(" Trip: 2 nights ~ é")
    assert store.load("ns", "root") == record
    for description in (None, "", " ", "a  b "):
        other = make("other", description=description)
        store.save(other)
        assert store.load("ns", "other") == other


def test_native_expiry_follows_the_last_conversation(
    client: redis.Redis | RedisCluster, store: RedisStore, make: Records, store_clock: FakeClock
) -> None:
    keys = store.keys("ns")
    store.save(make("root", timeout=600))
    # Kept a little longer than the conversation, so that the next commits
    # need not move the expiry.
    for key in (keys.meta, keys.data):
        assert 600_000 < client.pttl(key) <= 660_000
    assert client.zscore(keys.registry, "ns") == store_clock() + 660
    acquired = store.acquire("ns", "root", 1)
    assert acquired is not None
    store_clock.advance(30)
    store.commit(
        "ns", CommitBatch(saves=[make("root", timeout=600)], unlock={"root": acquired.token})
    )
    # Within the slack: nothing moved.
    assert client.zscore(keys.registry, "ns") == store_clock() - 30 + 660
    store_clock.advance(90)
    store.commit("ns", CommitBatch(saves=[make("root", timeout=600)]))
    assert client.zscore(keys.registry, "ns") == store_clock() + 660


def test_a_held_stack_outlives_its_timeout_in_redis(
    client: redis.Redis | RedisCluster, store_clock: FakeClock, make: Records
) -> None:
    """A conversation never expires while a request holds it: its keys are
    kept for the lock's lease, and no commit shortens that.
    """
    store = RedisStore(client, clock=store_clock, lock_lease=100)
    keys = store.keys("ns")
    store.save(make("root", timeout=10))
    assert client.pttl(keys.meta) <= 20_000
    store_clock.advance(5)
    acquired = store.acquire("ns", "root", 1)
    assert acquired is not None
    assert client.pttl(keys.meta) > 90_000 and client.pttl(keys.data) > 90_000
    # Another stack's commit that moves the namespace's expiry keeps them.
    store.commit("ns", CommitBatch(saves=[make("other", timeout=16)]))
    assert client.pttl(keys.meta) > 90_000 and client.pttl(keys.data) > 90_000
    store.commit(
        "ns", CommitBatch(saves=[make("root", timeout=10)], unlock={"root": acquired.token})
    )
    assert store.load("ns", "root") is not None
    # Released, the keys live only as long as their conversations need
    # (the latest expires in 16 s, kept 16 s more), not for the lease.
    for key in (keys.meta, keys.data):
        assert 0 < client.pttl(key) <= 32_000


def test_redis_drops_expired_records_by_itself(redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client)  # the system clock
    records = Records(store.clock)
    store.save(records("root", timeout=0.2))
    keys = store.keys("ns")
    deadline = time.monotonic() + 10
    while redis_client.exists(keys.meta, keys.data) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.load("ns", "root") is None
    assert store.acquire("ns", "root", 0) is None
    assert not redis_client.exists(keys.meta, keys.data)
    assert store.purge() is None


def test_a_crashed_holder_loses_its_lock_after_the_lease(
    client: redis.Redis | RedisCluster, store_clock: FakeClock, make: Records
) -> None:
    store = RedisStore(client, clock=store_clock, lock_lease=0.2)
    store.save(make("root", data="1"))
    crashed = store.acquire("ns", "root", 0)
    assert crashed is not None
    # Never released: the next request gets the stack once the lease ran out.
    successor = store.acquire("ns", "root", 10)
    assert successor is not None
    assert successor.token != crashed.token
    # The late holder can neither release the successor's lock nor write.
    store.unlock("ns", "root", crashed.token)
    with pytest.raises(ConversationStoreError, match="lease"):
        store.commit(
            "ns",
            CommitBatch(saves=[make("root", data="2")], unlock={"root": crashed.token}),
        )
    record = store.load("ns", "root")
    assert record is not None and record.data == "1"
    with pytest.raises(BusyConversation):
        store.acquire("ns", "root", 0)
    store.commit(
        "ns", CommitBatch(saves=[make("root", data="3")], unlock={"root": successor.token})
    )
    record = store.load("ns", "root")
    assert record is not None and record.data == "3"


def test_a_commit_after_the_lease_writes_nothing(
    client: redis.Redis | RedisCluster, store_clock: FakeClock, make: Records
) -> None:
    """Also when nobody took the lock since: the lease alone decides, and
    the batch's other locks are released.
    """
    store = RedisStore(client, clock=store_clock, lock_lease=0.1)
    store.save(make("a", data="1"))
    store.save(make("b", data="1"))
    late = store.acquire("ns", "a", 0)
    assert late is not None
    time.sleep(0.15)
    other = store.lock("ns", "b", 0)
    assert other is not None
    with pytest.raises(ConversationStoreError, match="lease"):
        store.commit(
            "ns",
            CommitBatch(
                saves=[make("a", data="2"), make("b", data="2")],
                deletes={"c": "ended"},
                unlock={"b": other, "a": late.token},
            ),
        )
    assert [r.data for r in sorted(store.list_namespace("ns"), key=lambda r: r.id)] == ["1", "1"]
    # The lock still held was released.
    assert store.lock("ns", "b", 0) is not None


def test_namespaces_come_from_the_registry(
    client: redis.Redis | RedisCluster, store: RedisStore, make: Records, store_clock: FakeClock
) -> None:
    store.save(make("a", namespace="one"))
    store.save(make("b", namespace="one", timeout=10))
    store.commit("two", CommitBatch(saves=[make("c", namespace="two", timeout=10)]))
    assert store.namespaces() == {"one": 2, "two": 1}
    store_clock.advance(10)
    # Only what is live by the clock counts.
    assert store.namespaces() == {"one": 1}
    assert store.commit("two", CommitBatch(saves=[make("d", namespace="two")])) == [
        ("c", "expired")
    ]
    assert store.namespaces() == {"one": 1, "two": 1}
    assert store.commit("two", CommitBatch(deletes={"d": "ended"})) == [("d", "ended")]
    assert store.namespaces() == {"one": 1}
    # An empty namespace leaves nothing behind, not even in its registry.
    two = store.keys("two")
    assert not client.exists(two.meta, two.data)
    assert client.zscore(two.registry, "two") is None
    store.delete("one", "a")
    store.delete("one", "b")
    assert store.namespaces() == {}
    assert all_keys(client) == []


def test_the_registry_forgets_namespaces_that_expired(
    client: redis.Redis | RedisCluster, store: RedisStore, make: Records, store_clock: FakeClock
) -> None:
    """A namespace whose records all expired in Redis is dropped from its
    registry when the next namespace of the same shard registers, so the
    registries never grow past the namespaces in use.
    """
    store.save(make("a", namespace="gone", timeout=5))
    # Another namespace of the same shard.
    same_shard = next(f"ns{i}" for i in range(100_000) if shard_tag(f"ns{i}") == shard_tag("gone"))
    store_clock.advance(10)
    store.commit(same_shard, CommitBatch(saves=[make("b", namespace=same_shard)]))
    registry = store.keys("gone").registry
    assert registry == store.keys(same_shard).registry
    assert client.zrange(registry, 0, -1) == [same_shard.encode()]


def test_from_url(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    store = RedisStore.from_url(redis_server.url, prefix="app:")
    try:
        assert store.prefix == "app:"
        assert store.load("ns", "x") is None
    finally:
        store.client.close()


# -- round trips ----------------------------------------------------------------


@pytest.fixture(params=["redis", "redis-cluster"])
def deployment(
    request: pytest.FixtureRequest,
) -> tuple[list[RedisServer], redis.Redis | RedisCluster]:
    """Emptied servers, and a client whose connections count round trips."""
    return counting_deployment(request.param, request)


@pytest.fixture
def commands(
    deployment: tuple[list[RedisServer], redis.Redis | RedisCluster],
) -> t.Iterator[CommandLog]:
    log = CommandLog(deployment[0])
    try:
        yield log
    finally:
        log.close()


def test_round_trips_of_read_only_requests(
    commands: CommandLog,
    deployment: tuple[list[RedisServer], redis.Redis | RedisCluster],
) -> None:
    """``@conversation_readonly`` reads the chain in one call that takes
    no lock, and commits nothing: one round trip, at any depth. (What the
    other kinds of request cost is in ``test_request_costs.py``.)
    """
    app = counted_app(RedisStore(deployment[1]))

    @app.get("/peek")
    @conversation_readonly
    def peek() -> dict[str, t.Any]:
        return {"n": conversation.get("n"), "depth": conversation.depth}

    tab = t.cast(ConversationClient, app.test_client())
    root = tab.post("/begin").json["id"]
    child = tab.post("/begin").json["id"]
    tab.get("/peek?cid=nope")  # loads the script
    client = deployment[1]
    if isinstance(client, RedisCluster):
        client.ping(target_nodes=RedisCluster.PRIMARIES)
    commands.take()

    # A chain the process knows is read with plain commands, pipelined:
    # one round trip, like a script.
    known = ["HMGET", "HMGET"]
    for cid, depth in ((root, 0), (child, 1)):
        assert tab.get(f"/peek?cid={cid}").json == {"n": 0, "depth": depth}
        assert commands.take() == known
    assert tab.get("/peek?cid=unknown").status_code == 404
    assert commands.take() == ["EVALSHA"]
    assert tab.new_tab().get("/peek").json == {"n": None, "depth": 0}
    assert commands.take() == []


# -- outage -----------------------------------------------------------------------


def fail_fast_client(server: RedisServer) -> redis.Redis:
    # No retries, so that a stopped server answers at once.
    return server.client(retry=Retry(NoBackoff(), 0), socket_connect_timeout=1, socket_timeout=2)


def test_store_errors_while_redis_is_down(spare_redis_server: RedisServer) -> None:
    client = fail_fast_client(spare_redis_server)
    store = RedisStore(client)
    records = Records(store.clock)
    try:
        saved = records("root")
        store.save(saved)
        acquired = store.acquire("ns", "root", 0)
        assert acquired is not None
        spare_redis_server.stop()
        calls: list[t.Callable[[], t.Any]] = [
            lambda: store.load("ns", "root"),
            lambda: store.save(records("other")),
            lambda: store.delete("ns", "root"),
            lambda: store.list_namespace("ns"),
            lambda: store.lock("ns", "x", 0),
            lambda: store.unlock("ns", "root", acquired.token),
            lambda: store.acquire("ns", "root", 0),
            lambda: store.load_chain("ns", "root"),
            lambda: store.commit(
                "ns", CommitBatch(saves=[records("root")], unlock={"root": acquired.token})
            ),
            lambda: store.namespaces(),
        ]
        for call in calls:
            with pytest.raises(ConversationStoreError) as info:
                call()
            assert info.value.code == 503
        spare_redis_server.start()
        # The data survived the restart (append-only file); the lock too.
        assert store.load("ns", "root") == saved
        store.commit("ns", CommitBatch(saves=[records("root")], unlock={"root": acquired.token}))
        assert store.acquire("ns", "root", 0) is not None
    finally:
        client.close()


def test_a_client_that_decodes_responses(
    redis_server: RedisServer, redis_client: redis.Redis, make: Records
) -> None:
    client = redis_server.client(decode_responses=True)
    try:
        store = RedisStore(client, clock=make.clock)
        root = make("root", data='{"s":"é"}')
        store.save(root)
        store.save(make("child", root))
        acquired = store.acquire("ns", "child", 0)
        assert acquired is not None and [r.id for r in acquired.chain] == ["root", "child"]
        assert store.commit(
            "ns", CommitBatch(deletes={"child": "ended"}, unlock={"root": acquired.token})
        ) == [("child", "ended")]
        assert store.list_namespace("ns") == [root]
        assert store.namespaces() == {"ns": 1}
    finally:
        client.close()


@pytest.mark.parametrize("setting", ["CONVERSATION_REDIS", "SESSION_REDIS"])
@pytest.mark.parametrize("as_url", [True, False])
def test_chosen_by_config(
    redis_server: RedisServer, redis_client: redis.Redis, setting: str, as_url: bool
) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k",
        CONVERSATION_STORE="redis",
        **{setting: redis_server.url if as_url else redis_client},
    )
    ConversationScope(app)
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        conversation["n"] = 1
        return str(conversation.id)

    store = ConversationScope.get_store(app)
    try:
        assert isinstance(store, RedisStore)
        cid = app.test_client().post("/begin").text
        record = store.load(store.namespaces().popitem()[0], cid)
        assert record is not None and json.loads(record.data) == {"n": 1}
        assert redis_client.hexists(store.keys(record.namespace).data, cid)
    finally:
        if as_url:
            store.client.close()


# -- lock waits, scripts ------------------------------------------------------------


def _script_calls(server: RedisServer) -> int:
    stats = server.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


@pytest.mark.parametrize("how", ["acquire", "claim", "lock"])
def test_waiting_for_a_lock_asks_at_most_20_times_a_second(
    redis_server: RedisServer, redis_client: redis.Redis, make: Records, how: str
) -> None:
    """Counted by the server: the script calls a request makes while another
    request holds the stack, over a wait of more than a second.
    """
    holder = RedisStore(redis_client, clock=make.clock)
    waiter = RedisStore(redis_server.client(), clock=make.clock)
    holder.save(make("root"))
    token = holder.lock("ns", "root", 0)
    assert token is not None
    waits: dict[str, t.Callable[[], t.Any]] = {
        "acquire": lambda: waiter.acquire("ns", "root", 1.5),
        "claim": lambda: waiter.claim("ns", "root", 1.5),
        "lock": lambda: waiter.lock("ns", "root", 1.5),
    }
    try:
        before = _script_calls(redis_server)
        started = time.monotonic()
        if how == "lock":
            assert waits[how]() is None
        else:
            with pytest.raises(BusyConversation):
                waits[how]()
        elapsed = time.monotonic() - started
        calls = _script_calls(redis_server) - before
        # It did keep asking, and never more than about 20 times a second.
        assert 10 <= calls <= 20 * elapsed + 1, (calls, elapsed)
        # Released, the lock is the waiter's at once.
        holder.unlock("ns", "root", token)
        assert waiter.acquire("ns", "root", 1.5) is not None
    finally:
        waiter.client.close()


def test_load_chain_is_one_round_trip_and_locks_nothing(
    deployment: tuple[list[RedisServer], redis.Redis | RedisCluster],
    commands: CommandLog,
    make: Records,
) -> None:
    store = RedisStore(deployment[1], clock=make.clock)
    root = make("root")
    child = make("child", root)
    for record in (root, make("other"), child, make("grandchild", child)):
        store.save(record)
    store.load_chain("ns", "grandchild")  # loads the script into the servers
    commands.take()
    for _ in range(3):
        chain = store.load_chain("ns", "grandchild")
        assert chain is not None and [r.id for r in chain] == ["root", "child", "grandchild"]
        assert commands.take() == ["EVALSHA"]
    assert store.load_chain("ns", "other-missing") is None
    assert commands.take() == ["EVALSHA"]
    # Nothing was locked: the stack is free.
    acquired = store.acquire("ns", "child", 0)
    assert acquired is not None and [r.id for r in acquired.chain] == ["root", "child"]
    # A read does not wait for the lock, and sees the last committed state.
    chain = store.load_chain("ns", "grandchild")
    assert chain is not None and chain[-1] == store.load("ns", "grandchild")


def test_scripts_ship_as_package_data_with_headers() -> None:
    """Every script is a ``.lua`` file of the package, read with
    :mod:`importlib.resources`, and starts by stating its keys, arguments
    and replies; every key it touches is one of its ``KEYS``.
    """
    import importlib.resources
    import re

    from flask_conversation.stores.redis.scripts import NAMES
    from flask_conversation.stores.redis.scripts import source

    files = importlib.resources.files("flask_conversation.stores.redis") / "lua"
    found = sorted(p.name for p in files.iterdir() if p.name.endswith(".lua"))
    assert found == sorted([f"{name}.lua" for name in (*NAMES, "common")])
    for name in NAMES:
        text = (files / f"{name}.lua").read_text("utf-8")
        header = text.split("\n\n")[0] + text.split("\n\n")[1]
        assert "KEYS[1]" in header and "Returns" in header, name
        # Keys only ever come from KEYS (or the helpers, which get them
        # passed), except a stack's lock found by the script: its key is
        # built from the lock prefix, which carries the namespace's tag.
        for call in re.findall(r"redis\.call\('(\w+)', ([^,)]+)", source(name)):
            assert call[1].strip() in {
                "meta_key",
                "data_key",
                "registry",
                "key",
                "lock_key",
                "KEYS[1]",
                "KEYS[2]",
                "KEYS[i]",
                "unpack(held",
                "lock_prefix .. root",
            }, (
                name,
                call,
            )
