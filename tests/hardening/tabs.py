"""A browser tab for the fault tests, which writes into one stack and
remembers what the server acknowledged, and waiting for a condition.
"""

from __future__ import annotations

import time
import typing as t

import requests


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


def wait_until(condition: t.Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds.

    :param condition: what to wait for.
    :param seconds: how long to wait before failing the test.
    :param what: the condition's name, for the failure.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
