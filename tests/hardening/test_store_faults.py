"""Store faults with real processes: a Redis server killed in the middle of
a run of requests and started again, and a gunicorn worker killed while it
holds a stack's lock.

Redis runs with ``appendfsync always`` so that a restart shows exactly what
was acknowledged. The app runs under gunicorn on a RedisStore with a short
lock lease; it is never restarted.
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
import redis
import requests

from tests.hardening.instrumented import write_artifact
from tests.hardening.processes import Gunicorn
from tests.redis_servers import RedisServer

LEASE = 4.0


def _find_record(client: redis.Redis, cid: str) -> dict[str, t.Any] | None:
    """The stored data of ``cid``, read from Redis directly."""
    for key in client.scan_iter(match="conversation:*:d", count=1000):
        value = client.hget(key, cid)
        if value is not None:
            return t.cast(dict[str, t.Any], json.loads(value))
    return None


def _lock_ttls(client: redis.Redis) -> list[int]:
    """What is left of each stack lock's lease, in ms: the locks are keys
    ``...:l:<root>`` that expire with their lease, so a lock whose lease
    ran out is gone.
    """
    left = []
    for key in client.scan_iter(match="conversation:*:l:*", count=1000):
        ttl = client.pttl(key)
        if ttl > 0:
            left.append(ttl)
    return left


class Tab:
    """A browser working in one stack (a root and its child), writing the
    same increasing value into both with every request, and remembering
    which values were acknowledged and which are in doubt.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        rv = self.http.post(base + "/begin")
        assert rv.status_code == 200, rv.text
        self.root = rv.json()["id"]
        rv = self.http.post(base + "/nest", params={"cid": self.root})
        assert rv.status_code == 200, rv.text
        self.child = rv.json()["id"]
        self.value = 0
        self.acked = 0
        #: values sent whose outcome is unknown (a 503 or a broken connection)
        self.in_doubt: set[int] = set()
        self.statuses: list[int] = []
        self.outage_503s: list[float] = []
        self.busy_503s = 0
        self.bad_503s: list[str] = []
        self.acked_after_restart = 0

    def send(self, restarted: bool) -> None:
        self.value += 1
        started = time.monotonic()
        try:
            rv = self.http.post(
                self.base + "/pair", params={"cid": self.child}, data={"value": self.value}
            )
        except requests.RequestException:
            self.in_doubt.add(self.value)
            self.statuses.append(0)
            return
        self.statuses.append(rv.status_code)
        if rv.status_code == 200:
            assert rv.json()["data"]["v"] == self.value
            self.acked = self.value
            self.in_doubt.clear()
            if restarted:
                self.acked_after_restart += 1
            return
        self.in_doubt.add(self.value)
        if rv.status_code == 503:
            if "Retry-After" not in rv.headers:
                self.bad_503s.append("no Retry-After")
            if "conversation store is unavailable" in rv.text:
                self.outage_503s.append(time.monotonic() - started)
            elif "busy" in rv.text:
                self.busy_503s += 1
            else:
                self.bad_503s.append(rv.text[:200])

    def possible(self) -> set[int]:
        """The values the stack may hold: the last acknowledged one, or one
        sent after it whose answer was lost.
        """
        return {self.acked, *self.in_doubt}


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_redis_outage_mid_run(tmp_path: Path, durable_redis: RedisServer, fault: str) -> None:
    """Kill Redis (or freeze it with SIGSTOP, so that connections hang)
    while four tabs write, let them run into the outage, bring Redis back:
    during the outage every answer is a 503 with ``Retry-After`` and a clear
    message; after it the same workers serve again; every stack holds the
    old or the new value in both of its records; no lock outlives its lease.
    """
    # A frozen server never answers: the client's socket timeout decides
    # how long a request waits before its 503.
    query = "?socket_timeout=1&socket_connect_timeout=1" if fault == "freeze" else ""
    wanted = 10 if fault == "kill" else 3
    env = {
        "FC_REDIS_URL": durable_redis.url + query,
        "FC_LOCK_LEASE": str(LEASE),
        "FC_LOCK_TIMEOUT": "1",
        "FC_TIMEOUT": "600",
    }
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
            _wait(lambda: all(tab.acked >= 20 for tab in tabs), 60, "writes before the kill")
            if fault == "kill":
                durable_redis.kill()
            else:
                durable_redis.freeze()
            killed_at = time.monotonic()
            _wait(lambda: all(len(tab.outage_503s) >= wanted for tab in tabs), 120, "outage 503s")
            pause.set()
            paused.wait(timeout=120)
            outage_seconds = time.monotonic() - killed_at

            in_doubt = sum(len(tab.in_doubt) for tab in tabs)
            if fault == "kill":
                durable_redis.start()
            else:
                durable_redis.thaw()
            with redis.Redis.from_url(durable_redis.url) as client:
                ttls = _lock_ttls(client)
                assert all(0 < ttl <= LEASE * 1000 for ttl in ttls), ttls
                for tab in tabs:
                    root = _find_record(client, tab.root)
                    child = _find_record(client, tab.child)
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
            rv = tab.http.get(server.url + "/state", params={"cid": tab.child})
            assert rv.status_code == 200
            assert rv.json()["data"]["v"] == tab.acked
            rv = tab.http.get(server.url + "/state", params={"cid": tab.root})
            assert rv.json()["data"]["v"] == tab.acked
            tab.http.close()

    with redis.Redis.from_url(durable_redis.url) as client:
        assert _lock_ttls(client) == []

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
        "lock_ttls_at_restart_ms": ttls,
    }
    write_artifact(f"redis-outage-{fault}", numbers)
    assert [b for tab in tabs for b in tab.bad_503s] == []
    assert set(statuses) <= {200, 503}, numbers


def _wait(condition: t.Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_worker_killed_while_holding_a_lock(tmp_path: Path, durable_redis: RedisServer) -> None:
    """SIGKILL the worker whose request holds a stack: until the lease runs
    out the stack answers 503 busy; then it works again with its last
    committed state, and gunicorn has replaced the worker.
    """
    block_dir = tmp_path / "block"
    block_dir.mkdir()
    env = {
        "FC_REDIS_URL": durable_redis.url,
        "FC_LOCK_LEASE": str(LEASE),
        "FC_LOCK_TIMEOUT": "0.5",
        "FC_BLOCK_DIR": str(block_dir),
    }
    with Gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as server:
        http = requests.Session()
        root = http.post(server.url + "/begin").json()["id"]
        child = http.post(server.url + "/nest", params={"cid": root}).json()["id"]
        rv = http.post(server.url + "/step", params={"cid": child}, data={"step": "1"})
        assert rv.json()["data"]["n"] == 1

        outcome: dict[str, t.Any] = {}

        def blocked() -> None:
            try:
                with requests.Session() as other:
                    other.cookies.update(http.cookies)
                    rv = other.post(server.url + "/block", params={"cid": child}, timeout=60)
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
        thread.join(timeout=60)
        assert "error" in outcome, outcome

        with redis.Redis.from_url(durable_redis.url) as client:
            ttls = _lock_ttls(client)
        assert len(ttls) == 1 and 0 < ttls[0] <= LEASE * 1000, ttls

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
        data = rv.json()["data"]
        assert data["n"] == 1 and data["log"] == ["1"], data
        rv = http.post(server.url + "/step", params={"cid": child}, data={"step": "2"})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 2
        rv = http.post(server.url + "/state", params={"cid": root})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 0

        _wait(
            lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 2,
            30,
            "a new worker",
        )
        http.close()
    write_artifact(
        "worker-kill",
        {
            "lease_seconds": LEASE,
            "lock_ttl_after_kill_ms": ttls[0],
            "busy_503_before_lease_ran_out": seen.count(503),
            "state_after": data,
        },
    )


def test_request_that_outlives_its_lease_does_not_overwrite(
    tmp_path: Path, durable_redis: RedisServer
) -> None:
    """A request that holds a stack longer than the lock's lease loses the
    stack: another request takes it, commits and releases it; when the slow
    request then commits, it must write nothing (503), or it would
    overwrite the newer state with one computed from an older read.
    """
    block_dir = tmp_path / "block"
    block_dir.mkdir()
    env = {
        "FC_REDIS_URL": durable_redis.url,
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
        _wait((block_dir / f"{cid}.holding").exists, 30, "the slow request")
        with redis.Redis.from_url(durable_redis.url) as client:
            _wait(lambda: _lock_ttls(client) == [], 30, "the lease to run out")
        rv = http.post(server.url + "/step", params={"cid": cid}, data={"step": "2"})
        assert rv.status_code == 200 and rv.json()["data"]["n"] == 2
        (block_dir / f"{cid}.release").touch()
        thread.join(timeout=60)

        rv = http.post(server.url + "/state", params={"cid": cid})
        final = rv.json()["data"]
        http.close()
    assert final["n"] == 2 and final["log"] == ["1", "2"], (final, slow)
    assert slow["status"] == 503, slow
