"""RedisStore's plain-command path on a real server: a stack whose chain
the process knows is locked, watched and loaded with plain commands, and a
renewal is committed in a ``MULTI``/``EXEC`` transaction. Every case that
path cannot decide alone (the lease ran out, another request changed the
namespace, a chain changed, the scripts were flushed) must end exactly as
the scripts decide it.
"""

from __future__ import annotations

import random
import time
import typing as t
from copy import copy

import pytest
import redis
from conftest import FakeClock
from redis.cluster import RedisCluster

from flask_conversation import BusyConversation
from flask_conversation import ConversationStoreError
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.records import Destroyed
from flask_conversation.stores.redis import RedisStore
from stores.store_testing import PlanReference
from stores.store_testing import Records

Client: t.TypeAlias = "redis.Redis | RedisCluster"


def calls(server: Client, command: str) -> int:
    """How many times the servers ran ``command`` (from any client)."""
    if isinstance(server, RedisCluster):
        per_node = server.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        stats = list(per_node.values())
    else:
        stats = [server.info("commandstats")]
    return sum(int(s[f"cmdstat_{command}"]["calls"]) for s in stats if f"cmdstat_{command}" in s)


@pytest.fixture(params=["redis", "redis-resp2", "redis-cluster"])
def server(request: pytest.FixtureRequest) -> Client:
    """A client of an emptied server (replies in RESP3, redis-py's default,
    or RESP2), or of an emptied cluster.
    """
    if request.param == "redis-cluster":
        return t.cast(Client, request.getfixturevalue("redis_cluster_client"))
    client = t.cast(redis.Redis, request.getfixturevalue("redis_client"))
    if request.param == "redis":
        return client
    resp2 = t.cast(redis.Redis, request.getfixturevalue("redis_server").client(protocol=2))
    request.addfinalizer(resp2.close)
    return resp2


def begin(store: RedisStore, record: ConversationRecord) -> None:
    """Write a new record as a request's commit does (which is how the
    process learns its chain).
    """
    store.commit(record.namespace, CommitBatch(saves=[record], keep_roots={record.root_id}))


def renew(store: RedisStore, record: ConversationRecord, token: str, **changes: t.Any) -> Destroyed:
    batch = CommitBatch(
        saves=[record],
        unlock={record.root_id: token},
        keep_roots={record.root_id},
        held={record.root_id},
        **changes,
    )
    return store.commit(record.namespace, batch)


@pytest.fixture
def store(server: Client, store_clock: FakeClock) -> RedisStore:
    return RedisStore(server, clock=store_clock)


def test_a_known_stack_runs_no_script(server: Client, store: RedisStore, make: Records) -> None:
    root = make("root", data='{"n":1}')
    begin(store, root)
    child = make("child", root, data='{"n":2}')
    begin(store, child)
    before = calls(server, "evalsha"), calls(server, "exec")
    acquired = store.acquire("ns", "child", 0)
    assert acquired is not None and acquired.chain == [root, child]
    assert acquired.root_id == "root" and acquired.count == 2
    renew(store, make("child", root, data='{"n":3}'), acquired.token)
    assert (calls(server, "evalsha"), calls(server, "exec")) == (
        before[0],
        before[1] + 1,
    )
    record = store.load("ns", "child")
    assert record is not None and record.data == '{"n":3}'
    # Released with the commit.
    assert store.lock("ns", "root", 0) is not None


def test_a_busy_stack_waits_through_the_scripts(store: RedisStore, make: Records) -> None:
    begin(store, make("root"))
    held = store.acquire("ns", "root", 0)
    assert held is not None
    with pytest.raises(BusyConversation):
        store.acquire("ns", "root", 0)
    store.unlock("ns", "root", held.token)
    again = store.acquire("ns", "root", 0)
    assert again is not None
    store.unlock("ns", "root", again.token)


def test_a_commit_after_the_lease_writes_nothing(
    server: Client, store_clock: FakeClock, make: Records
) -> None:
    """The lock's key expired: the transaction is refused, and the script
    it hands over to finds the lease lost.
    """
    store = RedisStore(server, clock=store_clock, lock_lease=0.1)
    begin(store, make("root", data="1"))
    late = store.acquire("ns", "root", 0)
    assert late is not None
    time.sleep(0.15)
    with pytest.raises(ConversationStoreError, match="lease"):
        renew(store, make("root", data="2"), late.token)
    record = store.load("ns", "root")
    assert record is not None and record.data == "1"
    # The successor takes the stack, and the late holder cannot release it.
    successor = store.acquire("ns", "root", 0)
    assert successor is not None
    store.unlock("ns", "root", late.token)
    with pytest.raises(BusyConversation):
        store.acquire("ns", "root", 0)
    renew(store, make("root", data="3"), successor.token)
    record = store.load("ns", "root")
    assert record is not None and record.data == "3"


def test_another_commit_in_the_namespace_hands_over_to_the_script(
    server: Client, store: RedisStore, make: Records
) -> None:
    begin(store, make("mine", data="1"))
    acquired = store.acquire("ns", "mine", 0)
    assert acquired is not None
    # Another tab's request commits in the same namespace meanwhile.
    begin(store, make("theirs", data="1"))
    evalsha = calls(server, "evalsha")
    renew(store, make("mine", data="2"), acquired.token)
    assert calls(server, "evalsha") == evalsha + 1
    assert {r.id: r.data for r in store.list_namespace("ns")} == {"mine": "2", "theirs": "1"}
    assert store.lock("ns", "mine", 0) is not None


def test_a_stack_removed_meanwhile_is_not_written_back(
    server: Client, store: RedisStore, make: Records
) -> None:
    begin(store, make("mine"))
    begin(store, make("other"))
    acquired = store.acquire("ns", "mine", 0)
    assert acquired is not None
    # end_all() in another tab: the namespace is cleared.
    destroyed = store.commit("ns", CommitBatch(clear=True))
    assert sorted(destroyed) == [("mine", "cleared"), ("other", "cleared")]
    assert renew(store, make("mine", data="2"), acquired.token) == []
    assert store.list_namespace("ns") == []


def test_a_changed_chain_goes_to_the_scripts(store: RedisStore, make: Records) -> None:
    """An id ended and begun again under another parent: the chain the
    process knew is wrong; the lock it took on the old root is given back.
    """
    root = make("root")
    begin(store, root)
    begin(store, make("natural", root))
    store.commit("ns", CommitBatch(deletes={"natural": "ended"}))
    other = make("other")
    begin(store, other)
    store.save(make("natural", other))
    acquired = store.acquire("ns", "natural", 0)
    assert acquired is not None and [r.id for r in acquired.chain] == ["other", "natural"]
    # The old root's lock was given back.
    assert store.lock("ns", "root", 0) is not None
    renew(store, make("natural", other, data='{"n":5}'), acquired.token)
    record = store.load("ns", "natural")
    assert record is not None and record.data == '{"n":5}'


def test_an_expired_conversation_is_missing(
    store: RedisStore, store_clock: FakeClock, make: Records
) -> None:
    begin(store, make("root", timeout=10))
    store_clock.advance(11)
    assert store.acquire("ns", "root", 0) is None
    # Nothing stays locked.
    assert store.lock("ns", "root", 0) is not None


def test_flushed_scripts_are_loaded_again(server: Client, store: RedisStore, make: Records) -> None:
    begin(store, make("root"))
    acquired = store.acquire("ns", "root", 0)
    assert acquired is not None
    server.script_flush()
    # A batch the transaction cannot write: the script runs.
    renew(store, make("root", data="2"), acquired.token, deletes={"gone": "ended"})
    record = store.load("ns", "root")
    assert record is not None and record.data == "2"


def test_an_unlock_gives_the_connection_back(
    server: Client, store: RedisStore, make: Records
) -> None:
    """A request that failed releases its lock; whatever the path, the
    connections it used go back to the pool: a hundred requests use one.
    """
    begin(store, make("root"))
    for i in range(100):
        acquired = store.acquire("ns", "root", 0)
        assert acquired is not None
        if i % 2:
            store.unlock("ns", "root", acquired.token)
        else:
            renew(store, make("root", data=str(i)), acquired.token)
    if isinstance(server, RedisCluster):
        node = server.get_node_from_key(store.keys("ns").meta)
        listed = server.client_list(target_nodes=node)
    else:
        listed = server.client_list()
    names = [c for c in listed if c.get("cmd") != "client|list"]
    assert len(names) == 1, names


def stack_batch(rng: random.Random, records: Records, root: str) -> CommitBatch:
    """A renewal of ``root``'s stack (which the transaction writes when
    nothing else stands in its way), sometimes with a new child, an ended
    conversation or an end_all: batches that need the script.
    """
    record = records(root, timeout=rng.choice((0.5, 10, 60)), data=f'{{"r":{rng.random()}}}')
    saves = [record]
    if rng.random() < 0.2:
        saves.append(records(f"{root}-c{rng.randint(0, 3)}", record))
    deletes: dict[str, str | None] = {}
    if rng.random() < 0.1:
        deletes[f"{rng.choice('abcdef')}-c0"] = "ended"
    return CommitBatch(
        saves=saves,
        deletes=deletes,
        max_count=rng.choice([3, 8, 32]),
        keep_roots={root},
        held={root},
        clear=rng.random() < 0.02,
    )


def test_the_transaction_decides_as_plan_commit(server: Client) -> None:
    """Random requests on random stacks, each locked and loaded by the
    plain-command path, with other requests committing in between, against
    :func:`plan_commit` applied by the base class to a ``MemoryStore``:
    the same conversations destroyed with the same reasons, the same
    records kept. Both the transaction and the hand-over to the script
    are taken often.
    """

    rng = random.Random(11)
    transactions = scripts = 0
    for run in range(20):
        clock = FakeClock(1000.0)
        records = Records(clock, "n")
        ours = RedisStore(server, prefix=f"watched{run}:", clock=clock)
        reference = PlanReference(10_000, clock=clock)
        for step in range(40):
            clock.advance(rng.choice([0.25, 1, 5, 30]))
            root = rng.choice("abcdef")
            acquired = ours.acquire("n", root, 0)
            if acquired is None:
                stored = reference.load("n", root)
                assert stored is None or stored.expires_at <= clock.now, (run, step)
                batch = CommitBatch(saves=[records(root)], keep_roots={root})
                results = [
                    sorted(ours.commit("n", copy(batch))),
                    sorted(reference.commit("n", batch)),
                ]
                assert results[0] == results[1], (run, step)
                continue
            if rng.random() < 0.3:
                # Another request commits in the namespace meanwhile.
                other = rng.choice([r for r in "abcdef" if r != root])
                batch = CommitBatch(
                    saves=[records(other)],
                    keep_roots={other},
                    max_count=rng.choice([3, 8, 32]),
                )
                results = [
                    sorted(ours.commit("n", copy(batch))),
                    sorted(reference.commit("n", batch)),
                ]
                assert results[0] == results[1], (run, step)
            batch = stack_batch(rng, records, root)
            mine = copy(batch)
            mine.unlock = {acquired.root_id: acquired.token}
            before = calls(server, "evalsha")
            results = [sorted(ours.commit("n", mine)), sorted(reference.commit("n", batch))]
            assert results[0] == results[1], (run, step)
            if calls(server, "evalsha") == before:
                transactions += 1
            else:
                scripts += 1
            live = [
                sorted(
                    (r for r in s.list_namespace("n") if r.expires_at > clock.now),
                    key=lambda r: r.id,
                )
                for s in (ours, reference)
            ]
            assert live[0] == live[1], (run, step)
            # Released with the commit.
            token = ours.lock("n", root, 0)
            assert token is not None, (run, step)
            ours.unlock("n", root, token)
    assert transactions > 100 and scripts > 100, (transactions, scripts)


def test_a_large_namespace_is_read_field_by_field(
    server: Client, store_clock: FakeClock, make: Records
) -> None:
    """While a namespace is small the lock brings its whole metadata, for
    the listing; once it is seen larger than ``listing_limit``, only the
    header and the chain's.
    """

    class Small(RedisStore):
        listing_limit = 2

    store = Small(server, clock=store_clock)
    for cid in ("a", "b", "c"):
        begin(store, make(cid))
    for expected in ("hgetall", "hmget"):
        before = calls(server, expected)
        acquired = store.acquire("ns", "a", 0)
        assert acquired is not None and [r.id for r in acquired.chain] == ["a"]
        assert acquired.listing is None and acquired.count == 3
        assert calls(server, expected) > before
        renew(store, make("a", data='{"n":2}'), acquired.token)
    store.commit("ns", CommitBatch(deletes={"b": "ended", "c": "ended"}))
    # Seen small again, by the lock that follows.
    acquired = store.acquire("ns", "a", 0)
    assert acquired is not None and acquired.listing is None
    store.unlock("ns", "a", acquired.token)
    acquired = store.acquire("ns", "a", 0)
    assert acquired is not None and acquired.listing is not None
    assert [i.id for i in acquired.listing(store_clock())] == ["a"]
    store.unlock("ns", "a", acquired.token)


def test_a_read_without_the_lock_checks_the_chain(
    server: Client, store: RedisStore, store_clock: FakeClock, make: Records
) -> None:
    """``load_chain`` of a known chain reads it with two ``HMGET``; a chain
    that is gone or changed is left to the script, and forgotten.
    """
    root = make("root", timeout=10)
    begin(store, root)
    child = make("child", root, timeout=10)
    begin(store, child)
    before = calls(server, "evalsha")
    assert store.load_chain("ns", "child") == [root, child]
    assert calls(server, "evalsha") == before
    # Running while another request holds the stack.
    acquired = store.acquire("ns", "root", 0)
    assert acquired is not None
    assert store.load_chain("ns", "root") == [root]
    store.unlock("ns", "root", acquired.token)
    store_clock.advance(11)
    for _ in range(2):
        # Expired: the script has the last word, every time.
        before = calls(server, "evalsha")
        assert store.load_chain("ns", "child") is None
        assert calls(server, "evalsha") == before + 1
