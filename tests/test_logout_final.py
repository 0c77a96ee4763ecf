"""SPEC 9 through real sockets: once a request's ``end_all()`` (or a
rotation) committed, no request of the namespace that was already running
brings any of its conversations back.

The application runs in werkzeug's threaded server; the browser is a
``requests`` session. A slow request holds a stack, parked inside its view,
while another request of the same browser logs out (or logs in); then the
slow request finishes. Replaying the cookies from before must read nothing.
"""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
import requests
from conftest import BUILDERS
from conftest import FakeClock
from flask import Flask
from flask import jsonify
from werkzeug.serving import make_server

from flask_conversation import conversation
from flask_conversation import ConversationScope

SERVER_SIDE = ["memory", "redis", "sql-sqlite", "sql-postgres"]


class Slow:
    """Parks requests of ``/slow`` inside the view until released."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()


def final_app(store_kind: str, request: pytest.FixtureRequest, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", **config)
    # The real clock: the requests run in several threads at once.
    store = BUILDERS[store_kind](app, t.cast(FakeClock, time.time), request)
    scope = ConversationScope(app, store=store)
    slow = Slow()
    app.extensions["slow"] = slow

    @app.post("/begin")
    def begin() -> t.Any:
        conversation.begin()
        conversation["secret"] = "s3cret"
        return jsonify(id=conversation.id)

    @app.post("/nest")
    def nest() -> t.Any:
        conversation.begin(nested=True)
        return jsonify(id=conversation.id)

    @app.post("/slow")
    def slow_view() -> t.Any:
        conversation["late"] = "written after the logout"
        conversation.begin(nested=True)
        conversation["late-child"] = True
        slow.inside.set()
        assert slow.release.wait(20)
        return jsonify(id=conversation.id)

    @app.post("/logout")
    def logout() -> str:
        scope.end_all()
        return "bye"

    @app.post("/login")
    def login() -> str:
        scope.rotate_namespace()
        return "welcome"

    @app.get("/read")
    def read() -> t.Any:
        return jsonify(dict(conversation))

    @app.get("/list")
    def listing() -> t.Any:
        return jsonify(ids=[c.id for c in scope.conversations()])

    return app


class Served:
    """``app`` on a free loopback port, in a thread of this process."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def serve() -> t.Iterator[t.Callable[[Flask], str]]:
    served: list[Served] = []

    def start(app: Flask) -> str:
        served.append(Served(app))
        return served[-1].url

    yield start
    for s in served:
        s.close()


def _setup(url: str) -> tuple[requests.Session, list[str]]:
    """A browser with two stacks, one of them with a child."""
    browser = requests.Session()
    root = browser.post(f"{url}/begin").json()["id"]
    child = browser.post(f"{url}/nest", params={"cid": root}).json()["id"]
    other = browser.post(f"{url}/begin").json()["id"]
    return browser, [root, child, other]


def _statuses(url: str, cookies: t.Any, cids: t.Iterable[str]) -> set[int]:
    with requests.Session() as replay:
        replay.cookies.update(cookies)
        return {replay.get(f"{url}/read", params={"cid": cid}).status_code for cid in cids}


def _start_slow(url: str, browser: requests.Session, cid: str, app: Flask) -> t.Any:
    """Send ``/slow`` for ``cid`` from a copy of the browser's cookies, and
    return once it holds the stack, parked in the view.
    """
    done: dict[str, t.Any] = {}
    cookies = browser.cookies.copy()

    def run() -> None:
        with requests.Session() as tab:
            tab.cookies.update(cookies)
            done["response"] = tab.post(f"{url}/slow", params={"cid": cid}, timeout=30)

    thread = threading.Thread(target=run)
    thread.start()
    assert app.extensions["slow"].inside.wait(20)
    return thread, done


@pytest.mark.parametrize("store_kind", [*SERVER_SIDE, "cookie"])
def test_a_running_request_cannot_undo_the_logout(
    store_kind: str, serve: t.Callable[[Flask], str], request: pytest.FixtureRequest
) -> None:
    app = final_app(store_kind, request)
    url = serve(app)
    browser, cids = _setup(url)
    before = browser.cookies.copy()

    thread, done = _start_slow(url, browser, cids[1], app)
    try:
        rv = browser.post(f"{url}/logout")
        assert rv.status_code == 200
    finally:
        app.extensions["slow"].release.set()
        thread.join(30)
    slow = done["response"]
    assert slow.status_code == 200
    late_child = slow.json()["id"]
    everything = [*cids, late_child]

    assert browser.get(f"{url}/list").json()["ids"] == []
    assert _statuses(url, browser.cookies, everything) == {404}
    # What the slow request answered does not carry anything back either.
    assert _statuses(url, slow.cookies, everything) == {404}
    if store_kind == "cookie":
        # A copy of the cookie from before still holds its data (docs: security).
        assert _statuses(url, before, cids) == {200}
        return
    assert _statuses(url, before, everything) == {404}
    store = ConversationScope.get_store(app)
    assert store.namespaces() == {}


@pytest.mark.parametrize("store_kind", SERVER_SIDE)
@pytest.mark.parametrize("waits", [True, False], ids=["waits", "busy"])
def test_a_running_request_cannot_undo_the_rotation(
    store_kind: str, waits: bool, serve: t.Callable[[Flask], str], request: pytest.FixtureRequest
) -> None:
    """The rotation waits for the running request of a stack, whose change
    moves along; when that request takes longer than the lock timeout, the
    stack moves without it and its late change is dropped. Either way the
    old cookies reach nothing.
    """
    app = final_app(store_kind, request, CONVERSATION_LOCK_TIMEOUT=10 if waits else 0.2)
    url = serve(app)
    browser, cids = _setup(url)
    before = browser.cookies.copy()

    thread, done = _start_slow(url, browser, cids[1], app)
    login: dict[str, t.Any] = {}
    try:
        if waits:
            # The login waits for the stack; the slow request ends meanwhile.
            waiter = threading.Thread(
                target=lambda: login.update(rv=browser.post(f"{url}/login", timeout=30))
            )
            waiter.start()
            threading.Timer(0.3, app.extensions["slow"].release.set).start()
            waiter.join(30)
        else:
            login["rv"] = browser.post(f"{url}/login", timeout=30)
    finally:
        app.extensions["slow"].release.set()
        thread.join(30)
    assert login["rv"].status_code == 200
    assert done["response"].status_code == 200
    late_child = done["response"].json()["id"]

    data = browser.get(f"{url}/read", params={"cid": cids[1]}).json()
    assert data["secret"] == "s3cret"
    assert ("late" in data) is waits
    alive = browser.get(f"{url}/list").json()["ids"]
    assert set(alive) == {*cids, late_child} if waits else set(cids)
    assert _statuses(url, before, [*cids, late_child]) == {404}
