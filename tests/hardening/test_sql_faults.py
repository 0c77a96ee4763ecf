"""Store faults of SQLAlchemyStore with real processes: a PostgreSQL server
stopped in the middle of a run of requests and started again, a gunicorn
worker killed while it holds a stack's lease, and a request that outlives
its lease.

The app runs under gunicorn with a short lease; it is never restarted. The
tests read the database directly to see what was really committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import typing as t
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from flask_conversation.stores.sql.tables import build_tables
from tests.hardening.instrumented import write_artifact
from tests.hardening.processes import Gunicorn
from tests.hardening.test_store_faults import _wait
from tests.hardening.test_store_faults import Tab
from tests.sql_servers import PostgresServer

LEASE = 4.0
TABLES = build_tables("conversation_")


@pytest.fixture
def postgres() -> t.Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, to stop and start, that keeps
    what it acknowledged.
    """
    with PostgresServer(durable=True) as server:
        yield server


def _data(engine: sa.engine.Engine, cid: str) -> dict[str, t.Any] | None:
    """The stored data of ``cid``, read from the database directly."""
    records = TABLES.records
    with engine.connect() as conn:
        row = conn.execute(sa.select(records.c.data).where(records.c.id == cid)).first()
    return None if row is None else t.cast(dict[str, t.Any], json.loads(row.data))


def _lease_seconds(engine: sa.engine.Engine) -> list[float]:
    """How long each lease in the table still runs."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(TABLES.leases.c.expires_at)).all()
    now = time.time()
    return [row.expires_at - now for row in rows]


def _live_leases(engine: sa.engine.Engine) -> list[float]:
    return [s for s in _lease_seconds(engine) if s > 0]


def _env(server: PostgresServer, **extra: str) -> dict[str, str]:
    # A stopped server refuses connections at once; a slow one is given up.
    return {"FC_SQL_URL": server.url + "?connect_timeout=2", "FC_LOCK_LEASE": str(LEASE), **extra}


@pytest.mark.parametrize("shutdown", ["fast", "immediate"])
def test_database_outage_mid_run(tmp_path: Path, postgres: PostgresServer, shutdown: str) -> None:
    """Stop PostgreSQL (a fast shutdown, or an immediate one, as in a crash)
    while four tabs write, let them run into the outage, start it again:
    during the outage every answer is a 503 with ``Retry-After`` and a clear
    message; after it the same workers serve again; every stack holds the
    old or the new value in both of its records; no lease outlives its
    term.
    """
    env = _env(postgres, FC_LOCK_TIMEOUT="1", FC_TIMEOUT="600")
    engine = sa.create_engine(postgres.url, poolclass=sa.pool.NullPool)
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
            _wait(lambda: all(tab.acked >= 20 for tab in tabs), 60, "writes before the stop")
            postgres.stop(immediate=shutdown == "immediate")
            stopped_at = time.monotonic()
            _wait(lambda: all(len(tab.outage_503s) >= 5 for tab in tabs), 120, "outage 503s")
            pause.set()
            paused.wait(timeout=120)
            outage_seconds = time.monotonic() - stopped_at

            in_doubt = sum(len(tab.in_doubt) for tab in tabs)
            postgres.start()
            leases = _lease_seconds(engine)
            assert all(s <= LEASE for s in leases), leases
            for tab in tabs:
                root, child = _data(engine, tab.root), _data(engine, tab.child)
                assert root is not None and child is not None
                # Both records of the stack from the same request.
                assert root.get("v", 0) == child.get("v", 0), (root, child)
                assert child.get("v", 0) in tab.possible(), (child, tab.possible())

            resume.set()
            _wait(lambda: all(tab.acked_after_restart >= 5 for tab in tabs), 60, "recovery")
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

    assert _live_leases(engine) == []
    engine.dispose()
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
        "lease_seconds_left_at_restart": [round(s, 2) for s in leases],
    }
    write_artifact(f"sql-outage-{shutdown}", numbers)
    print(f"\n{shutdown} shutdown: {numbers}")
    assert [b for tab in tabs for b in tab.bad_503s] == []
    assert set(statuses) <= {200, 503}, numbers


def test_worker_killed_while_holding_a_lease(tmp_path: Path, postgres: PostgresServer) -> None:
    """SIGKILL the worker whose request holds a stack: until the lease runs
    out the stack answers 503 busy (other stacks are served); then it works
    again with its last committed state, and gunicorn has replaced the
    worker.
    """
    block_dir = tmp_path / "block"
    block_dir.mkdir()
    env = _env(postgres, FC_LOCK_TIMEOUT="0.5", FC_BLOCK_DIR=str(block_dir))
    engine = sa.create_engine(postgres.url, poolclass=sa.pool.NullPool)
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
        _wait(holding.exists, 30, "the blocking request")
        pid = json.loads(holding.read_text())["pid"]
        assert pid in server.worker_pids()
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        thread.join(timeout=60)
        assert "error" in outcome, outcome

        leases = _live_leases(engine)
        assert len(leases) == 1 and 0 < leases[0] <= LEASE, leases
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

        _wait(
            lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 2,
            30,
            "a new worker",
        )
        http.close()
    engine.dispose()
    numbers = {
        "lease_seconds": LEASE,
        "lease_left_after_kill_seconds": round(leases[0], 2),
        "busy_503_before_lease_ran_out": seen.count(503),
        "stack_blocked_seconds": round(blocked_seconds, 1),
        "state_after": data,
    }
    write_artifact("sql-worker-kill", numbers)
    print(f"\n{numbers}")
    assert blocked_seconds <= LEASE + 5


def test_request_that_outlives_its_lease_does_not_overwrite(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """A request that holds a stack longer than its lease loses the stack:
    another request takes it, commits and releases it; when the slow
    request then commits, it must write nothing (503).
    """
    block_dir = tmp_path / "block"
    block_dir.mkdir()
    env = _env(postgres, FC_LOCK_TIMEOUT="0.5", FC_BLOCK_DIR=str(block_dir))
    env["FC_LOCK_LEASE"] = "1"
    engine = sa.create_engine(postgres.url, poolclass=sa.pool.NullPool)
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
        _wait((block_dir / f"{cid}.holding").exists, 30, "the slow request")
        _wait(lambda: _live_leases(engine) == [], 30, "the lease to run out")
        rv = http.post(server.url + "/step", params={"cid": cid}, data={"step": "2"})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 2
        (block_dir / f"{cid}.release").touch()
        thread.join(timeout=60)

        rv = http.post(server.url + "/state", params={"cid": cid})
        final = rv.json()["data"]
        http.close()
    engine.dispose()
    assert final["n"] == 2 and final["log"] == ["1", "2"], (final, slow)
    assert slow["status"] == 503 and "store is unavailable" in slow["body"], slow
