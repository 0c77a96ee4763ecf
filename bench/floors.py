"""The floors of figures 2 and 3: the ``/step`` of :mod:`bench.apps`
written inline, without the extension, on the very records the extension
stores, with the same reads and writes. What a store with this layout
costs a request at the least, whatever the code around it: the distance
from a floor to the extension is the extension's own machinery.

A floor does only the common case of the figure (a known conversation,
read and written back, nothing begun or ended) and leaves out what only
the other cases need: it checks no limit, keeps no listing and follows no
rule of the commit beyond renewing the one record. The booking is begun
by the extension itself (:func:`bench.apps.start`), so that the floor
reads and writes what the extension wrote; a test proves that each side
reads the other's writes.
"""

from __future__ import annotations

import json
import secrets
import time
import typing as t

from flask import abort
from flask import Flask
from flask import request
from flask import session
from werkzeug.wrappers import Response

from flask_conversation import namespaces
from flask_conversation.config import DEFAULTS
from flask_conversation.serialization import ConversationSerializer
from flask_conversation.stores import session_format
from flask_conversation.stores.records import compact_expiry
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.records import Keys
from flask_conversation.stores.redis import codec
from flask_conversation.stores.redis.connections import packer
from flask_conversation.stores.redis.keys import namespace_keys
from flask_conversation.stores.session import SESSION_KEY

from . import apps

#: The lease of the floor's lock, as ``RedisStore``'s default.
LEASE_MS = 30_000

#: Writes a record's compact form as ``SessionStore`` does.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _step(data: dict[str, t.Any]) -> str:
    # What the figures' /step does to the booking.
    data["step"] = data["step"] + 1
    return f"{data['hotel']}: step {data['step']}"


def _answer(body: str, cid: str, vary: str | None) -> Response:
    # The headers the extension gives a response of a conversation.
    response = Response(body)
    response.headers["X-Conversation-Id"] = cid
    response.headers["Cache-Control"] = "private"
    if vary is not None:
        response.headers["Vary"] = vary
    return response


def session_floor_app() -> Flask:
    """The floor of figure 2: ``SessionStore``'s records in Flask's cookie
    session, one read and one write of the session's mapping per request.
    """
    app = Flask("bench_floor_session")
    app.config.update(SECRET_KEY=apps.SECRET_KEY, TESTING=False)
    serializer = ConversationSerializer()

    @app.get("/step")
    def step() -> Response:
        cid = request.args.get("cid", "")
        namespace = session.get(namespaces.NAMESPACE_KEY)
        all_namespaces = session.get(SESSION_KEY, {})
        stored = all_namespaces.get(namespace, {})
        text = stored.get(cid)
        meta = session_format.meta_of(text)
        if meta is None or compact_expiry(meta) <= time.time():
            abort(404)
        data = serializer.loads(text[meta.pop(Keys.DATA) :])
        body = _step(data)
        meta[Keys.LAST_ACCESS] = time.time()
        record = _ENCODER.encode(meta) + serializer.dumps(data)
        session[SESSION_KEY] = {**all_namespaces, namespace: {**stored, cid: record}}
        return _answer(body, cid, None)

    return app


def redis_floor_app(client: t.Any, prefix: str) -> Flask:
    """The floor of figure 3: ``RedisStore``'s plain-command path written
    inline, in the same two round trips (lock, watch and load; then a
    transaction that writes the record and unlocks), the namespace read
    from its signed cookie.

    :param client: a Redis client of the store's server.
    :param prefix: the store's key prefix.
    """
    app = Flask("bench_floor_redis")
    app.config.update(SECRET_KEY=apps.SECRET_KEY, TESTING=False)
    serializer = ConversationSerializer()
    cookie = DEFAULTS["CONVERSATION_COOKIE_NAME"]
    lifetime = int(app.permanent_session_lifetime.total_seconds())

    @app.get("/step")
    def step() -> Response:
        cid = request.args.get("cid", "")
        raw = request.cookies.get(cookie, "")
        namespace, _ = namespaces.read_signed(namespaces.signer(app), raw, lifetime)
        keys = namespace_keys(prefix, namespace)
        lock = keys.lock(cid)
        token = secrets.token_hex(16)
        connection = client.connection_pool.get_connection()
        pack = packer(connection)
        try:
            connection.send_packed_command(
                pack(
                    [
                        ("SET", lock, token, "NX", "PX", LEASE_MS),
                        ("WATCH", lock, keys.meta),
                        ("HGETALL", keys.meta),
                        ("HMGET", keys.data, cid),
                    ]
                )
            )
            locked, _, metas, datas = [connection.read_response() for _ in range(4)]
            meta = _field(metas, cid)
            if locked is None or meta is None or datas[0] is None:
                abort(409)
            old = codec.unpack(namespace, cid, meta, datas[0])
            now = time.time()
            if old.expires_at <= now:
                abort(404)
            data = serializer.loads(old.data)
            body = _step(data)
            new = ConversationRecord(
                id=cid,
                namespace=namespace,
                parent_id=None,
                root_id=cid,
                depth=0,
                data=serializer.dumps(data),
                description=old.description,
                timeout=old.timeout,
                created_at=old.created_at,
                last_access=now,
            )
            connection.send_packed_command(
                pack(
                    [
                        ("MULTI",),
                        ("HSET", keys.meta, cid, codec.pack(new)),
                        ("HSET", keys.data, cid, new.data),
                        ("DEL", lock),
                        ("EXEC",),
                    ]
                )
            )
            if [connection.read_response() for _ in range(5)][-1] is None:
                abort(409)
        except BaseException:
            # Its WATCH, or replies left unread: never lent out again. The
            # lock, if taken, is left to its lease (a figure never gets here).
            connection.disconnect()
            raise
        finally:
            client.connection_pool.release(connection)
        return _answer(body, cid, "Cookie")

    return app


def _field(reply: t.Any, name: str) -> t.Any:
    # HGETALL: a map over RESP3, a flat list over RESP2; bytes or text.
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    for key, value in pairs:
        if codec.text(key) == name:
            return value
    return None
