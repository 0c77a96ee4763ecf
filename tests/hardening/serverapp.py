"""The application the fault and load tests run under gunicorn, on a
RedisStore or a SQLAlchemyStore. Configured by environment variables:

``FC_REDIS_URL``
    the Redis server.
``FC_SQL_URL``
    the SQL database, instead of Redis.
``FC_LOCK_LEASE``
    seconds before a lock that was never released expires (30).
``FC_LOCK_TIMEOUT``
    ``CONVERSATION_LOCK_TIMEOUT`` (5).
``FC_TIMEOUT``
    ``CONVERSATION_TIMEOUT`` in seconds (1800).
``FC_BLOCK_DIR``
    where ``/block`` announces that it holds a stack and waits to be let go.

Every view answers JSON, so that the client can check the state it expects.
"""

from __future__ import annotations

import json
import os
import time
import typing as t
from pathlib import Path

from flask import Flask
from flask import jsonify
from flask import request

from flask_conversation import conversation
from flask_conversation import conversation_required
from flask_conversation import ConversationScope
from flask_conversation import end_conversation
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import RedisStore
from flask_conversation.stores import SQLAlchemyStore


def _state() -> dict[str, t.Any]:
    return {
        "id": conversation.id,
        "parent": conversation.parent.id if conversation.parent is not None else None,
        "data": dict(conversation),
    }


def create_app() -> Flask:
    """The application, configured from ``FC_*`` environment variables."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="hardening",
        CONVERSATION_LOCK_TIMEOUT=float(os.environ.get("FC_LOCK_TIMEOUT", "5")),
        CONVERSATION_TIMEOUT=float(os.environ.get("FC_TIMEOUT", "1800")),
        CONVERSATION_MAX_COUNT=64,
    )
    lease = float(os.environ.get("FC_LOCK_LEASE", "30"))
    store: ConversationStore
    if "FC_SQL_URL" in os.environ:
        store = SQLAlchemyStore(os.environ["FC_SQL_URL"], lock_lease=lease)
    else:
        store = RedisStore.from_url(os.environ["FC_REDIS_URL"], lock_lease=lease)
    ConversationScope(app, store=store)
    block_dir = Path(os.environ.get("FC_BLOCK_DIR", "/nonexistent"))

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.post("/begin")
    def begin() -> t.Any:
        conversation.begin()
        conversation.update(n=0, log=[], owner=request.form.get("owner", ""))
        return jsonify(_state())

    @app.post("/nest")
    @conversation_required
    def nest() -> t.Any:
        conversation.begin(nested=True)
        conversation.update(n=0, log=[])
        return jsonify(_state())

    @app.post("/step")
    @conversation_required
    def step() -> t.Any:
        # Read, then write: without the stack lock two requests would both
        # read the same n and one increment would be lost.
        conversation["n"] = conversation["n"] + 1
        if "nolog" not in request.form:
            conversation["log"] = [*conversation["log"], request.form["step"]]
        return jsonify(_state())

    @app.post("/pair")
    @conversation_required
    def pair() -> t.Any:
        # One request writes the same value into a child and its parent:
        # after any failure both records hold the same value.
        value = int(request.form["value"])
        conversation["v"] = value
        if conversation.parent is not None:
            conversation.parent["v"] = value
        return jsonify(_state())

    @app.route("/state", methods=["GET", "POST"])
    @conversation_required
    def state() -> t.Any:
        return jsonify(_state())

    @app.post("/end")
    @end_conversation()
    def end() -> t.Any:
        return jsonify(_state())

    @app.post("/block")
    @conversation_required
    def block() -> t.Any:
        # Change the state, then hold the stack until the test lets go (or
        # kills this worker): the change must never be committed by a kill.
        conversation["n"] = conversation["n"] + 1000
        cid = t.cast(str, conversation.id)
        (block_dir / f"{cid}.holding").write_text(json.dumps({"pid": os.getpid()}))
        release = block_dir / f"{cid}.release"
        deadline = time.monotonic() + 30
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return jsonify(_state())

    return app
