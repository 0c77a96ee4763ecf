"""Fixtures of the hardening tests."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask import Flask

from tests.hardening.instrumented import add_views
from tests.hardening.instrumented import CountingStore
from tests.hardening.processes import RedisProcess


@pytest.fixture
def counting_app(app: Flask, store_kind: str) -> Flask:
    """The shared ``app`` fixture (one per store) with the plain views and
    its store wrapped in a :class:`CountingStore`.
    """
    state = app.extensions["conversation"]
    expected = {
        "cookie": "SessionStore",
        "cachelib": "SessionStore",
        "memory": "MemoryStore",
        "redis": "RedisStore",
        "redis-cluster": "RedisStore",
    }[store_kind]
    # The app must really run on the store the test is named after.
    assert type(state.store).__name__ == expected, (store_kind, state.store)
    state.store = CountingStore(state.store)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    add_views(app)
    return app



@pytest.fixture
def durable_redis(tmp_path: Path) -> t.Iterator[RedisProcess]:
    """A Redis server of the test's own whose acknowledged writes survive
    a kill.
    """
    server = RedisProcess(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fast_redis(tmp_path: Path) -> t.Iterator[RedisProcess]:
    """A Redis server of the test's own without persistence."""
    server = RedisProcess(tmp_path / "redis", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
