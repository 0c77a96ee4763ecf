"""Mixed load against gunicorn on a RedisStore, with every answer checked.

Several client threads, each a browser with its own cookie jar, begin
conversations, take steps, nest, end children, end or abandon roots, while
all of them also hammer one shared "hot" conversation whose lock they fight
over. Each response is compared with the state the client expects, so a lost
update shows up as a mismatch; each ended conversation's final state is
checked, and so is the hot conversation's count at the end.

The fast version runs in the test suite (``test_load.py``). The long soak::

    python -m tests.hardening.soak --requests 200000
    python tests/hardening/soak.py            # same, with the defaults

prints the numbers (requests, statuses, 503s, lost updates, keys left,
worker memory) and exits with status 1 if anything was wrong.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import random
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

if not __package__:  # run as a script: make ``tests.hardening`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402
import requests  # noqa: E402

from tests.hardening.processes import Gunicorn  # noqa: E402
from tests.redis_servers import RedisServer  # noqa: E402

PREFIX = "conversation:"


@dataclasses.dataclass
class Report:
    """What a load run saw."""

    requests: int = 0
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    busy_503: int = 0
    store_503: int = 0
    other_5xx: int = 0
    connection_errors: int = 0
    lost_updates: int = 0
    begun: int = 0
    nested: int = 0
    children_ended: int = 0
    ended_checked: int = 0
    abandoned: int = 0
    hot_acked: int = 0
    hot_in_doubt: int = 0
    hot_count: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    server_log: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    keys_after_run: dict[str, int] = dataclasses.field(default_factory=dict)
    keys_after_expiry: dict[str, int] = dataclasses.field(default_factory=dict)
    worker_rss_kb: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    _mutex: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def problem(self, text: str) -> None:
        with self._mutex:
            if len(self.problems) < 50:
                self.problems.append(text)

    def add(self, **counts: int) -> None:
        with self._mutex:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    @property
    def ok(self) -> bool:
        return (
            self.lost_updates == 0
            and self.other_5xx == 0
            and self.connection_errors == 0
            and not self.problems
            and self.hot_acked <= self.hot_count <= self.hot_acked + self.hot_in_doubt
        )

    def summary(self) -> dict[str, t.Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "requests_per_second": round(self.requests / self.seconds) if self.seconds else 0,
            "statuses": dict(sorted(self.statuses.items())),
            "busy_503": self.busy_503,
            "store_503": self.store_503,
            "other_5xx": self.other_5xx,
            "connection_errors": self.connection_errors,
            "lost_updates": self.lost_updates,
            "conversations_begun": self.begun,
            "nested_begun": self.nested,
            "children_ended": self.children_ended,
            "ended_and_checked": self.ended_checked,
            "abandoned": self.abandoned,
            "hot_acked_steps": self.hot_acked,
            "hot_steps_in_doubt": self.hot_in_doubt,
            "hot_final_count": self.hot_count,
            "keys_after_run": self.keys_after_run,
            "keys_after_expiry": self.keys_after_expiry,
            "worker_rss_kb": self.worker_rss_kb,
            "problems": self.problems,
            "server_log": self.server_log,
            "ok": self.ok,
        }


class Stop(Exception):
    """The run has sent its requests."""


class Browser:
    """One client thread's browser: a cookie jar and a request budget
    shared by all browsers.
    """

    def __init__(self, base: str, budget: t.Iterator[int], total: int, report: Report) -> None:
        self.base = base
        self.budget = budget
        self.total = total
        self.report = report
        self.http = requests.Session()

    def post(self, path: str, cid: str | None = None, **form: str) -> requests.Response | None:
        """Send one request; ``None`` for a connection error.

        :raise Stop: the run's budget of requests is spent.
        """
        if next(self.budget) >= self.total:
            raise Stop()
        params = {"cid": cid} if cid is not None else None
        try:
            rv = self.http.post(self.base + path, params=params, data=form, timeout=60)
        except requests.RequestException as e:
            self.report.add(requests=1, connection_errors=1)
            self.report.problem(f"{path}: {type(e).__name__}: {e}")
            return None
        self.report.add(requests=1)
        with self.report._mutex:
            self.report.statuses[rv.status_code] += 1
        if rv.status_code == 503:
            if "Retry-After" not in rv.headers:
                self.report.problem(f"{path}: 503 without Retry-After")
            if "busy" in rv.text:
                self.report.add(busy_503=1)
            else:
                self.report.add(store_503=1)
        elif rv.status_code >= 500:
            self.report.add(other_5xx=1)
            self.report.problem(f"{path}: {rv.status_code} {rv.text[:200]}")
        return rv

    def close(self) -> None:
        self.http.close()


def _retrying(send: t.Callable[[], requests.Response | None]) -> requests.Response | None:
    # A 503 for a busy stack is documented: the client tries again.
    for _ in range(5):
        rv = send()
        if rv is None or rv.status_code != 503:
            return rv
        time.sleep(0.05)
    return rv


class Flow:
    """The conversations of one browser, one after another, each checked
    against the state the browser expects.
    """

    def __init__(self, browser: Browser, rng: random.Random, name: str, hot: str | None) -> None:
        self.b = browser
        self.rng = rng
        self.name = name
        self.hot = hot
        self.hot_browser: Browser | None = None
        self.seq = itertools.count()

    def expect(self, rv: requests.Response | None, expected: dict[str, t.Any], what: str) -> bool:
        if rv is None or rv.status_code != 200:
            if rv is not None and rv.status_code != 503:
                self.b.report.problem(f"{what}: {rv.status_code}")
            return False
        data = rv.json()["data"]
        if {k: data.get(k) for k in expected} != expected:
            self.b.report.add(lost_updates=1)
            self.b.report.problem(f"{what}: expected {expected}, got {data}")
            expected.update({k: data.get(k) for k in expected})
        return True

    def step(self, cid: str, expected: dict[str, t.Any]) -> None:
        label = f"{self.name}-{next(self.seq)}"
        rv = _retrying(lambda: self.b.post("/step", cid, step=label))
        if rv is None:
            # The answer was lost: the step may or may not have been made.
            rv = self.b.post("/state", cid)
            if rv is not None and rv.status_code == 200:
                data = rv.json()["data"]
                expected["n"], expected["log"] = data["n"], data["log"]
            return
        if rv.status_code == 200:
            expected["n"] += 1
            expected["log"] = [*expected["log"], label]
        self.expect(rv, expected, f"step {cid}")

    def hot_step(self) -> None:
        assert self.hot is not None and self.hot_browser is not None
        rv = self.hot_browser.post("/step", self.hot, step="hot", nolog="1")
        if rv is None:
            self.b.report.add(hot_in_doubt=1)
        elif rv.status_code == 200:
            self.b.report.add(hot_acked=1)

    def maybe_hot(self) -> None:
        if self.hot is not None and self.rng.random() < 0.15:
            self.hot_step()

    def conversation(self) -> None:
        rng = self.rng
        owner = f"{self.name}-{next(self.seq)}"
        rv = self.b.post("/begin", owner=owner)
        if rv is None or rv.status_code != 200:
            self.b.report.problem(f"begin: {None if rv is None else rv.status_code}")
            return
        self.b.report.add(begun=1)
        root = rv.json()["id"]
        expected: dict[str, t.Any] = {"n": 0, "log": [], "owner": owner}
        for _ in range(rng.randint(1, 6)):
            self.step(root, expected)
            self.maybe_hot()

        if rng.random() < 0.4:
            rv = _retrying(lambda: self.b.post("/nest", root))
            if rv is not None and rv.status_code == 200:
                self.b.report.add(nested=1)
                child = rv.json()["id"]
                own: dict[str, t.Any] = {"n": 0, "log": [], "owner": owner}
                for _ in range(rng.randint(1, 4)):
                    self.step(child, own)
                if rng.random() < 0.7:
                    rv = _retrying(lambda: self.b.post("/end", child))
                    if self.expect(rv, own, f"end child {child}"):
                        self.b.report.add(children_ended=1)
                # The child's writes never reached the root.
                self.step(root, expected)

        if rng.random() < 0.6:
            rv = _retrying(lambda: self.b.post("/end", root))
            if self.expect(rv, expected, f"end {root}"):
                self.b.report.add(ended_checked=1)
                gone = self.b.post("/state", root)
                if gone is not None and gone.status_code != 404:
                    self.b.report.problem(f"ended {root} answered {gone.status_code}")
        else:
            self.b.report.add(abandoned=1)

    def run(self) -> None:
        try:
            while True:
                self.conversation()
        except Stop:
            pass


def keys_by_kind(client: redis.Redis, prefix: str = PREFIX) -> dict[str, int]:
    """The store's keys in Redis, counted by kind, for the layout
    ``<prefix>{<shard>}:<namespace>:m`` (metadata hash: a field per
    conversation), ``...:d`` (data hash), ``...:l:<root>`` (a stack's lock)
    and ``<prefix>{<shard>}:namespaces``: records (fields), locks, indexes
    (the namespaces' two hashes), the namespace registries (with their
    members), and what of it has no time to live.
    """
    counts: collections.Counter[str] = collections.Counter()
    for key in client.scan_iter(match=prefix + "*", count=1000):
        text = key.decode()
        tail = text.partition("}:")[2]
        if tail == "namespaces":
            counts["registries"] += 1
            counts["registry_members"] += int(client.zcard(key))
            continue
        # -1: no time to live; -2 would mean it expired since the scan.
        forever = client.pttl(key) == -1
        # The namespace is escaped: its part ends at the first ":".
        kind = tail.partition(":")[2]
        if kind.startswith("l:"):
            counts["locks"] += 1
            if forever:
                counts["locks_without_ttl"] += 1
            continue
        if kind not in ("m", "d"):
            counts["other"] += 1
            continue
        counts["indexes"] += 1
        if kind == "d":
            continue
        for field in client.hkeys(key):
            if not field.startswith(b"~"):
                counts["records"] += 1
                if forever:
                    counts["records_without_ttl"] += 1
    return dict(counts)


def worker_rss_kb(server: Gunicorn) -> list[int]:
    """Resident memory of each worker, in kB."""
    sizes = []
    for pid in sorted(server.worker_pids()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]))
    return sizes


def run_load(
    base: str, total: int, threads: int, seed: int = 0, report: Report | None = None
) -> Report:
    """Send ``total`` requests from ``threads`` browsers and check them.

    :param base: the server's URL.
    :param total: how many requests to send in all.
    :param threads: how many browsers send at the same time.
    :param seed: makes the choices of the browsers repeatable.
    :param report: where to count; a new one by default.
    """
    report = report or Report()
    budget = itertools.count()
    starter = Browser(base, itertools.count(), 1 << 62, report)
    rv = starter.post("/begin", owner="hot")
    assert rv is not None and rv.status_code == 200, rv
    hot = rv.json()["id"]
    # The session cookie, or the namespace cookie of a server-side store.
    cookies = starter.http.cookies

    flows: list[Flow] = []
    for i in range(threads):
        browser = Browser(base, budget, total, report)
        flow = Flow(browser, random.Random(seed * 1000 + i), f"t{i}", hot)
        # The hot conversation's browser is the starter's: same cookies.
        flow.hot_browser = Browser(base, budget, total, report)
        flow.hot_browser.http.cookies.update(cookies)
        flows.append(flow)

    started = time.monotonic()
    workers = [threading.Thread(target=f.run, name=f.name) for f in flows]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    report.seconds = time.monotonic() - started

    final = starter.post("/state", hot)
    if final is None or final.status_code != 200:
        report.problem(f"hot state: {None if final is None else final.status_code}")
    else:
        report.hot_count = int(final.json()["data"]["n"])
        if report.hot_count < report.hot_acked:
            report.add(lost_updates=report.hot_acked - report.hot_count)
        if not report.hot_acked <= report.hot_count <= report.hot_acked + report.hot_in_doubt:
            report.problem(
                f"hot: {report.hot_acked} steps acknowledged, {report.hot_in_doubt} in doubt,"
                f" count {report.hot_count}"
            )
    starter.close()
    for f in flows:
        f.b.close()
        if f.hot_browser is not None:
            f.hot_browser.close()
    return report


def wait_for_expiry(client: redis.Redis, seconds: float) -> dict[str, int]:
    """Poll the keys until no record, lock or index is left, or
    ``seconds`` have passed; return the last count.
    """
    deadline = time.monotonic() + seconds
    while True:
        keys = keys_by_kind(client)
        if not any(keys.get(k) for k in ("records", "locks", "indexes")):
            return keys
        if time.monotonic() > deadline:
            return keys
        time.sleep(0.25)


def soak(
    total: int,
    threads: int,
    workers: int,
    timeout: float,
    seed: int,
    lock_timeout: float = 5,
) -> Report:
    """Start Redis and gunicorn, run the load, wait for the abandoned
    conversations to expire, stop everything. The workers' memory is
    sampled every 10 seconds.
    """
    report = Report()
    with tempfile.TemporaryDirectory(prefix="fc-soak-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory / "redis", persist=True)
        server.start()
        try:
            env = {
                "FC_REDIS_URL": server.url,
                "FC_TIMEOUT": str(timeout),
                "FC_LOCK_TIMEOUT": str(lock_timeout),
                "FC_LOCK_LEASE": "30",
            }
            with Gunicorn(env, directory / "gunicorn.log", workers=workers) as app:
                report.worker_rss_kb["start"] = worker_rss_kb(app)
                finished = threading.Event()

                def sample() -> None:
                    while not finished.wait(10):
                        report.worker_rss_kb.setdefault("every_10s", []).append(
                            sum(worker_rss_kb(app))
                        )

                sampler = threading.Thread(target=sample)
                sampler.start()
                try:
                    run_load(app.url, total, threads, seed, report)
                finally:
                    finished.set()
                    sampler.join()
                report.worker_rss_kb["end"] = worker_rss_kb(app)
            if report.problems:
                log = (directory / "gunicorn.log").read_text(errors="replace")
                report.server_log = log.splitlines()[-40:]
            with redis.Redis.from_url(server.url) as client:
                report.keys_after_run = keys_by_kind(client)
                report.keys_after_expiry = wait_for_expiry(client, timeout + 10)
        finally:
            server.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="requests in all")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--timeout", type=float, default=10, help="CONVERSATION_TIMEOUT in seconds")
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=5,
        help="CONVERSATION_LOCK_TIMEOUT; a small one makes busy 503s happen",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = soak(
        args.requests, args.threads, args.workers, args.timeout, args.seed, args.lock_timeout
    )
    print(json.dumps(report.summary(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
