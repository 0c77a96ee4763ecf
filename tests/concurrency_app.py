"""The application the concurrency tests serve with gunicorn. Configured
by environment variables, since gunicorn imports it in its workers:

``CONC_STORE``
    ``memory``, ``session``, ``redis`` or ``sqlalchemy``.
``CONC_REDIS_URL``
    the Redis server, for ``redis``.
``CONC_SQL_URL``
    the database, for ``sqlalchemy``.
``CONC_SESSION_SQL_URL``
    for ``session``: keep the sessions in this database with Flask-Session's
    SQLAlchemy backend instead of the cookie.
``CONC_LOCK_TIMEOUT``
    ``CONVERSATION_LOCK_TIMEOUT`` in seconds.
``CONC_MEETING``
    a directory where requests of ``/meet`` wait for each other.
"""

from __future__ import annotations

import os
import time
import typing as t
from pathlib import Path

from flask import Flask
from flask import request

from flask_conversation import conversation
from flask_conversation import ConversationScope


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="concurrency",
        CONVERSATION_STORE=os.environ["CONC_STORE"],
        CONVERSATION_REDIS=os.environ.get("CONC_REDIS_URL"),
        CONVERSATION_SQLALCHEMY=os.environ.get("CONC_SQL_URL"),
        CONVERSATION_LOCK_TIMEOUT=float(os.environ.get("CONC_LOCK_TIMEOUT", "5")),
    )
    session_sql = os.environ.get("CONC_SESSION_SQL_URL")
    if session_sql:
        from flask_session import Session
        from flask_sqlalchemy import SQLAlchemy

        app.config.update(SQLALCHEMY_DATABASE_URI=session_sql, SESSION_TYPE="sqlalchemy")
        app.config["SESSION_SQLALCHEMY"] = SQLAlchemy(app)
        Session(app)
    ConversationScope(app)
    meeting = Path(os.environ.get("CONC_MEETING", "."))

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin()
        conversation["n"] = 0
        return {"id": conversation.id}

    @app.post("/incr")
    def incr() -> dict[str, t.Any]:
        # Read, pause, write: the window in which an unprotected update is lost.
        n = conversation["n"]
        time.sleep(float(request.args.get("pause", "0.01")))
        conversation["n"] = n + 1
        return {"n": n + 1}

    @app.post("/meet")
    def meet() -> tuple[dict[str, t.Any], int]:
        """Increment, then wait until ``count`` requests of round ``round``
        are inside this view at once, each holding its own stack's lock.
        """
        n = conversation["n"]
        room = meeting / request.args["round"]
        room.mkdir(parents=True, exist_ok=True)
        (room / str(conversation.id)).touch()
        deadline = time.monotonic() + 20
        while len(os.listdir(room)) < int(request.args["count"]):
            if time.monotonic() > deadline:
                return {"met": False}, 504
            time.sleep(0.005)
        conversation["n"] = n + 1
        return {"met": True, "n": n + 1}, 200

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"n": conversation["n"]}

    return app
