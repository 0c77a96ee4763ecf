"""The shortcuts stores take for speed must not change what they do: a
commit that only saves, where nothing can have expired and everything fits,
skips the commit rules, and must end exactly as applying them would.
Random batches are applied to a store and to a reference that always runs
the full rules, and the results compared.
"""

from __future__ import annotations

import dataclasses
import random
import typing as t

import pytest
from conftest import FakeClock
from flask import Flask
from flask import request as flask_request
from flask import session

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.extension import conversations
from flask_conversation.stores.base import ConversationStore
from flask_conversation.stores.memory import MemoryStore
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.records import Destroyed
from flask_conversation.stores.redis import RedisStore
from flask_conversation.stores.session import SESSION_KEY
from flask_conversation.stores.session import SessionStore
from flask_conversation.testing import ConversationClient
from stores.store_testing import PlanReference

IDS = [f"c{i}" for i in range(12)]


def random_batch(
    rng: random.Random, namespace: str, now: float, timeouts: t.Sequence[float] = (10, 60)
) -> CommitBatch:
    """Up to three saves (roots or children, some ended), sometimes one
    delete, and a count limit that is sometimes exceeded.
    """
    saves = []
    for cid in rng.sample(IDS, rng.randint(0, 3)):
        parent = rng.choice([None, None, rng.choice(IDS)])
        parent = None if parent == cid else parent
        saves.append(
            ConversationRecord(
                id=cid,
                namespace=namespace,
                parent_id=parent,
                root_id=parent or cid,
                depth=1 if parent else 0,
                data="{}",
                description=None,
                timeout=rng.choice(timeouts),
                created_at=now,
                last_access=now,
                ended=rng.random() < 0.1,
            )
        )
    deletes: dict[str, str | None] = {
        cid: "ended" for cid in rng.sample(IDS, rng.choice([0, 0, 0, 1]))
    }
    # Stacks the request held, which another request may have removed.
    held = {r.root_id for r in saves if rng.random() < 0.5}
    return CommitBatch(
        saves=saves,
        deletes=deletes,
        max_count=rng.choice([3, 6, 32]),
        clear=rng.random() < 0.03,
        held=held,
    )


def copy(batch: CommitBatch) -> CommitBatch:
    """A batch for one store: no store sees another's lists."""
    return dataclasses.replace(
        batch, saves=list(batch.saves), deletes=dict(batch.deletes), held=set(batch.held)
    )


def kept(store: ConversationStore, namespace: str, now: float) -> list[tuple[str, float, bool]]:
    return sorted(
        (r.id, r.last_access, r.ended)
        for r in store.list_namespace(namespace)
        if r.expires_at > now
    )


def test_memory_store() -> None:
    rng = random.Random(1)
    for _ in range(100):
        clock = FakeClock(1000.0)
        size = rng.choice([5, 50, 1000])
        fast, reference = MemoryStore(size, clock=clock), PlanReference(size, clock=clock)
        for _ in range(40):
            clock.advance(rng.choice([0, 1, 5, 30]))
            batch = random_batch(rng, "n", clock.now)
            results = [sorted(store.commit("n", copy(batch))) for store in (fast, reference)]
            assert results[0] == results[1]
            assert kept(fast, "n", clock.now) == kept(reference, "n", clock.now)


def test_redis_store(redis_client: t.Any) -> None:
    class Reference(RedisStore):
        # Without its earliest expiry, the index always takes the full rules.
        def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
            self.client.hdel(self.keys(namespace).meta, "~e")
            return super().commit(namespace, batch)

    rng = random.Random(2)
    for run in range(40):
        clock = FakeClock(1000.0)
        fast = RedisStore(redis_client, prefix=f"eq{run}:", clock=clock)
        reference = Reference(redis_client, prefix=f"ref{run}:", clock=clock)
        for step in range(40):
            clock.advance(rng.choice([0, 0.25, 1, 5, 30]))
            batch = random_batch(rng, "n", clock.now, timeouts=(10, 60, 0.5))
            if batch.saves and rng.random() < 0.1:
                # The primitives keep the earliest expiry too.
                for store in (fast, reference):
                    store.save(batch.saves[0])
                continue
            results = [sorted(store.commit("n", copy(batch))) for store in (fast, reference)]
            assert results[0] == results[1], (run, step)
            assert kept(fast, "n", clock.now) == kept(reference, "n", clock.now), (run, step)


@pytest.mark.parametrize("sql_kind", ["sqlite", "postgres", "mariadb"])
def test_sql_store(sql_kind: str, request: pytest.FixtureRequest) -> None:
    """The SQL store's commit that renews and adds without reading the
    namespace, against the same store made to apply the full rules every
    time (its namespace rows claim that something expired).
    """
    from flask_conversation.stores.sql import SQLAlchemyStore
    from tests.sql_servers import sql_engine
    from tests.sql_servers import sql_url_for

    class Reference(SQLAlchemyStore):
        def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
            with self.engine.begin() as conn:
                conn.execute(self.tables.namespaces.update().values(earliest=0.0))
            return super().commit(namespace, batch)

    engine = sql_engine(sql_url_for(sql_kind, request))
    rng = random.Random(3)
    clock = FakeClock(1000.0)
    fast = SQLAlchemyStore(engine, table_prefix="eq_", clock=clock)
    reference = Reference(engine, table_prefix="ref_", clock=clock)
    reference.load("n", "c0")  # creates its tables
    renewed = 0
    try:
        for run in range(10):
            ns = f"n{run}"
            for step in range(30):
                clock.advance(rng.choice([0, 0.25, 1, 5, 30]))
                batch = random_batch(rng, ns, clock.now, timeouts=(10, 60, 0.5))
                # A request holds only stacks it read from the store. (One
                # that another request removes meanwhile: test_sql_store.)
                stored = {r.id for r in fast.list_namespace(ns)}
                batch.held &= stored
                if batch.saves and rng.random() < 0.1:
                    # The primitives keep the namespace's row too.
                    for store in (fast, reference):
                        store.save(batch.saves[0])
                    continue
                renewed += bool(batch.saves and not batch.deletes)
                results = [sorted(store.commit(ns, copy(batch))) for store in (fast, reference)]
                assert results[0] == results[1], (run, step)
                assert kept(fast, ns, clock.now) == kept(reference, ns, clock.now), (run, step)
            for store in (fast, reference):
                assert _namespace_count(store, ns) == len(store.list_namespace(ns)), run
    finally:
        engine.dispose()
    assert renewed > 80


def _namespace_count(store: t.Any, namespace: str) -> int:
    """The number of records the row of ``namespace`` counts (0 without a
    row), after checking that its earliest expiry is a lower bound.
    """
    namespaces = store.tables.namespaces
    with store.engine.connect() as conn:
        row = conn.execute(namespaces.select().where(namespaces.c.namespace == namespace)).first()
    if row is None:
        return 0
    assert all(r.expires_at >= row.earliest for r in store.list_namespace(namespace))
    return int(row.records)


def test_session_store() -> None:
    class Reference(SessionStore):
        @staticmethod
        def _only_saves(stored: dict[str, t.Any], batch: CommitBatch, now: float) -> bool:
            return False

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test")
    rng = random.Random(4)
    shortcuts = 0
    for _ in range(60):
        clock = FakeClock(1000.0)
        stores = {"fast": SessionStore(clock=clock), "ref": Reference(clock=clock)}
        with app.test_request_context():
            for _ in range(40):
                clock.advance(rng.choice([0, 1, 5, 30]))
                batch = random_batch(rng, "", clock.now)
                results = {}
                for ns, store in stores.items():
                    own = copy(batch)
                    own.saves = [
                        ConversationRecord(**{**vars(r), "namespace": ns}) for r in batch.saves
                    ]
                    if ns == "fast":
                        stored = dict(session.get(SESSION_KEY, {}).get(ns, {}))
                        shortcuts += store._only_saves(stored, own, clock.now)
                    results[ns] = sorted(store.commit(ns, own))
                assert results["fast"] == results["ref"]
                stored_all = session.get(SESSION_KEY, {})
                assert stored_all.get("fast") == stored_all.get("ref")
    # The shortcut was taken often enough for the comparison to mean something.
    assert shortcuts > 100


def listed_and_unlisted(
    kind: str, request: pytest.FixtureRequest, clock: FakeClock
) -> tuple[ConversationStore, ConversationStore]:
    """A store of ``kind`` that lists with the lock, and one of the same
    kind (apart from it) that always lists with ``list_namespace``.
    """
    if kind == "redis":
        client = request.getfixturevalue("redis_client")

        class UnlistedRedis(RedisStore):
            listing_limit = -1

        return (
            RedisStore(client, clock=clock, prefix="listed:"),
            UnlistedRedis(client, clock=clock, prefix="unlisted:"),
        )
    from flask_conversation.stores.sql import SQLAlchemyStore
    from tests.sql_servers import sql_engine
    from tests.sql_servers import sql_url_for

    class UnlistedSQL(SQLAlchemyStore):
        listing_limit = -1

    engine = sql_engine(sql_url_for(kind[4:], request))
    request.addfinalizer(engine.dispose)
    return (
        SQLAlchemyStore(engine, clock=clock, table_prefix="listed_"),
        UnlistedSQL(engine, clock=clock, table_prefix="unlisted_"),
    )


@pytest.mark.parametrize("kind", ["redis", "sql-sqlite", "sql-postgres", "sql-mariadb"])
def test_the_listing_with_the_lock_lists_like_list_namespace(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """A request that holds a stack lists its namespace from what its lock
    brought along (Redis: the index, in the same round trip; SQL: the
    metadata of the lease): the same summaries as from ``list_namespace``,
    which a store without that listing uses, in random runs of begins,
    nested begins, ends and listings, with expiry and eviction.
    """
    clock = FakeClock()
    listed = {}
    for name, store in zip(
        ["listed", "unlisted"], listed_and_unlisted(kind, request, clock), strict=True
    ):
        app = Flask(__name__)
        app.config.update(SECRET_KEY="test", CONVERSATION_MAX_COUNT=6)
        ConversationScope(app, store=store)

        @app.post("/begin")
        def begin() -> dict[str, t.Any]:
            args = flask_request.args
            conversation.begin(
                id=args["id"],
                nested=bool(args.get("nested")),
                description=args.get("d"),
                timeout=float(args.get("timeout", 60)),
            )
            conversation["v"] = "x" * int(args.get("size", 1))
            return {"id": conversation.id}

        @app.post("/end")
        def end() -> str:
            conversation.end(before_redirect=False)
            return ""

        @app.get("/list")
        def listing() -> list[t.Any]:
            return [repr(i) for i in conversations()]

        rng = random.Random(3)
        clock.now = 1_700_000_000.0
        api = ConversationClient(app)
        tabs = [api.new_tab() for _ in range(4)]
        seen = []
        for step in range(60):
            tab = rng.choice(tabs)
            clock.advance(rng.choice([0, 1, 20, 45]))
            action = rng.random()
            if action < 0.35 or tab.cid is None:
                nested = "1" if tab.cid and rng.random() < 0.5 else ""
                tab.post(
                    f"/begin?id=c{step}&nested={nested}&d=t{rng.randint(0, 9)}"
                    f"&timeout={rng.choice([30, 60])}&size={rng.randint(1, 40)}"
                )
            elif action < 0.45:
                tab.post("/end")
            else:
                rv = tab.get("/list")
                if rv.status_code == 200:
                    seen.append(rv.json)
                else:
                    seen.append(rv.status_code)
                    tab.cid = None
        listed[name] = seen
    assert listed["listed"] == listed["unlisted"]
    assert any(isinstance(page, list) and len(page) > 2 for page in listed["listed"])


def stack_batch(rng: random.Random, namespace: str, now: float) -> CommitBatch:
    """What one request may commit: saves in one stack (a root, children,
    grandchildren, sometimes an ended survivor), deletes of other
    conversations, the saved stack kept from eviction and sometimes held,
    sometimes an end_all, a count limit that is often exceeded.
    """
    root = rng.choice(IDS)
    saves = []
    if rng.random() < 0.8:
        tree = {root: (None, 0)}
        for cid in rng.sample([i for i in IDS if i != root], rng.randint(0, 3)):
            parent = rng.choice(list(tree))
            tree[cid] = (parent, tree[parent][1] + 1)
        ended = rng.random() < 0.1
        timeout = rng.choice((0.5, 10, 60))
        for cid, (parent, depth) in tree.items():
            saves.append(
                ConversationRecord(
                    id=cid,
                    namespace=namespace,
                    parent_id=parent,
                    root_id=root,
                    depth=depth,
                    data=f'{{"at":{now!r}}}',
                    description=rng.choice([None, "", "a stay: 2 nights ~ é"]),
                    timeout=timeout,
                    created_at=now - 1,
                    last_access=now,
                    ended=ended and parent is None and len(tree) == 1,
                )
            )
    # A request never saves what it deletes, except an ended root that
    # survives one more request.
    saved = {r.id for r in saves}
    deletes: dict[str, str | None] = {
        cid: rng.choice(["ended", "cleared", None])
        for cid in rng.sample([i for i in IDS if i not in saved], rng.choice([0, 0, 0, 1, 2]))
    }
    if saves and saves[0].ended:
        deletes[root] = "ended"
    return CommitBatch(
        saves=saves,
        deletes=deletes,
        max_count=rng.choice([2, 4, 8, 32]),
        keep_roots={root} if saves else set(),
        # The stack was read under its lock; another request may have
        # removed it since.
        held={root} if saves and rng.random() < 0.5 else set(),
        clear=rng.random() < 0.03,
    )


def test_redis_commit_decides_as_plan_commit(redis_client: t.Any) -> None:
    """The commit script, shortcut and full rules, against
    :func:`plan_commit` itself applied by the base class to a
    ``MemoryStore``: the same conversations destroyed with the same
    reasons, the same records kept, in random batches that expire, end
    subtrees, leave survivors and evict stacks.
    """

    rng = random.Random(5)
    shortcut = full = 0
    for run in range(30):
        clock = FakeClock(1000.0)
        redis_store = RedisStore(redis_client, prefix=f"plan{run}:", clock=clock)
        reference = PlanReference(10_000, clock=clock)
        for step in range(40):
            # Time always moves, so that no two stacks tie for eviction.
            clock.advance(rng.choice([0.25, 1, 5, 30]))
            batch = stack_batch(rng, "n", clock.now)
            token = None
            if batch.saves and rng.random() < 0.5:
                root = batch.saves[0].root_id
                token = redis_store.lock("n", root, 0)
                assert token is not None
            meta = redis_store.keys("n").meta
            earliest = redis_client.hget(meta, "~e")
            if (
                earliest is not None
                and float(earliest) > clock.now
                and not (batch.deletes or batch.clear)
            ):
                shortcut += 1
            else:
                full += 1
            ours = copy(batch)
            if token is not None:
                ours.unlock = {batch.saves[0].root_id: token}
            results = [
                sorted(redis_store.commit("n", ours)),
                sorted(reference.commit("n", copy(batch))),
            ]
            assert results[0] == results[1], (run, step)
            assert live(redis_store, clock.now) == live(reference, clock.now), (run, step)
            if token is not None:
                # Released with the commit.
                assert redis_store.lock("n", batch.saves[0].root_id, 0) is not None
                redis_client.delete(redis_store.keys("n").lock(batch.saves[0].root_id))
    assert shortcut > 100 and full > 100, (shortcut, full)


def live(store: ConversationStore, now: float) -> list[ConversationRecord]:
    return sorted((r for r in store.list_namespace("n") if r.expires_at > now), key=lambda r: r.id)
