"""SPEC 7.3: ``@conversation_readonly`` reads the last committed state
without the stack's lock, on every store: it never waits and is never
busy, renews and writes nothing, refuses every change, and answers an
unknown cid like any other view.
"""

from __future__ import annotations

import threading
import typing as t

import pytest
from conftest import FakeClock
from conftest import snapshot
from flask import current_app
from flask import Flask
from flask import request
from flask import Response

from flask_conversation import conversation
from flask_conversation import conversation_readonly
from flask_conversation import ConversationScope
from flask_conversation import ConversationStateError
from flask_conversation import ConversationStoreError
from flask_conversation.stores import MemoryStore
from flask_conversation.testing import ConversationClient

#: Every way to change a conversation, by name.
CHANGES: dict[str, t.Callable[[], t.Any]] = {
    "set": lambda: conversation.__setitem__("a", 2),
    "set new": lambda: conversation.__setitem__("new", 1),
    "del": lambda: conversation.__delitem__("a"),
    "pop": lambda: conversation.pop("a"),
    "pop default": lambda: conversation.pop("missing", None),
    "popitem": lambda: conversation.popitem(),
    "clear": lambda: conversation.clear(),
    "update": lambda: conversation.update(a=3),
    "setdefault new": lambda: conversation.setdefault("new", 1),
    "reset": lambda: conversation.reset(),
    "description": lambda: setattr(conversation, "description", "x"),
    "timeout": lambda: setattr(conversation, "timeout", 60),
    "begin": lambda: conversation.begin(),
    "begin join": lambda: conversation.begin(join=True),
    "begin nested": lambda: conversation.begin(nested=True),
    "begin id": lambda: conversation.begin(id="natural", join=True),
    "end": lambda: conversation.end(),
    "end root": lambda: conversation.end(root=True),
    "end all": lambda: current_app.extensions["conversation"].end_all(),
}


@pytest.fixture
def peek(app: Flask, api: ConversationClient) -> ConversationClient:
    """``/peek`` and ``/apeek`` show the conversation read-only;
    ``/try/<change>`` attempts one change read-only.
    """

    @app.get("/peek")
    @conversation_readonly
    def peek() -> dict[str, t.Any]:
        return snapshot()

    @app.get("/apeek")
    @conversation_readonly
    async def apeek() -> dict[str, t.Any]:
        return snapshot()

    @app.post("/try/<change>")
    @conversation_readonly
    def attempt(change: str) -> dict[str, t.Any]:
        try:
            if change == "in place":
                conversation["items"].append("pear")
            else:
                CHANGES[change]()
        except ConversationStateError as e:
            return {"refused": str(e), **snapshot()}
        return {"refused": None, **snapshot()}

    @app.get("/read-all")
    @conversation_readonly
    def read_all() -> dict[str, t.Any]:
        return {
            "get": conversation.get("a"),
            "in": "b" in conversation,
            "len": len(conversation),
            "keys": sorted(conversation),
            "setdefault existing": conversation.setdefault("a", 5),
            "description": conversation.description,
            "timeout": conversation.timeout.total_seconds(),
        }

    @app.post("/hold")
    def hold() -> str:
        conversation["held"] = True
        app.config["ENTERED"].set()
        app.config["RELEASE"].wait(10)
        return "held"

    app.config.update(ENTERED=threading.Event(), RELEASE=threading.Event())
    return api


def begin_stack(api: ConversationClient) -> tuple[str, str]:
    root = api.post("/begin").json["id"]
    api.post("/set", json={"a": 1, "items": ["apple"]})
    child = api.post("/begin", json={"nested": True}).json["id"]
    api.post("/set", json={"b": 2})
    return root, child


@pytest.mark.parametrize("path", ["/peek", "/apeek"])
def test_reads_the_chain_and_names_the_cid(peek: ConversationClient, path: str) -> None:
    root, child = begin_stack(peek)
    rv = peek.new_tab().get(f"{path}?cid={child}")
    assert rv.status_code == 200
    assert rv.json == {
        "id": child,
        "long_running": True,
        "nested": True,
        "depth": 1,
        "stack": [root, child],
        "data": {"a": 1, "items": ["apple"], "b": 2},
    }
    # A page script keeps sending the cid after a read-only response.
    assert rv.headers["X-Conversation-Id"] == child
    # Read by who asks: no shared cache may keep it.
    assert rv.headers["Cache-Control"] == "private"
    rv = peek.new_tab().get(path, headers={"X-Conversation-Id": child})
    assert rv.json["id"] == child
    assert "X-Conversation-Id" in rv.vary


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_refuses_every_change(peek: ConversationClient, change: str) -> None:
    root, child = begin_stack(peek)
    rv = peek.new_tab().post(f"/try/{change}?cid={child}")
    assert rv.status_code == 200
    assert "read-only" in rv.json["refused"]
    assert rv.json["id"] == child
    # Nothing changed.
    assert peek.get(f"/show?cid={child}").json["data"] == {"a": 1, "items": ["apple"], "b": 2}
    assert peek.get(f"/show?cid={root}").json["stack"] == [root]


@pytest.mark.parametrize("change", ["set new", "begin", "reset"])
def test_refuses_changes_without_a_cid_too(peek: ConversationClient, change: str) -> None:
    rv = peek.new_tab().post(f"/try/{change}")
    assert "read-only" in rv.json["refused"]
    assert (rv.json["id"], rv.json["data"]) == (None, {})
    assert "X-Conversation-Id" not in rv.headers


def test_reading_is_allowed(peek: ConversationClient) -> None:
    _, child = begin_stack(peek)
    assert peek.get(f"/read-all?cid={child}").json == {
        "get": 1,
        "in": True,
        "len": 3,
        "keys": ["a", "b", "items"],
        "setdefault existing": 1,
        "description": None,
        "timeout": 1800.0,
    }


def test_changes_in_place_are_not_written(peek: ConversationClient) -> None:
    root, _ = begin_stack(peek)
    rv = peek.new_tab().post(f"/try/in place?cid={root}")
    assert rv.json["data"]["items"] == ["apple", "pear"]
    assert peek.get(f"/show?cid={root}").json["data"]["items"] == ["apple"]


def test_renews_nothing(peek: ConversationClient, clock: FakeClock) -> None:
    root, _ = begin_stack(peek)
    timeout = 30 * 60
    clock.advance(timeout - 10)
    assert peek.get(f"/peek?cid={root}").status_code == 200
    clock.advance(20)
    assert peek.get(f"/peek?cid={root}").status_code == 404
    assert peek.get(f"/show?cid={root}").status_code == 404


def test_a_normal_request_renews(peek: ConversationClient, clock: FakeClock) -> None:
    # The control of the test above: the same steps with a normal read.
    root, _ = begin_stack(peek)
    clock.advance(30 * 60 - 10)
    assert peek.get(f"/show?cid={root}").status_code == 200
    clock.advance(20)
    assert peek.get(f"/peek?cid={root}").status_code == 200


def test_never_waits_for_the_stack(app: Flask, peek: ConversationClient) -> None:
    app.config["CONVERSATION_LOCK_TIMEOUT"] = 0.2
    root, child = begin_stack(peek)
    out: list[Response] = []
    holder = threading.Thread(target=lambda: out.append(peek.new_tab().post(f"/hold?cid={root}")))
    holder.start()
    try:
        assert app.config["ENTERED"].wait(5)
        # A normal request of the stack waits, then gives up.
        assert peek.new_tab().get(f"/show?cid={child}").status_code == 503
        # Read-only ones answer at once, with the last committed state.
        for path in ("/peek", "/apeek"):
            rv = peek.new_tab().get(f"{path}?cid={child}")
            assert rv.status_code == 200
            assert "held" not in rv.json["data"]
    finally:
        app.config["RELEASE"].set()
        holder.join(10)
    assert out[0].status_code == 200
    assert peek.get(f"/peek?cid={root}").json["data"]["held"] is True


def test_before_request_reads_without_the_lock(app: Flask, peek: ConversationClient) -> None:
    app.config["CONVERSATION_LOCK_TIMEOUT"] = 0.2

    @app.before_request
    def load_cart() -> None:
        if request.endpoint == "peek":
            request.environ["items"] = conversation.get("items")

    root, _ = begin_stack(peek)
    holder = threading.Thread(target=lambda: peek.new_tab().post(f"/hold?cid={root}"))
    holder.start()
    try:
        assert app.config["ENTERED"].wait(5)
        assert peek.new_tab().get(f"/peek?cid={root}").status_code == 200
    finally:
        app.config["RELEASE"].set()
        holder.join(10)


def test_unknown_cid_is_404(peek: ConversationClient) -> None:
    assert peek.get("/peek?cid=nope").status_code == 404
    assert peek.get("/peek?cid=bad%20cid").status_code == 404


def test_unknown_cid_redirects(app: Flask, peek: ConversationClient) -> None:
    app.config["CONVERSATION_MISSING_REDIRECT"] = "show"
    assert peek.get("/peek?cid=nope").location == "/show"
    rv = peek.get("/peek?cid=nope", headers={"HX-Request": "true"})
    assert (rv.status_code, rv.headers["HX-Redirect"]) == (200, "/show")


def test_an_ended_conversation_is_read_and_left_for_its_request(
    app: Flask, peek: ConversationClient
) -> None:
    @app.post("/checkout")
    def checkout() -> Response:
        cid = conversation.id
        conversation.end()
        return Response("", 200, {"HX-Redirect": f"/show?cid={cid}"})

    root = peek.post("/begin").json["id"]
    peek.post("/set", json={"a": 1})
    peek.post("/checkout")
    # Between the ending request and the one its redirect leads to, a
    # read-only request (a poll) reads what the next request will read, as
    # a temporary conversation, and leaves it to that request.
    for _ in range(2):
        rv = peek.new_tab().get(f"/peek?cid={root}")
        assert rv.status_code == 200
        assert (rv.json["id"], rv.json["data"]) == (None, {"a": 1})
        assert "X-Conversation-Id" not in rv.headers
    assert peek.new_tab().get(f"/show?cid={root}").json["data"] == {"a": 1}
    assert peek.new_tab().get(f"/show?cid={root}").status_code == 404
    assert peek.new_tab().get(f"/peek?cid={root}").status_code == 404


def test_marker_hidden_after_resolving_is_a_clear_error() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    ConversationScope(app, store=MemoryStore())

    def hide(view: t.Callable[[], str]) -> t.Callable[[], str]:
        def hidden() -> str:  # no functools.wraps: the marker is lost
            return view()

        return hidden

    @app.before_request
    def use() -> None:
        conversation.get("x")

    @app.get("/")
    @hide
    @conversation_readonly
    def index() -> str:
        return "read"

    with pytest.raises(RuntimeError, match="conversation_readonly"):
        app.test_client().get("/")


def test_marker_hidden_before_resolving_still_works() -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    ConversationScope(app, store=MemoryStore())
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        conversation["a"] = 1
        return "begun"

    def hidden(view: t.Callable[[], str]) -> t.Callable[[], str]:
        return lambda: view()

    @app.post("/peek", endpoint="peek")
    @hidden
    @conversation_readonly
    def peek() -> str:
        conversation["a"] = 2
        return "written"

    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/begin")
    with pytest.raises(ConversationStateError):
        tab.post("/peek")


class FailingStore(MemoryStore):
    """A store whose backend is unreachable for reads."""

    def load(self, namespace: str, cid: str) -> t.Any:
        if getattr(self, "down", False):
            raise ConversationStoreError("backend unreachable")
        return super().load(namespace, cid)


def test_store_outage_is_503() -> None:
    store = FailingStore()
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    ConversationScope(app, store=store)
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        return "begun"

    @app.get("/peek")
    @conversation_readonly
    def peek() -> str:
        return str(conversation.id)

    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/begin")
    cid = tab.cid
    store.down = True  # type: ignore[attr-defined]
    rv = tab.get(f"/peek?cid={cid}")
    assert rv.status_code == 503
    assert "Retry-After" in rv.headers
    store.down = False  # type: ignore[attr-defined]
    assert tab.get(f"/peek?cid={cid}").text == cid
