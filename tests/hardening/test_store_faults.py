"""Store faults with real processes, on a RedisStore (one server) and on a
SQLAlchemyStore (PostgreSQL): the store's server stopped in the middle of a
run of requests and started again, a gunicorn worker killed while it holds
a stack's lock, and a request that outlives its lock's lease.

Each server keeps exactly what it acknowledged across a crash (Redis with
``appendfsync always``, PostgreSQL with ``synchronous_commit``). The app
runs under gunicorn with a short lock lease; it is never restarted. The
scenarios are the same on both stores; a small helper per store breaks and
mends its server and reads it directly, to see what was really committed
and which locks are still held.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
import typing as t
from pathlib import Path

import pytest
import redis
import requests
import sqlalchemy as sa

from flask_conversation.stores.sql.tables import build_tables
from tests.hardening.instrumented import write_artifact
from tests.hardening.processes import Gunicorn
from tests.hardening.tabs import Tab
from tests.hardening.tabs import wait_until
from tests.redis_servers import RedisServer
from tests.sql_servers import PostgresServer

LEASE = 4.0


class StoreServer:
    """A store's server as the scenarios see it: the app's settings, the
    faults it can be put through, and what it really holds.
    """

    #: The store's name in test ids and artifacts.
    name: t.ClassVar[str]
    #: The faults :meth:`fail` knows, each with how many outage 503s every
    #: tab waits for before the server is mended.
    faults: t.ClassVar[dict[str, int]]

    def env(self, fault: str | None = None) -> dict[str, str]:
        """The app's ``FC_*`` settings for this store, with the lease."""
        raise NotImplementedError

    def fail(self, fault: str) -> None:
        """Take the server away in the way ``fault`` names."""
        raise NotImplementedError

    def mend(self, fault: str) -> None:
        """Bring the server back after :meth:`fail`."""
        raise NotImplementedError

    def lock_seconds(self) -> list[float]:
        """What is left of each stack lock's lease that has not run out."""
        raise NotImplementedError

    def record(self, cid: str) -> dict[str, t.Any] | None:
        """The stored data of ``cid``."""
        raise NotImplementedError


class RedisServerUnderTest(StoreServer):
    """A Redis server whose acknowledged writes survive a kill."""

    # A frozen server never answers: each request waits for the client's
    # socket timeout, so fewer 503s come in the same time.
    name = "redis"
    faults = {"kill": 10, "freeze": 3}

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def env(self, fault: str | None = None) -> dict[str, str]:
        query = "?socket_timeout=1&socket_connect_timeout=1" if fault == "freeze" else ""
        return {"FC_REDIS_URL": self.server.url + query, "FC_LOCK_LEASE": str(LEASE)}

    def fail(self, fault: str) -> None:
        if fault == "kill":
            self.server.kill()
        else:
            self.server.freeze()

    def mend(self, fault: str) -> None:
        if fault == "kill":
            self.server.start()
        else:
            self.server.thaw()

    def lock_seconds(self) -> list[float]:
        # The locks are keys ``...:l:<root>`` that expire with their lease,
        # so a lock whose lease ran out is gone; one without an expiry
        # would never run out.
        left = []
        with redis.Redis.from_url(self.server.url) as client:
            for key in client.scan_iter(match="conversation:*:l:*", count=1000):
                ttl = client.pttl(key)
                if ttl == -1:
                    left.append(math.inf)
                elif ttl > 0:
                    left.append(ttl / 1000)
        return left

    def record(self, cid: str) -> dict[str, t.Any] | None:
        with redis.Redis.from_url(self.server.url) as client:
            for key in client.scan_iter(match="conversation:*:d", count=1000):
                value = client.hget(key, cid)
                if value is not None:
                    return t.cast(dict[str, t.Any], json.loads(value))
        return None


class PostgresServerUnderTest(StoreServer):
    """A PostgreSQL server that keeps what it acknowledged."""

    # Stopped, the server refuses connections at once.
    name = "postgres"
    faults = {"fast": 5, "immediate": 5}
    tables = build_tables("conversation_")

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.engine = sa.create_engine(server.url, poolclass=sa.pool.NullPool)

    def env(self, fault: str | None = None) -> dict[str, str]:
        # A slow server is given up rather than waited for.
        url = self.server.url + "?connect_timeout=2"
        return {"FC_SQL_URL": url, "FC_LOCK_LEASE": str(LEASE)}

    def fail(self, fault: str) -> None:
        # A fast shutdown cuts open connections and keeps the data; an
        # immediate one skips the checkpoint, as in a crash.
        self.server.stop(immediate=fault == "immediate")

    def mend(self, fault: str) -> None:
        self.server.start()

    def lock_seconds(self) -> list[float]:
        # A lease that ran out stays in the table until the stack is taken
        # again; it no longer holds anything.
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.tables.leases.c.expires_at)).all()
        now = time.time()
        return [left for left in (row.expires_at - now for row in rows) if left > 0]

    def record(self, cid: str) -> dict[str, t.Any] | None:
        records = self.tables.records
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(records.c.data).where(records.c.id == cid)).first()
        return None if row is None else t.cast(dict[str, t.Any], json.loads(row.data))


SERVERS: list[type[StoreServer]] = [RedisServerUnderTest, PostgresServerUnderTest]
STORES = [kind.name for kind in SERVERS]
OUTAGES = [
    pytest.param(kind.name, fault, id=f"{kind.name}-{fault}")
    for kind in SERVERS
    for fault in kind.faults
]


@pytest.fixture
def store(request: pytest.FixtureRequest) -> t.Iterator[StoreServer]:
    """The server, of the test's own, of the store named by the parameter."""
    if request.param == "redis":
        yield RedisServerUnderTest(request.getfixturevalue("durable_redis"))
        return
    with PostgresServer(durable=True) as server:
        helper = PostgresServerUnderTest(server)
        yield helper
        helper.engine.dispose()


@pytest.mark.parametrize(("store", "fault"), OUTAGES, indirect=["store"])
def test_store_outage_mid_run(tmp_path: Path, store: StoreServer, fault: str) -> None:
    """Take the store's server away (kill Redis or freeze it with SIGSTOP,
    so that connections hang; stop PostgreSQL with a fast shutdown or an
    immediate one, as in a crash) while four tabs write, let them run into
    the outage, bring it back: during the outage every answer is a 503
    with ``Retry-After`` and a clear message; after it the same workers
    serve again; every stack holds the old or the new value in both of its
    records; no lock outlives its lease.
    """
    env = {**store.env(fault), "FC_LOCK_TIMEOUT": "1", "FC_TIMEOUT": "600"}
    with Gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=4) as server:
        pids = server.worker_pids()
        tabs = [Tab(server.url) for _ in range(4)]
        pause = threading.Event()
        paused = threading.Barrier(len(tabs) + 1)
        resume = threading.Event()
        done = threading.Event()

        def work(tab: Tab) -> None:
            while not pause.is_set():
                tab.send(restarted=False)
            paused.wait()
            resume.wait()
            while not done.is_set():
                tab.send(restarted=True)

        threads = [threading.Thread(target=work, args=(tab,)) for tab in tabs]
        for th in threads:
            th.start()
        try:
            wait_until(lambda: all(tab.acked >= 20 for tab in tabs), 60, "writes before the fault")
            store.fail(fault)
            failed_at = time.monotonic()
            wanted = store.faults[fault]
            wait_until(
                lambda: all(len(tab.outage_503s) >= wanted for tab in tabs), 120, "outage 503s"
            )
            pause.set()
            paused.wait(timeout=120)
            outage_seconds = time.monotonic() - failed_at

            in_doubt = sum(len(tab.in_doubt) for tab in tabs)
            store.mend(fault)
            locks = store.lock_seconds()
            assert all(0 < left <= LEASE for left in locks), locks
            for tab in tabs:
                root, child = store.record(tab.root), store.record(tab.child)
                assert root is not None and child is not None
                # Both records of the stack from the same request.
                assert root.get("v", 0) == child.get("v", 0), (root, child)
                assert child.get("v", 0) in tab.possible(), (child, tab.possible())

            resume.set()
            wait_until(lambda: all(tab.acked_after_restart >= 5 for tab in tabs), 60, "recovery")
        finally:
            pause.set()
            with contextlib.suppress(threading.BrokenBarrierError):
                paused.wait(timeout=1)
            resume.set()
            done.set()
            for th in threads:
                th.join(timeout=120)

        # The same processes served before, during and after the outage.
        assert server.worker_pids() == pids
        for tab in tabs:
            for cid in (tab.child, tab.root):
                rv = tab.http.get(server.url + "/state", params={"cid": cid})
                assert rv.status_code == 200
                assert rv.json()["data"]["v"] == tab.acked
            tab.http.close()

    assert store.lock_seconds() == []
    statuses = [s for tab in tabs for s in tab.statuses]
    outage = [d for tab in tabs for d in tab.outage_503s]
    numbers = {
        "requests": len(statuses),
        "ok_200": statuses.count(200),
        "store_503": len(outage),
        "busy_503_after_restart": sum(tab.busy_503s for tab in tabs),
        "other_status": sorted({s for s in statuses if s not in (200, 503)}),
        "outage_seconds": round(outage_seconds, 1),
        "slowest_outage_503_seconds": round(max(outage), 2),
        "fastest_outage_503_seconds": round(min(outage), 2),
        "values_in_doubt_at_restart": in_doubt,
        "lock_seconds_left_at_restart": [round(left, 2) for left in locks],
    }
    write_artifact(f"{store.name}-outage-{fault}", numbers)
    assert [b for tab in tabs for b in tab.bad_503s] == []
    assert set(statuses) <= {200, 503}, numbers


@pytest.mark.parametrize("store", STORES, indirect=True)
def test_worker_killed_while_holding_a_lock(tmp_path: Path, store: StoreServer) -> None:
    """SIGKILL the worker whose request holds a stack: until the lease runs
    out the stack answers 503 busy (other stacks are served); then it works
    again with its last committed state, and gunicorn has replaced the
    worker.
    """
    block_dir = tmp_path / "block"
    block_dir.mkdir()
    env = {**store.env(), "FC_LOCK_TIMEOUT": "0.5", "FC_BLOCK_DIR": str(block_dir)}
    with Gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as server:
        http = requests.Session()
        root = http.post(server.url + "/begin").json()["id"]
        child = http.post(server.url + "/nest", params={"cid": root}).json()["id"]
        rv = http.post(server.url + "/step", params={"cid": child}, data={"step": "1"})
        assert rv.json()["data"]["n"] == 1
        other = http.post(server.url + "/begin").json()["id"]

        outcome: dict[str, t.Any] = {}

        def blocked() -> None:
            try:
                with requests.Session() as tab:
                    tab.cookies.update(http.cookies)
                    rv = tab.post(server.url + "/block", params={"cid": child}, timeout=60)
                outcome["status"] = rv.status_code
            except requests.RequestException as e:
                outcome["error"] = type(e).__name__

        thread = threading.Thread(target=blocked)
        thread.start()
        holding = block_dir / f"{child}.holding"
        wait_until(holding.exists, 30, "the blocking request")
        pid = json.loads(holding.read_text())["pid"]
        assert pid in server.worker_pids()
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        thread.join(timeout=60)
        assert "error" in outcome, outcome
        # The connection the session keeps alive may be the killed worker's.
        http.close()

        locks = store.lock_seconds()
        assert len(locks) == 1 and 0 < locks[0] <= LEASE, locks
        # Another stack of the same browser is not blocked.
        rv = http.post(server.url + "/step", params={"cid": other}, data={"step": "x"})
        assert rv.status_code == 200

        seen: list[int] = []
        deadline = time.monotonic() + LEASE + 20
        while True:
            rv = http.post(server.url + "/state", params={"cid": child})
            seen.append(rv.status_code)
            if rv.status_code == 200:
                break
            assert rv.status_code == 503 and "busy" in rv.text, (rv.status_code, rv.text[:200])
            assert "Retry-After" in rv.headers
            assert time.monotonic() < deadline, seen
            time.sleep(0.2)
        blocked_seconds = time.monotonic() - killed_at
        data = rv.json()["data"]
        # The killed request's change (n + 1000) was never committed.
        assert data["n"] == 1 and data["log"] == ["1"], data
        rv = http.post(server.url + "/step", params={"cid": child}, data={"step": "2"})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 2
        rv = http.post(server.url + "/state", params={"cid": root})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 0

        wait_until(
            lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 2,
            30,
            "a new worker",
        )
        http.close()
    numbers = {
        "lease_seconds": LEASE,
        "lock_seconds_left_after_kill": round(locks[0], 2),
        "busy_503_before_lease_ran_out": seen.count(503),
        "stack_blocked_seconds": round(blocked_seconds, 1),
        "state_after": data,
    }
    write_artifact(f"{store.name}-worker-kill", numbers)
    assert blocked_seconds <= LEASE + 5, numbers


@pytest.mark.parametrize("store", STORES, indirect=True)
def test_request_that_outlives_its_lease_does_not_overwrite(
    tmp_path: Path, store: StoreServer
) -> None:
    """A request that holds a stack longer than the lock's lease loses the
    stack: another request takes it, commits and releases it; when the slow
    request then commits, it must write nothing (503), or it would
    overwrite the newer state with one computed from an older read.
    """
    block_dir = tmp_path / "block"
    block_dir.mkdir()
    env = {
        **store.env(),
        "FC_LOCK_LEASE": "1",
        "FC_LOCK_TIMEOUT": "0.5",
        "FC_BLOCK_DIR": str(block_dir),
    }
    with Gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=4) as server:
        http = requests.Session()
        cid = http.post(server.url + "/begin").json()["id"]
        rv = http.post(server.url + "/step", params={"cid": cid}, data={"step": "1"})
        assert rv.json()["data"]["n"] == 1
        slow: dict[str, t.Any] = {}

        def blocked() -> None:
            with requests.Session() as other:
                other.cookies.update(http.cookies)
                rv = other.post(server.url + "/block", params={"cid": cid}, timeout=60)
                slow["status"] = rv.status_code
                slow["body"] = rv.text[:300]

        thread = threading.Thread(target=blocked)
        thread.start()
        wait_until((block_dir / f"{cid}.holding").exists, 30, "the slow request")
        wait_until(lambda: store.lock_seconds() == [], 30, "the lease to run out")
        rv = http.post(server.url + "/step", params={"cid": cid}, data={"step": "2"})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 2
        (block_dir / f"{cid}.release").touch()
        thread.join(timeout=60)

        rv = http.post(server.url + "/state", params={"cid": cid})
        final = rv.json()["data"]
        http.close()
    assert final["n"] == 2 and final["log"] == ["1", "2"], (final, slow)
    assert slow["status"] == 503 and "store is unavailable" in slow["body"], slow
