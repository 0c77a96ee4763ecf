"""SPEC 2.3: view decorators, on sync and async views."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import redirect
from werkzeug.wrappers import Response

from flask_conversation import begin_conversation
from flask_conversation import conversation
from flask_conversation import conversation_required
from flask_conversation import end_conversation
from flask_conversation import url_for_cid
from flask_conversation.testing import ConversationClient

pytest.importorskip("asgiref")


@pytest.fixture
def views(app: Flask) -> None:
    @app.post("/hotels/<int:hotel_id>/book")
    @begin_conversation(
        id=lambda hotel_id: f"booking-{hotel_id}",
        join=True,
        description=lambda hotel_id: f"Booking: hotel {hotel_id}",
    )
    def book(hotel_id: int) -> dict[str, t.Any]:
        conversation.setdefault("hotel", hotel_id)
        return {
            "id": conversation.id,
            "lr": conversation.long_running,
            "description": conversation.description,
        }

    @app.post("/async/book")
    @begin_conversation(timeout=60)
    async def async_book() -> dict[str, t.Any]:
        conversation["async"] = True
        return {"id": conversation.id, "timeout": conversation.timeout.total_seconds()}

    @app.post("/room")
    @begin_conversation(nested=True)
    def room() -> dict[str, t.Any]:
        return {"id": conversation.id, "nested": conversation.nested}

    @app.post("/confirm")
    @end_conversation()
    def confirm() -> Response:
        return redirect(url_for_cid("done"))

    @app.post("/async/confirm")
    @end_conversation(root=True)
    async def async_confirm() -> str:
        return "ended"

    @app.get("/done")
    def done() -> dict[str, t.Any]:
        return {"data": dict(conversation), "lr": conversation.long_running}

    @app.get("/step")
    @conversation_required
    def step() -> dict[str, t.Any]:
        return {"id": conversation.id}

    @app.get("/async/step")
    @conversation_required
    async def async_step() -> dict[str, t.Any]:
        return {"id": conversation.id}

    @app.get("/guarded")
    @conversation_required(redirect_to="start")
    def guarded() -> str:
        return "in"

    @app.get("/start")
    def start() -> str:
        return "start here"


def test_begin_decorator_with_natural_id(views: None, api: ConversationClient) -> None:
    rv = api.post("/hotels/7/book")
    assert rv.json == {"id": "booking-7", "lr": True, "description": "Booking: hotel 7"}
    # Joined, not duplicated, from another tab.
    other = api.new_tab()
    assert other.post("/hotels/7/book").json["id"] == "booking-7"
    assert other.get("/done").json["data"] == {"hotel": 7}


def test_async_views(views: None, api: ConversationClient) -> None:
    rv = api.post("/async/book")
    assert rv.json["timeout"] == 60.0
    cid = rv.json["id"]
    assert api.get("/async/step").json == {"id": cid}
    api.post("/room")
    assert api.post("/async/confirm").text == "ended"
    assert api.get(f"/step?cid={cid}").status_code == 404


def test_nested_decorator(views: None, api: ConversationClient) -> None:
    root = api.post("/async/book").json["id"]
    rv = api.post("/room")
    assert rv.json["nested"] is True
    assert rv.json["id"] != root


def test_end_decorator_redirect_survival(views: None, api: ConversationClient) -> None:
    api.post("/hotels/3/book")
    rv = api.post("/confirm", follow_redirects=True)
    assert rv.json == {"data": {"hotel": 3}, "lr": False}
    assert api.post("/confirm?cid=booking-3").status_code == 404


def test_conversation_required(views: None, api: ConversationClient) -> None:
    assert api.get("/step").status_code == 400
    assert api.get("/async/step").status_code == 400
    rv = api.get("/guarded")
    assert rv.status_code == 302
    assert rv.location == "/start"
    api.post("/hotels/1/book")
    assert api.get("/guarded").text == "in"


def test_required_unknown_cid_is_404(views: None, api: ConversationClient) -> None:
    assert api.get("/step?cid=unknown").status_code == 404


def test_begin_decorator_unknown_cid_is_404_before_view(
    app: Flask, api: ConversationClient
) -> None:
    calls = []

    @app.post("/flow")
    @begin_conversation(join=True)
    def flow() -> str:
        calls.append(1)
        return "ran"

    assert api.post("/flow?cid=unknown").status_code == 404
    assert calls == []


def test_static_natural_id_is_checked_at_decoration() -> None:
    with pytest.raises(ValueError, match="Invalid conversation id"):
        begin_conversation(id="not valid")


def test_natural_id_from_a_hostile_url_segment_is_404(app: Flask) -> None:
    @app.post("/book/<hotel>")
    @begin_conversation(id=lambda hotel: f"booking-{hotel}")
    def book(hotel: str) -> str:
        return "booked"

    client = app.test_client()
    assert client.post("/book/7").status_code == 200
    assert client.post("/book/a%20b").status_code == 404


def test_404_of_a_hostile_natural_id_shows_a_bounded_escaped_part(app: Flask) -> None:
    """The 404 page names the id it refused, but never more than 70
    characters of it, and escaped: a URL segment of 20,000 characters or
    one with markup comes back neither whole nor as markup.
    """

    @app.post("/book/<hotel>")
    @begin_conversation(id=lambda hotel: f"booking-{hotel}")
    def book(hotel: str) -> str:
        return "booked"

    client = app.test_client()
    long = "x" * 20_000
    rv = client.post(f"/book/{long}")
    assert rv.status_code == 404
    assert "x" * 71 not in rv.text and "x" * 60 in rv.text
    assert "(20008 characters)" in rv.text
    assert len(rv.data) < 1_000

    rv = client.post("/book/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert rv.status_code == 404
    assert "<img" not in rv.text and "&lt;img src=x onerror=alert(1)&gt;" in rv.text
