"""RedisStore's plain-command path on a Redis Cluster whose slot moves to
another primary while the process still sends the namespace's commands to
the node it knew. Each test drives a real migration (``CLUSTER SETSLOT``
``IMPORTING``/``MIGRATING``, ``MIGRATE``, ``CLUSTER SETSLOT ... NODE``) of
the namespace's slot on the session's cluster, between requests or while
one holds its stack, through the Flask test client, and checks two things:
that the path really met ``MOVED`` or ``ASK`` (the source node counts the
commands it refused: only the path sends ``WATCH``, and its read is the
only ``HMGET`` sent on its own), and that the requests end as they would
without a migration: the data intact, every write kept, no lock left, the
connections given back, and the path taken again once the client knows
the new owner.

The slot is given back to its first owner after each test, the keys
flushed, so that the other tests find the cluster as it was started.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import typing as t

import pytest
from conftest import counted_app
from flask import Flask
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster

from flask_conversation import conversation
from flask_conversation import conversation_readonly
from flask_conversation import ConversationScope
from flask_conversation.cli import conversation_cli
from flask_conversation.stores import RedisStore
from flask_conversation.stores.redis.keys import HOLD
from flask_conversation.stores.redis.scripts import NAMES
from flask_conversation.stores.redis.scripts import source
from flask_conversation.testing import ConversationClient
from stores.store_testing import CommandLog
from stores.store_testing import counting_deployment
from stores.store_testing import CountingConnection
from stores.store_testing import RENEW
from tests.redis_servers import RedisServer

#: Every request of a test is in this namespace (a user's), so that its
#: slot is known before the first request.
NAMESPACE = "a-user"

#: What a new connection of the client sends first, left out of the
#: commands counted.
GREETING = {"HELLO", "CLIENT"}

#: A bound on every wait of these tests, in seconds.
PATIENCE = 10.0


def run(server: RedisServer, *args: t.Any) -> t.Any:
    """One command on ``server``, through a connection of its own."""
    with server.client() as c:
        return c.execute_command(*args)


def node_id(server: RedisServer) -> str:
    raw = run(server, "CLUSTER", "MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def owner_id(server: RedisServer, slot: int) -> str:
    """The id of the node that serves ``slot``, as ``server`` sees it."""
    for first, last, primary, *_ in run(server, "CLUSTER", "SLOTS"):
        if first <= slot <= last:
            raw = primary[2]
            return raw.decode() if isinstance(raw, bytes) else str(raw)
    raise AssertionError(f"slot {slot} is not served")


class SlotMove:
    """The migration of one slot from the node that serves it to another,
    step by step, as ``redis-cli --cluster reshard`` does it.

    :param servers: the cluster's primaries.
    :param slot: the slot.
    """

    def __init__(self, servers: list[RedisServer], slot: int) -> None:
        self.servers = servers
        self.slot = slot
        self._ids = [node_id(s) for s in servers]
        self.source = servers[self._ids.index(owner_id(servers[0], slot))]
        self.target = next(s for s in servers if s is not self.source)

    def _id(self, server: RedisServer) -> str:
        return self._ids[self.servers.index(server)]

    def start(self) -> None:
        """The target imports the slot, the source migrates it: from now on
        the source answers ``ASK`` for a key it does not hold.
        """
        run(self.target, "CLUSTER", "SETSLOT", self.slot, "IMPORTING", self._id(self.source))
        run(self.source, "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self._id(self.target))

    def move_keys(self) -> list[bytes]:
        """``MIGRATE`` every key of the slot from the source to the target
        (each with its time to live); the keys moved.
        """
        moved: list[bytes] = []
        while keys := self.keys_on(self.source):
            run(
                self.source,
                "MIGRATE",
                self.target.host,
                self.target.port,
                "",
                0,
                5000,
                "KEYS",
                *keys,
            )
            moved += keys
        return moved

    def finish(self) -> None:
        """Every node learns that the target serves the slot: from now on
        the source answers ``MOVED``.
        """
        others = [s for s in self.servers if s not in (self.source, self.target)]
        for server in (self.target, self.source, *others):
            run(server, "CLUSTER", "SETSLOT", self.slot, "NODE", self._id(self.target))

    def whole(self) -> None:
        """The three steps at once."""
        self.start()
        self.move_keys()
        self.finish()

    def keys_on(self, server: RedisServer) -> list[bytes]:
        """The keys of the slot ``server`` holds."""
        return list(run(server, "CLUSTER", "GETKEYSINSLOT", self.slot, 1000))

    def locks(self) -> list[bytes]:
        """The stack locks of the slot, on every node."""
        return [k for s in self.servers for k in self.keys_on(s) if b":l:" in k]

    def restore(self) -> None:
        """Flush the keys and give the slot back to the source, the way it
        left (an import, so that the source's claim wins), then wait until
        every node agrees.
        """
        for server in self.servers:
            run(server, "CLUSTER", "SETSLOT", self.slot, "STABLE")
            run(server, "FLUSHALL")
        home = self._id(self.source)
        deadline = time.monotonic() + PATIENCE
        while len(seen := {owner_id(s, self.slot) for s in self.servers}) > 1:
            # A node set half way by a failed test: gossip settles it.
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        (current,) = seen
        if current != home:
            holder = self.servers[self._ids.index(current)]
            run(self.source, "CLUSTER", "SETSLOT", self.slot, "IMPORTING", current)
            run(holder, "CLUSTER", "SETSLOT", self.slot, "MIGRATING", home)
            others = [s for s in self.servers if s not in (self.source, holder)]
            for server in (self.source, holder, *others):
                run(server, "CLUSTER", "SETSLOT", self.slot, "NODE", home)
        while {owner_id(s, self.slot) for s in self.servers} != {home}:
            assert time.monotonic() < deadline
            time.sleep(0.05)


class Deployment:
    """An application on a RedisStore on the session's cluster, whose
    client counts round trips and whose servers log the commands they
    receive, with a :class:`SlotMove` of the namespace's slot.

    :param servers: the cluster's primaries.
    :param client: the store's client.
    """

    def __init__(self, servers: list[RedisServer], client: RedisCluster) -> None:
        self.servers = servers
        self.client = client
        self.store = RedisStore(client)
        slot = client.keyslot(self.store.keys(NAMESPACE).meta)  # type: ignore[no-untyped-call]
        self.move = SlotMove(servers, int(slot))
        #: What ``/incr-moving`` and ``/fail`` call while their request
        #: holds its stack.
        self.during: t.Callable[[], None] = lambda: None
        self.app = self._app()
        self.tab = t.cast(ConversationClient, self.app.test_client())
        self.log = CommandLog(servers)
        # Kept open, so that reading the source's counters opens no
        # connection of its own.
        self._source = self.move.source.client()

    def _app(self) -> Flask:
        # The counter of the other store tests (/begin, /incr), and views
        # that act while their request holds its stack.
        app = counted_app(self.store)
        app.config.update(
            # A lock left behind is answered busy at once, not after 5 s.
            CONVERSATION_LOCK_TIMEOUT=0.01,
            PROPAGATE_EXCEPTIONS=False,
        )
        scope: ConversationScope = app.extensions["conversation"]
        scope.namespace_loader(lambda: NAMESPACE)

        @app.post("/incr-moving")
        def incr_moving() -> dict[str, t.Any]:
            conversation["n"] += 1
            self.during()
            return {"n": conversation["n"]}

        @app.post("/fail")
        def fail() -> str:
            conversation["n"] += 1
            self.during()
            raise RuntimeError("the view failed")

        @app.get("/peek")
        @conversation_readonly
        def peek() -> dict[str, t.Any]:
            return {"n": conversation["n"]}

        return app

    def incr(self, path: str = "/incr", tab: ConversationClient | None = None) -> int:
        """Count once in the tab's conversation: the count it answers."""
        rv = (tab or self.tab).post(path)
        assert rv.status_code == 200, rv.text
        return int(rv.json["n"])  # type: ignore[index]

    def peek(self, tab: ConversationClient | None = None) -> int:
        """The count, read without the lock."""
        rv = (tab or self.tab).get("/peek")
        assert rv.status_code == 200, rv.text
        return int(rv.json["n"])  # type: ignore[index]

    def stored(self, cid: str | None = None) -> int:
        """The count as a process that never saw the conversation reads it
        (a client of its own, through the scripts).
        """
        cid = cid or self.tab.cid
        assert cid is not None
        client = RedisCluster(host=self.servers[0].host, port=self.servers[0].port)
        try:
            chain = RedisStore(client).load_chain(NAMESPACE, cid)
        finally:
            client.close()
        assert chain is not None
        return int(json.loads(chain[-1].data)["n"])

    def measure(self, call: t.Callable[[], int]) -> tuple[int, int, list[str]]:
        """Run ``call``: what it answers, the round trips the store's client
        made, and the commands the servers received (scripts' own left out,
        and the greeting of a new connection).
        """
        self.log.take()
        before = CountingConnection.sends
        rv = call()
        sent = CountingConnection.sends - before
        return rv, sent, [c for c in self.log.take() if c not in GREETING]

    def refused(self, command: str) -> int:
        """How many ``command`` calls the source refused so far (a cluster
        redirect refuses every command of the slot it sends away).
        ``WATCH`` is sent by the path's locking load only, ``HMGET`` first
        by its read (and last by its locking load).
        """
        stats = self._source.info("commandstats").get(f"cmdstat_{command}", {})
        return int(stats.get("rejected_calls", 0))

    def errors(self, prefix: str) -> int:
        """How many error replies starting with ``prefix`` the source sent."""
        stats = self._source.info("errorstats").get(f"errorstat_{prefix}", {})
        return int(stats.get("count", 0))

    def source_node(self) -> ClusterNode:
        """The store's client's node of the source."""
        source = self.move.source
        node = self.client.get_node(host=source.host, port=source.port)  # type: ignore[no-untyped-call]
        assert isinstance(node, ClusterNode)
        return node

    def lent_out(self) -> int:
        """How many connections the store's client has lent out to the
        source and not got back (redis-py keeps them in a private set).
        """
        connection = self.source_node().redis_connection
        assert connection is not None
        return len(connection.connection_pool._in_use_connections)

    def connections(self) -> int:
        """How many connections the source accepted so far."""
        return int(self._source.info("stats")["total_connections_received"])

    def close(self) -> None:
        self.log.close()
        self._source.close()


@contextlib.contextmanager
def keys_moved_after_tryagain(d: Deployment, tries: int) -> t.Iterator[list[bytes]]:
    """While the block runs, a thread moves the slot's keys to the target
    once the source has answered ``TRYAGAIN`` more than ``tries`` times in
    all; the list given to the block gets the keys it moved. The thread is
    stopped and joined when the block ends, and its failure raised.

    :param d: the deployment, whose slot is migrating.
    :param tries: the source's ``TRYAGAIN`` count to wait past.
    """
    done = threading.Event()
    migrated: list[bytes] = []
    failures: list[BaseException] = []

    def migrate_once_refused() -> None:
        try:
            while d.errors("TRYAGAIN") <= tries:
                if done.wait(0.005):
                    return
            migrated.extend(d.move.move_keys())
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    mover = threading.Thread(target=migrate_once_refused)
    mover.start()
    try:
        yield migrated
    finally:
        done.set()
        mover.join()
    assert failures == []


@pytest.fixture
def deployment(request: pytest.FixtureRequest) -> t.Iterator[Deployment]:
    """A :class:`Deployment` on the emptied cluster, with its scripts
    loaded on every primary (so that round trips are counted exactly) and
    one conversation begun and counted once, so that the process knows its
    chain. The slot goes back to its first owner afterwards.
    """
    servers, client = counting_deployment("redis-cluster", request)
    assert isinstance(client, RedisCluster)
    for name in NAMES:
        client.script_load(source(name))
    client.ping(target_nodes=RedisCluster.PRIMARIES)
    deployment = Deployment(servers, client)
    try:
        assert deployment.tab.post("/begin").status_code == 200
        assert deployment.incr() == 1
        # Known, so on the path: a renewal in two round trips, no script.
        assert deployment.measure(deployment.incr) == (2, 2, RENEW)
        yield deployment
    finally:
        deployment.close()
        deployment.move.restore()


def test_moved_a_locking_request_falls_back_and_commits(deployment: Deployment) -> None:
    """After the namespace's slot moved to another primary, the next
    request that reads and writes meets ``MOVED`` on the plain-command
    path, gives back what it took, and succeeds through the scripts: the
    count goes on from where it was, the lock is released, and the request
    after it is back on the path, on the new primary.
    """
    d = deployment
    moved = d.move
    moved.whole()
    assert moved.keys_on(moved.source) == []
    watch, hmget, redirects = d.refused("watch"), d.refused("hmget"), d.errors("MOVED")
    connections = d.connections()
    count, sends, commands = d.measure(d.incr)
    assert (count, commands) == (3, ["EVALSHA", "EVALSHA"])
    # The path's send (refused), the acquire script's (refused: the client
    # still had the old layout, and learned it), the acquire script on the
    # target, the commit script there; and the greeting of the connection
    # the path gave back closed, opened again for the script.
    assert sends >= 4
    assert d.connections() == connections + 1
    assert (d.refused("watch"), d.refused("hmget")) == (watch + 1, hmget + 1)
    # SET, WATCH, HGETALL, HMGET, then the script's EVALSHA.
    assert d.errors("MOVED") == redirects + 5
    assert moved.locks() == []
    # Nothing was written on the source; the write is on the target.
    assert moved.keys_on(moved.source) == []
    assert d.stored() == 3
    # The client learned where the slot lives: the path is taken again,
    # on the target, and no lock stands in its way.
    assert d.measure(d.incr) == (4, 2, RENEW)
    assert d.refused("watch") == watch + 1
    assert d.peek() == 4 and d.stored() == 4
    # The source's connections went back, usable (closed, never with
    # replies left unread).
    assert d.lent_out() == 0
    for _ in range(3):
        assert d.client.ping(target_nodes=d.source_node()) is True


def test_moved_loses_no_update(deployment: Deployment) -> None:
    """Two conversations of a user, in two tabs that take turns, before
    and after the slot moves: every count is kept once, in both.
    """
    d = deployment
    other = d.tab.new_tab()
    assert other.post("/begin").status_code == 200
    watch = d.refused("watch")
    first, second = 2, 0
    for step in range(6):
        if step == 3:
            d.move.whole()
        first += 1
        assert d.incr() == first
        second += 1
        assert d.incr(tab=other) == second
    # The first request after the move met MOVED on the path; the client
    # learned the new layout then, so the other tab's went straight there.
    assert d.refused("watch") == watch + 1
    assert d.stored() == first == 8
    assert d.peek(other) == second == 6 and d.stored(other.cid) == 6
    assert d.move.locks() == []


@pytest.mark.parametrize("finished", [False, True], ids=["ask", "moved"])
def test_a_slot_moved_while_a_request_holds_its_stack(
    deployment: Deployment, finished: bool
) -> None:
    """The slot moves between the request's locking load and its commit:
    the path's transaction on the source is refused (``ASK`` while the
    slot is migrating, ``MOVED`` once it moved) and writes nothing; the
    commit script, through the client, makes the commit on the node that
    now holds the keys, where the lock moved with its lease.
    """
    d = deployment
    moved = d.move

    def migrate() -> None:
        moved.start()
        assert any(b":l:" in k for k in moved.move_keys())
        if finished:
            moved.finish()

    d.during = migrate
    hset = d.refused("hset")
    assert d.incr("/incr-moving") == 3
    # The path's transaction met the redirect.
    assert d.refused("hset") > hset
    assert moved.locks() == []
    if not finished:
        moved.finish()
    assert d.stored() == 3
    assert d.incr() == 4 and d.stored() == 4


def test_a_failed_request_releases_its_lock_after_the_slot_moved(deployment: Deployment) -> None:
    """A request whose view fails after the slot moved releases its lock
    through the scripts (the path's own release is refused): the next
    request does not find the stack busy, and nothing was written.
    """
    d = deployment
    cid = d.tab.cid
    d.during = d.move.whole
    evalsha = d.refused("evalsha")
    assert d.tab.post("/fail").status_code == 500
    # The release on the held connection was refused.
    assert d.refused("evalsha") > evalsha
    assert d.move.locks() == []
    d.tab.cid = cid
    assert d.stored() == 2
    assert d.incr() == 3 and d.stored() == 3


def test_ask_with_the_keys_moved(deployment: Deployment) -> None:
    """While the slot is migrating and the namespace's keys are already on
    the target, every request meets ``ASK`` on the plain-command path
    (the client keeps its layout: ``ASK`` teaches it nothing) and succeeds
    through the scripts, which follow it; once the slot is handed over,
    ``MOVED`` once, then the path again.
    """
    d = deployment
    moved = d.move
    moved.start()
    assert moved.move_keys()
    asks = d.errors("ASK")
    for n in (3, 4, 5):
        watch = d.refused("watch")
        assert d.incr() == n
        assert d.refused("watch") == watch + 1
        assert moved.locks() == []
    # Each: the batch's four commands, the acquire script, the commit script.
    assert d.errors("ASK") == asks + 3 * 6
    assert d.lent_out() == 0
    hmget = d.refused("hmget")
    assert d.peek() == 5
    assert d.refused("hmget") == hmget + 2
    assert moved.keys_on(moved.source) == []
    moved.finish()
    watch = d.refused("watch")
    assert d.incr() == 6
    assert d.refused("watch") == watch + 1
    assert d.measure(d.incr) == (7, 2, RENEW)
    assert d.stored() == 7


def test_ask_with_the_keys_still_on_the_source(deployment: Deployment) -> None:
    """While the slot is migrating but its keys are still on the source, a
    new key (the stack's lock) can be made on neither node: the path meets
    ``ASK`` and falls back; the acquire script answers ``TRYAGAIN``, as
    Redis does for a command whose keys are split, and the client tries
    again until the keys have moved. The request succeeds, with the count
    intact.
    """
    d = deployment
    moved = d.move
    moved.start()
    # A user's client that waits longer for a migration than redis-py's
    # default (16 tries, about 0.4 s).
    d.client.RedisClusterRequestTTL = 200
    hmget = d.refused("hmget")
    # A read makes no key: served on the source, no redirect.
    assert d.peek() == 2 and d.refused("hmget") == hmget
    # The path's WATCH of the missing lock and the existing metadata is
    # answered TRYAGAIN by Redis itself: the script's come after it.
    tries = d.errors("TRYAGAIN") + 1
    watch = d.refused("watch")
    with keys_moved_after_tryagain(d, tries) as migrated:
        # Bounded by the client's tries: 200, most 50 ms apart.
        rv = d.tab.post("/incr")
    assert rv.status_code == 200 and rv.json == {"n": 3}, rv.text
    # The script answered TRYAGAIN, then the keys moved.
    assert migrated and d.errors("TRYAGAIN") > tries
    assert d.refused("watch") == watch + 1
    assert moved.locks() == []
    moved.finish()
    assert d.stored() == 3


def test_a_commit_reads_the_locks_holding_the_keys_before_it_writes(
    deployment: Deployment,
) -> None:
    """The namespace's keys are held for a lock whose lease ran out (listed
    in the metadata's ``HOLD``, its key gone), and the slot starts migrating
    while a request holds its stack, the keys still on the source, where
    that lock can no longer be read. The commit script reads it before it
    writes anything and answers ``TRYAGAIN``; the client tries again until
    the keys have moved, and the commit is made once, on the target, where
    the lock that ran out no longer holds the keys.
    """
    d = deployment
    moved = d.move
    meta = d.store.keys(NAMESPACE).meta
    # What the lock script's hold leaves behind for a request whose lease
    # then ran out (a worker killed while the keys were about to expire).
    d.client.hset(meta, HOLD, "a-stack-whose-lease-ran-out")
    d.client.RedisClusterRequestTTL = 200
    tries = d.errors("TRYAGAIN")
    # Locked and loaded before the slot migrates: only the commit meets it.
    d.during = moved.start
    with keys_moved_after_tryagain(d, tries) as migrated:
        rv = d.tab.post("/incr-moving")
    # Read after the writes, that lock failed the script half way: 503.
    assert rv.status_code == 200 and rv.json == {"n": 3}, rv.text
    assert migrated and d.errors("TRYAGAIN") > tries
    assert moved.locks() == []
    moved.finish()
    assert d.stored() == 3
    assert d.client.hget(meta, HOLD) is None
    assert d.incr() == 4 and d.stored() == 4


def test_ask_a_stalled_migration_answers_503_and_keeps_everything(
    deployment: Deployment,
) -> None:
    """A migration stuck with the keys on the source: a request that locks
    answers 503 once the client's tries are spent, and leaves no lock and
    no change; a read goes on; once the keys moved, requests succeed.
    """
    d = deployment
    moved = d.move
    moved.start()
    cid = d.tab.cid
    tries = d.errors("TRYAGAIN")
    started = time.monotonic()
    rv = d.tab.post("/incr")
    assert rv.status_code == 503, rv.text
    assert time.monotonic() - started < PATIENCE
    # The path's WATCH once, then the script at each of the client's tries.
    assert d.errors("TRYAGAIN") > tries + 1
    assert moved.locks() == []
    d.tab.cid = cid
    assert d.peek() == 2
    moved.move_keys()
    assert d.incr() == 3
    moved.finish()
    assert d.stored() == 3


@pytest.mark.parametrize("finished", [False, True], ids=["ask", "moved"])
def test_a_read_only_request_follows_the_slot(deployment: Deployment, finished: bool) -> None:
    """``@conversation_readonly`` after the slot moved (or while it is
    migrating with the keys moved): the path's two ``HMGET`` are refused,
    the read script follows the cluster, the view sees the last committed
    state, and nothing is locked or written.
    """
    d = deployment
    moved = d.move
    assert d.peek() == 2
    moved.start()
    moved.move_keys()
    if finished:
        moved.finish()
    hmget, watch = d.refused("hmget"), d.refused("watch")
    connections = d.connections()
    count, sends, commands = d.measure(d.peek)
    assert (count, commands) == (2, ["EVALSHA"] if finished else ["ASKING", "EVALSHA"])
    # The path's send, the script's that met the redirect, then the
    # script on the target (after ASKING, under ASK); and the greeting of
    # the connection the path gave back closed, opened again.
    assert sends >= (3 if finished else 4)
    assert d.connections() == connections + 1
    assert d.lent_out() == 0
    assert (d.refused("hmget"), d.refused("watch")) == (hmget + 2, watch)
    assert moved.locks() == []
    if finished:
        # The client learned the new owner: one round trip, two HMGET.
        assert d.measure(d.peek) == (2, 1, ["HMGET", "HMGET"])
        assert d.refused("hmget") == hmget + 2
    else:
        moved.finish()
    assert d.stored() == 2
    assert d.incr() == 3


@pytest.mark.parametrize("stage", ["migrating", "keys-moved", "moved"])
def test_the_cli_reads_a_conversation_while_the_slot_moves(
    deployment: Deployment, stage: str
) -> None:
    """``flask conversation show`` reads one record in one script call,
    which follows the slot wherever a migration has got to: served by the
    source while it still holds the keys, after ``ASK`` once they moved,
    after ``MOVED`` once the slot was handed over. A transaction, which a
    cluster client cannot send on under ``ASK``, failed here.
    """
    d = deployment
    moved = d.move
    moved.start()
    if stage != "migrating":
        moved.move_keys()
    if stage == "moved":
        moved.finish()
    asks, redirects = d.errors("ASK"), d.errors("MOVED")
    runner = d.app.test_cli_runner()
    rv = runner.invoke(conversation_cli, ["show", NAMESPACE, t.cast(str, d.tab.cid)])
    assert rv.exit_code == 0, rv.output
    assert json.loads(rv.stdout) == {"n": 2}
    assert d.errors("ASK") == asks + (stage == "keys-moved")
    assert d.errors("MOVED") == redirects + (stage == "moved")
    assert moved.locks() == []
