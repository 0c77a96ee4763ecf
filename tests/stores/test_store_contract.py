"""The store contract of ``stores/base.py``, checked the same way on every
store: records, namespaces, locks, acquire and the commit rules.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from conftest import FakeClock

from flask_conversation import BusyConversation
from flask_conversation.stores import ConversationStore
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.rules import plan_commit
from stores.store_testing import Records


def ids(records: list[ConversationRecord]) -> list[str]:
    return sorted(r.id for r in records)


def test_save_load_round_trip(store: ConversationStore, make: Records) -> None:
    root = make("root", data='{"text":"h\\u00e9 \\u2603","n":[1,2.5]}', description="Bücher")
    root.last_access += 0.123456789
    child = make("child", root, timeout=12.5)
    tomb = make("tomb", ended=True)
    for r in (root, child, tomb):
        store.save(r)
    assert store.load("ns", "root") == root
    assert store.load("ns", "child") == child
    assert store.load("ns", "tomb") == tomb
    assert store.load("ns", "nope") is None
    assert store.load("other", "root") is None


def test_delete_and_list(store: ConversationStore, make: Records) -> None:
    a, b = make("a"), make("b")
    elsewhere = make("a", namespace="other")
    for r in (a, b, elsewhere):
        store.save(r)
    assert ids(store.list_namespace("ns")) == ["a", "b"]
    store.delete("ns", "a")
    store.delete("ns", "missing")
    assert ids(store.list_namespace("ns")) == ["b"]
    assert store.load("other", "a") == elsewhere
    assert store.list_namespace("empty") == []


@pytest.mark.parametrize(
    "namespaces",
    [
        ["a{b}c", "a%7Bb%7Dc", "a{b", "a}b", "{", "}", "%", "%25", "", "{}", "x"],
        ["telegram:42", "user 7", "ünïcødé", "a:b}:c:d"],
    ],
)
def test_namespaces_never_mix(
    store: ConversationStore, make: Records, namespaces: list[str]
) -> None:
    for i, ns in enumerate(namespaces):
        store.save(make("same", namespace=ns, data=str(i)))
        store.save(make(f"only{i}", namespace=ns))
    for i, ns in enumerate(namespaces):
        record = store.load(ns, "same")
        assert record is not None and record.data == str(i)
        assert ids(store.list_namespace(ns)) == [f"only{i}", "same"]
    if type(store).__name__ not in ("MemoryStore", "RedisStore", "SQLAlchemyStore"):
        return
    assert store.namespaces() == {ns: 2 for ns in namespaces}


def test_lock_owner_token(store: ConversationStore) -> None:
    token = store.lock("ns", "root", 1)
    assert token is not None
    assert store.lock("ns", "root", 0) is None
    # Another stack and another namespace are independent.
    other = store.lock("ns", "other", 0)
    assert other is not None
    assert store.lock("ns2", "root", 0) is not None
    # Only the owner releases it.
    store.unlock("ns", "root", "not-the-token")
    assert store.lock("ns", "root", 0) is None
    store.unlock("ns", "root", token)
    again = store.lock("ns", "root", 0)
    assert again is not None
    # A stale token cannot release the new owner's lock.
    store.unlock("ns", "root", token)
    assert store.lock("ns", "root", 0) is None
    store.unlock("ns", "root", again)


def test_lock_waits_for_release(store: ConversationStore) -> None:
    if type(store).__name__ == "SessionStore":
        pytest.skip("the session store locks only inside the request's process")
    token = store.lock("ns", "root", 0)
    assert token is not None
    timer = threading.Timer(0.2, store.unlock, ("ns", "root", token))
    timer.start()
    try:
        assert store.lock("ns", "root", 10) is not None
    finally:
        timer.join()


def test_acquire_locks_and_loads_chain(store: ConversationStore, make: Records) -> None:
    root = make("root")
    child = make("child", root)
    grandchild = make("grand", child)
    sibling = make("sib", root)
    for r in (root, child, grandchild, sibling):
        store.save(r)
    acquired = store.acquire("ns", "grand", 1)
    assert acquired is not None
    assert acquired.root_id == "root"
    assert acquired.chain == [root, child, grandchild]
    with pytest.raises(BusyConversation):
        store.acquire("ns", "sib", 0.05)
    with pytest.raises(BusyConversation):
        store.acquire("ns", "root", 0)
    store.commit("ns", CommitBatch(unlock={"root": acquired.token}))
    again = store.acquire("ns", "sib", 0)
    assert again is not None and again.chain == [root, sibling]
    store.unlock("ns", "root", again.token)


def test_acquire_missing_or_expired_locks_nothing(
    store: ConversationStore, make: Records, store_clock: FakeClock
) -> None:
    assert store.acquire("ns", "nope", 0) is None
    root = make("root", timeout=10)
    child = make("child", root, timeout=100)
    store.save(root)
    store.save(child)
    orphan = make("orphan", make("gone"))
    store.save(orphan)
    assert store.acquire("ns", "orphan", 0) is None
    store_clock.advance(10)
    # The parent expired by the store's clock: the whole chain is gone.
    assert store.acquire("ns", "child", 0) is None
    assert store.acquire("ns", "root", 0) is None
    assert store.load_chain("ns", "child") is None
    token = store.lock("ns", "root", 0)
    assert token is not None
    store.unlock("ns", "root", token)


def test_claim_locks_a_missing_id_or_acquires_an_existing_one(
    store: ConversationStore, make: Records
) -> None:
    claimed = store.claim("ns", "new", 0)
    assert claimed.root_id == "new" and claimed.chain == []
    # Whoever else claims or acquires it waits for the creator.
    with pytest.raises(BusyConversation):
        store.claim("ns", "new", 0.05)
    store.save(make("new"))
    store.unlock("ns", "new", claimed.token)
    joined = store.claim("ns", "new", 0)
    assert [r.id for r in joined.chain] == ["new"]
    store.unlock("ns", joined.root_id, joined.token)
    store.save(make("kid", make("new")))
    via_stack = store.claim("ns", "kid", 0)
    assert via_stack.root_id == "new"
    assert [r.id for r in via_stack.chain] == ["new", "kid"]
    store.unlock("ns", "new", via_stack.token)


def test_acquire_returns_a_tombstone(store: ConversationStore, make: Records) -> None:
    store.save(make("done", ended=True))
    acquired = store.acquire("ns", "done", 0)
    assert acquired is not None
    assert acquired.chain[-1].ended
    store.unlock("ns", acquired.root_id, acquired.token)


def test_commit_rules(store: ConversationStore, make: Records, store_clock: FakeClock) -> None:
    old = make("old", timeout=5)
    old_tomb = make("oldtomb", timeout=5, ended=True)
    store.save(old)
    store.save(old_tomb)
    store_clock.advance(1)
    root = make("root")
    child = make("child", root)
    grand = make("grand", child)
    for r in (root, child, grand):
        store.save(r)
    store_clock.advance(5)
    acquired = store.acquire("ns", "grand", 0)
    assert acquired is not None
    renewed = make("root", data='{"n":2}')
    destroyed = store.commit(
        "ns",
        CommitBatch(
            saves=[renewed],
            deletes={"child": "ended"},
            unlock={"root": acquired.token},
            keep_roots={"root"},
        ),
    )
    assert sorted(destroyed) == [("child", "ended"), ("grand", "ended"), ("old", "expired")]
    assert store.list_namespace("ns") == [renewed]
    # The lock was released by the commit.
    token = store.lock("ns", "root", 0)
    assert token is not None
    store.unlock("ns", "root", token)


def test_commit_keeps_the_survivor_of_an_ended_root(
    store: ConversationStore, make: Records
) -> None:
    root = make("root")
    child = make("child", root)
    store.save(root)
    store.save(child)
    survivor = make("root", ended=True)
    destroyed = store.commit(
        "ns", CommitBatch(saves=[survivor], deletes={"root": "ended"}, keep_roots={"root"})
    )
    assert sorted(destroyed) == [("child", "ended"), ("root", "ended")]
    assert store.list_namespace("ns") == [survivor]
    # Consuming the survivor reports nothing.
    assert store.commit("ns", CommitBatch(deletes={"root": None})) == []
    assert store.list_namespace("ns") == []


def test_commit_evicts_least_recently_used_stacks(
    store: ConversationStore, make: Records, store_clock: FakeClock
) -> None:
    oldest = make("oldest")
    oldest_child = make("oldest-child", oldest)
    store.save(oldest)
    store_clock.advance(1)
    middle = make("middle")
    store.save(middle)
    store_clock.advance(1)
    # Used last, through its child: the stack counts as recent.
    store.save(oldest_child := make("oldest-child", oldest))
    store_clock.advance(1)
    current = make("current")
    destroyed = store.commit(
        "ns", CommitBatch(saves=[current], max_count=3, keep_roots={"current"})
    )
    assert destroyed == [("middle", "evicted")]
    assert ids(store.list_namespace("ns")) == ["current", "oldest", "oldest-child"]
    assert store.load("ns", "oldest-child") == oldest_child
    destroyed = store.commit(
        "ns", CommitBatch(saves=[make("current")], max_count=1, keep_roots={"current"})
    )
    assert sorted(destroyed) == [("oldest", "evicted"), ("oldest-child", "evicted")]


def test_commit_matches_plan_commit(
    store: ConversationStore, make: Records, store_clock: FakeClock
) -> None:
    """Random namespaces and batches: what the store does and reports is what
    :func:`plan_commit` decides, whatever the store's own implementation.
    """
    rnd = random.Random(1234)
    for round_ in range(60):
        namespace = f"round{round_}"
        records: list[ConversationRecord] = []
        for i in range(rnd.randint(0, 9)):
            parent = rnd.choice([None, *records]) if records else None
            if parent is not None and parent.ended:
                parent = None
            r = make(f"c{i}", parent, namespace=namespace, timeout=rnd.choice([30, 300]))
            r.ended = parent is None and rnd.random() < 0.15
            # Live when saved, even for Redis's own clock, which runs on.
            r.last_access -= rnd.randint(0, 25)
            records.append(r)
            store.save(r)
        store_clock.advance(rnd.choice([0, 10, 40]))
        stored = store.list_namespace(namespace)
        # Like a request: deleted subtrees are never saved, except as the
        # ended root that survives one redirect.
        deletes: dict[str, str | None] = {
            r.id: rnd.choice(["ended", "cleared", None])
            for r in rnd.sample(records, rnd.randint(0, min(3, len(records))))
        }
        doomed = set(deletes)
        for r in records:
            if r.parent_id in doomed:
                doomed.add(r.id)
        by_id = {r.id: r for r in records}
        live = [r for r in records if not r.ended and r.id not in doomed]
        saves = []
        for r in rnd.sample(live, rnd.randint(0, len(live))):
            s = make(r.id, namespace=namespace)
            s.parent_id, s.root_id, s.depth = r.parent_id, r.root_id, r.depth
            saves.append(s)
        if rnd.random() < 0.3:
            saves.append(make("new", namespace=namespace))
        for cid in deletes:
            if by_id[cid].parent_id is None and rnd.random() < 0.5:
                saves.append(make(cid, namespace=namespace, ended=True))
        # Stacks the request held: some still stored, one maybe removed by
        # another request meanwhile, which must not come back.
        held = {s.root_id for s in saves if s.root_id in by_id and rnd.random() < 0.7}
        if rnd.random() < 0.3:
            gone = make("gone", namespace=namespace)
            saves += [gone, make("gone-child", gone, namespace=namespace)]
            held.add("gone")
        batch = CommitBatch(
            saves=saves,
            deletes=deletes,
            max_count=rnd.randint(1, 8),
            keep_roots={s.root_id for s in saves},
            clear=rnd.random() < 0.2,
            held=held,
        )
        plan = plan_commit(stored, batch, store_clock())
        expected = {r.id: r for r in stored if r.id not in plan.delete}
        expected.update({r.id: r for r in plan.save})
        destroyed = store.commit(namespace, batch)
        assert sorted(destroyed) == sorted(plan.destroyed), round_
        assert sorted(store.list_namespace(namespace), key=lambda r: r.id) == sorted(
            expected.values(), key=lambda r: r.id
        ), round_


def test_concurrent_acquire_serializes(store: ConversationStore, make: Records) -> None:
    """Threads that each lock, read, increment and commit one counter never
    lose an update.
    """
    if type(store).__name__ == "SessionStore":
        pytest.skip("the session store is bound to one request")
    store.save(make("root", data="0"))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                acquired = store.acquire("ns", "root", 10)
                assert acquired is not None
                record = acquired.chain[-1]
                record.data = str(int(record.data) + 1)
                time.sleep(0.001)
                store.commit(
                    "ns",
                    CommitBatch(
                        saves=[record],
                        unlock={acquired.root_id: acquired.token},
                        keep_roots={"root"},
                    ),
                )
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    record = store.load("ns", "root")
    assert record is not None and record.data == "40"


# -- moving a namespace (rotate_namespace) ------------------------------------------


def _moved(store: ConversationStore, default: bool) -> ConversationStore:
    if default and type(store).__name__ == "SessionStore":
        pytest.skip("the session store moves inside the session")
    return store


@pytest.mark.parametrize("default", [False, True], ids=["store", "default"])
def test_move_namespace(store: ConversationStore, make: Records, default: bool) -> None:
    """Every record moves whole, the old namespace keeps none, others are
    untouched, and every lock is free again. ``default`` runs the base
    class's version, built on the primitives, on the same store; on a
    Redis Cluster the two namespaces live in different slots.
    """
    store = _moved(store, default)
    root = make("root", description="trip")
    child = make("child", root, data='{"n":2}', timeout=99)
    ended = make("ended", ended=True)
    stranger = make("root", namespace="stranger")
    for r in (root, child, ended, stranger):
        store.save(r)

    move = ConversationStore.move_namespace if default else type(store).move_namespace
    move(store, "ns", "moved", 1)

    assert store.list_namespace("ns") == []
    assert store.load_chain("ns", "child") is None
    moved = {r.id: r for r in store.list_namespace("moved")}
    assert set(moved) == {"root", "child", "ended"}
    for r in (root, child, ended):
        assert vars(moved[r.id]) == {**vars(r), "namespace": "moved"}
    chain = store.load_chain("moved", "child")
    assert chain is not None and ids(chain) == ["child", "root"]
    assert ids(store.list_namespace("stranger")) == ["root"]
    for namespace in ("ns", "moved"):
        token = store.lock(namespace, "root", 0)
        assert token is not None
        store.unlock(namespace, "root", token)


def test_move_namespace_waits_for_the_stacks_holder(
    store: ConversationStore, make: Records
) -> None:
    """A request that holds a stack commits first, and its change moves
    along; nothing is left in the old namespace.
    """
    if type(store).__name__ == "SessionStore":
        pytest.skip("the session store is bound to one request")
    store.save(make("root", data="1"))
    acquired = store.acquire("ns", "root", 1)
    assert acquired is not None
    record = acquired.chain[-1]
    record.data = "2"
    batch = CommitBatch(
        saves=[record], unlock={"root": acquired.token}, keep_roots={"root"}, held={"root"}
    )
    timer = threading.Timer(0.2, store.commit, ("ns", batch))
    timer.start()
    try:
        store.move_namespace("ns", "moved", 10)
    finally:
        timer.join()
    assert store.list_namespace("ns") == []
    assert [r.data for r in store.list_namespace("moved")] == ["2"]


def test_move_namespace_does_not_wait_forever(store: ConversationStore, make: Records) -> None:
    """A stack whose lock stays busy moves anyway; its holder then finds it
    gone at commit and writes nothing back into the old namespace.
    """
    if type(store).__name__ == "SessionStore":
        pytest.skip("the session store is bound to one request")
    store.save(make("root", data="1"))
    acquired = store.acquire("ns", "root", 1)
    assert acquired is not None
    started = time.monotonic()
    store.move_namespace("ns", "moved", 0.1)
    assert time.monotonic() - started < 5
    record = acquired.chain[-1]
    record.data = "late"
    destroyed = store.commit(
        "ns",
        CommitBatch(
            saves=[record, make("late-child", record, data="late")],
            unlock={"root": acquired.token},
            keep_roots={"root"},
            held={"root"},
        ),
    )
    assert destroyed == []
    assert store.list_namespace("ns") == []
    assert [r.data for r in store.list_namespace("moved")] == ["1"]
    assert store.lock("ns", "root", 0) is not None


def test_commit_clear(store: ConversationStore, make: Records) -> None:
    """``clear`` removes what the namespace holds at the commit, with reason
    ``"cleared"`` (ended survivors silently), then applies the batch's own
    saves; another namespace is untouched.
    """
    root = make("root")
    for r in (root, make("child", root), make("survivor", ended=True), make("x", namespace="o")):
        store.save(r)
    destroyed = store.commit("ns", CommitBatch(saves=[make("fresh")], clear=True))
    assert sorted(destroyed) == [("child", "cleared"), ("root", "cleared")]
    assert ids(store.list_namespace("ns")) == ["fresh"]
    assert ids(store.list_namespace("o")) == ["x"]
