"""Fixtures of the hardening tests."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.hardening.instrumented import add_views
from tests.hardening.instrumented import CountingStore


@pytest.fixture
def counting_app(app: Flask, request: pytest.FixtureRequest) -> Flask:
    """The shared ``app`` fixture (one per store) with the plain views and
    its store wrapped in a :class:`CountingStore`.
    """
    state = app.extensions["conversation"]
    state.store = CountingStore(state.store)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    add_views(app)
    return app

