"""SPEC 9, "MemoryStore resists floods": one client that begins
conversation after conversation without a cookie (each in a namespace of
its own, each used by that one request) must not evict a conversation a
user has come back to, as long as the flood's own conversations are there
to evict.
"""

from __future__ import annotations

import threading
import time
import typing as t

import requests
from flask import Flask
from flask import jsonify
from flask import request

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore
from flask_conversation.testing import ConversationClient
from tests.hardening.instrumented import write_artifact
from tests.live_server import LiveServer

#: Records the store keeps, and cookieless begins sent at it (10 times as many).
MAX_SIZE = 100
FLOOD = 1_000
FLOOD_THREADS = 4


def booking_app(store: MemoryStore) -> Flask:
    """Book, look at the booking, choose a room in a nested conversation:
    the shape of the booking example, without its forms.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flood")
    ConversationScope(app, store=store)

    @app.post("/book")
    def book() -> t.Any:
        conversation.begin()
        conversation["hotel"] = request.form.get("hotel", "")
        return jsonify(id=conversation.id)

    @app.post("/room")
    def room() -> t.Any:
        conversation.begin(nested=True)
        conversation["room"] = request.form["room"]
        return jsonify(id=conversation.id)

    @app.get("/booking")
    def booking() -> t.Any:
        return jsonify(id=conversation.id, data=dict(conversation))

    return app


def flood(url: str, count: int) -> int:
    """Send ``count`` cookieless begins over ``FLOOD_THREADS`` connections
    at once; return how many were answered 200.
    """
    answered = [0] * FLOOD_THREADS

    def run(slot: int) -> None:
        with requests.Session() as http:
            for i in range(slot, count, FLOOD_THREADS):
                http.cookies.clear()  # a new visitor every time
                rv = http.post(f"{url}/book", data={"hotel": f"flood-{i}"}, timeout=30)
                answered[slot] += rv.status_code == 200

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return sum(answered)


def test_cookieless_flood_keeps_the_victims_booking() -> None:
    """A victim books (and comes back to the booking, as after the
    redirect of the booking example) and opens a nested room choice; then
    1,000 cookieless begins arrive on 4 connections at once. The victim's
    booking and room choice are still there, and the store never holds
    more than ``max_size`` records.
    """
    store = MemoryStore(max_size=MAX_SIZE)
    with LiveServer(booking_app(store)) as server, requests.Session() as victim:
        root = victim.post(f"{server.url}/book", data={"hotel": "Harbour View"}).json()["id"]
        assert victim.get(f"{server.url}/booking", params={"cid": root}).status_code == 200
        child = victim.post(
            f"{server.url}/room", params={"cid": root}, data={"room": "river"}
        ).json()["id"]

        started = time.monotonic()
        answered = flood(server.url, FLOOD)
        seconds = time.monotonic() - started
        kept = len(store)

        rv = victim.get(f"{server.url}/booking", params={"cid": child})
        assert rv.status_code == 200, rv.text
        assert rv.json()["data"] == {"hotel": "Harbour View", "room": "river"}
        assert victim.get(f"{server.url}/booking", params={"cid": root}).status_code == 200

    assert answered == FLOOD
    assert kept == MAX_SIZE
    write_artifact(
        "flood-memory",
        {
            "max_size": MAX_SIZE,
            "cookieless_begins": FLOOD,
            "answered_200": answered,
            "records_kept": kept,
            "seconds": round(seconds, 1),
            "victim_booking_and_child_survived": True,
        },
    )


def test_eviction_order() -> None:
    """Records used by one request go first, least recently used first;
    one that a later request used goes only when none of those is left,
    and the record being written is never the one evicted.
    """
    store = MemoryStore(max_size=4)
    app = booking_app(store)
    app.config["TESTING"] = True
    app.test_client_class = ConversationClient

    def begin(hotel: str) -> tuple[ConversationClient, str]:
        tab = t.cast(ConversationClient, app.test_client())
        return tab, tab.post("/book", data={"hotel": hotel}).json["id"]

    def alive(tab: ConversationClient, cid: str) -> bool:
        return tab.get(f"/booking?cid={cid}").status_code == 200

    used = begin("used")
    assert alive(*used)  # a second request: protected
    once = [begin(f"once-{i}") for i in range(3)]
    assert len(store) == 4
    # One more: the oldest record used once goes, not the older, used one.
    newest = begin("newest")
    assert len(store) == 4
    assert not alive(*once[0])
    assert alive(*used)

    # Protect two more; the next begin evicts the one left on probation,
    # never the record it writes.
    assert alive(*once[1]) and alive(*once[2])
    last = begin("last")
    assert len(store) == 4
    assert not alive(*newest)
    assert alive(*last)

    # Everything is protected now: the least recently used record goes.
    after = begin("after")
    assert len(store) == 4
    assert not alive(*used)
    for kept in (once[1], once[2], last, after):
        assert alive(*kept)
