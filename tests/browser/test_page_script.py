"""The rules of the page script (``conversation_script()``), one by one, in
Chromium with htmx 2 and htmx 4: what each request of the page carries, and
what each response makes it carry next.
"""

from __future__ import annotations

import json
import threading
import typing as t

import pytest
from flask import Flask
from flask import render_template_string
from flask import request
from flask import Response
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Page
from playwright.sync_api import Route

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore
from tests.npm_packages import npm_file

HTMX_URL = "https://htmx.invalid/htmx.min.js"
OTHER_ORIGIN = "https://elsewhere.invalid"

PAGE = """<!doctype html>
<html><head>
  {{ conversation_script() }}{% if twice %}{{ conversation_script() }}{% endif %}
  <script src="HTMX_URL"></script>
</head><body>
  {% for name, url in buttons %}
    <button id="{{ name }}" hx-post="{{ url }}" hx-target="#out">{{ name }}</button>
  {% endfor %}
  <button id="opt-out" hx-post="/raw" hx-target="#out" hx-headers='{"X-Flow": ""}'>opt out</button>
  <form id="form" hx-post="/raw" hx-target="#out">
    <input type="hidden" name="flow" value="from-form"><button id="submit">form</button>
  </form>
  <pre id="out"></pre>
</body></html>
""".replace("HTMX_URL", HTMX_URL)

BUTTONS = [
    ("begin", "/begin"),
    ("nest", "/nest"),
    ("up", "/up"),
    ("end", "/end"),
    ("echo", "/echo"),
    ("explicit", "/raw?flow=in-url"),
    ("busy", "/busy"),
    ("leave", "/leave"),
    ("slow", "/slow"),
]


def script_app(gate: threading.Event) -> Flask:
    """Views that begin, nest, end and report, with the header and the
    parameter renamed: the script learns the names from its tag.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test",
        CONVERSATION_HEADER="X-Flow",
        CONVERSATION_PARAM="flow",
        CONVERSATION_MISSING_REDIRECT="landing",
    )
    ConversationScope(app, store=MemoryStore())

    def report() -> dict[str, t.Any]:
        return {"header": request.headers.get("X-Flow"), "cid": conversation.id}

    @app.get("/")
    def page() -> str:
        if "flow" in request.args:
            conversation.get("x")
        return render_template_string(PAGE, buttons=BUTTONS, twice="twice" in request.args)

    @app.get("/landing")
    def landing() -> str:
        return "<h1>Landing</h1>"

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin()
        return report()

    @app.post("/nest")
    def nest() -> dict[str, t.Any]:
        conversation.begin(nested=True)
        return report()

    @app.post("/up")
    def up() -> dict[str, t.Any]:
        conversation.end()
        return report()

    @app.post("/end")
    def end() -> dict[str, t.Any]:
        conversation.end(root=True)
        return report()

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> dict[str, t.Any]:
        return report()

    @app.route("/raw", methods=["GET", "POST"])
    def raw() -> dict[str, t.Any]:
        # What arrived, without using the conversation (so no answer header).
        return {
            "header": request.headers.get("X-Flow"),
            "form": request.form.get("flow"),
            "url": request.args.get("flow"),
        }

    @app.post("/busy")
    def busy() -> Response:
        return Response("busy", 503, {"Retry-After": "1"})

    @app.post("/leave")
    def leave() -> Response:
        return Response(str(conversation.id), 200, {"HX-Redirect": "/landing"})

    @app.post("/slow")
    def slow() -> dict[str, t.Any]:
        # The conversation is used only once the test lets it.
        gate.wait(10)
        return report()

    return app


@pytest.fixture(params=["2", "4"], ids=["htmx2", "htmx4"])
def htmx_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gate() -> t.Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def site(serve: t.Callable[[Flask], str], gate: threading.Event) -> str:
    return serve(script_app(gate))


@pytest.fixture
def window(context: BrowserContext, htmx_version: str) -> BrowserContext:
    script = npm_file("htmx.org", htmx_version, "dist/htmx.min.js")
    context.route(
        HTMX_URL, lambda route: route.fulfill(path=str(script), content_type="text/javascript")
    )
    return context


def open_page(window: BrowserContext, url: str) -> Page:
    page = window.new_page()
    page.goto(url)
    page.wait_for_function("() => window.htmx && window.flaskConversation")
    return page


def cid(page: Page) -> str | None:
    return t.cast("str | None", page.evaluate("() => window.flaskConversation.cid"))


def press(page: Page, button: str) -> dict[str, t.Any]:
    """Click a button and return the JSON the server answered."""
    page.locator("#out").evaluate("e => e.textContent = ''")
    page.locator(f"#{button}").click()
    expect(page.locator("#out")).not_to_be_empty()
    return t.cast("dict[str, t.Any]", json.loads(page.locator("#out").inner_text()))


def fetch(page: Page, url: str, init: str = "{}") -> dict[str, t.Any]:
    return t.cast(
        "dict[str, t.Any]",
        page.evaluate(f"async () => (await fetch({json.dumps(url)}, {init})).json()"),
    )


def test_follows_begin_nest_and_end(window: BrowserContext, site: str) -> None:
    page = open_page(window, site)
    assert page.evaluate("() => [flaskConversation.header, flaskConversation.param]") == [
        "X-Flow",
        "flow",
    ]
    assert press(page, "echo") == {"header": None, "cid": None}
    root = press(page, "begin")["cid"]
    assert cid(page) == root
    assert press(page, "echo")["header"] == root
    child = press(page, "nest")["cid"]
    assert cid(page) == child != root
    assert fetch(page, "/echo")["header"] == child
    assert press(page, "up")["cid"] == root
    assert cid(page) == root
    # Ended in a fragment: the response has no header, the page sends none.
    assert press(page, "end")["cid"] is None
    assert cid(page) is None
    assert press(page, "echo")["header"] is None
    assert fetch(page, "/echo")["header"] is None


def test_sends_the_cid_the_page_was_rendered_with(window: BrowserContext, site: str) -> None:
    first = open_page(window, site)
    root = press(first, "begin")["cid"]
    second = open_page(window, f"{site}/?flow={root}")
    assert cid(second) == root
    assert press(second, "echo")["header"] == root
    # Every tab has its own: a new page of the same browser has none.
    assert cid(open_page(window, site)) is None
    press(first, "nest")
    assert cid(second) == root


def test_requests_that_name_a_cid_are_left_alone(window: BrowserContext, site: str) -> None:
    page = open_page(window, site)
    root = press(page, "begin")["cid"]
    answer = press(page, "explicit")
    assert (answer["url"], answer["header"]) == ("in-url", None)
    answer = press(page, "submit")
    assert (answer["form"], answer["header"]) == ("from-form", None)
    # Their answers are about another conversation: the page keeps its own.
    assert cid(page) == root
    assert fetch(page, "/raw", '{headers: {"X-Flow": "mine"}}')["header"] == "mine"
    assert fetch(page, "/raw?flow=mine")["header"] is None
    body = "{method: 'POST', body: new URLSearchParams({flow: 'mine'})}"
    assert fetch(page, "/raw", body) == {"header": None, "form": "mine", "url": None}
    assert cid(page) == root
    # An empty header: this request goes without the cid, and teaches nothing.
    assert press(page, "opt-out")["header"] == ""
    assert fetch(page, "/raw", '{headers: {"X-Flow": ""}}')["header"] == ""
    assert cid(page) == root
    assert press(page, "echo")["header"] == root


def test_error_without_header_keeps_the_cid(window: BrowserContext, site: str) -> None:
    page = open_page(window, site)
    root = press(page, "begin")["cid"]
    with page.expect_response(lambda r: r.url.endswith("/busy")) as busy:
        page.locator("#busy").click()
    assert busy.value.status == 503
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert cid(page) == root
    assert page.evaluate("async () => (await fetch('/busy', {method: 'POST'})).status") == 503
    assert cid(page) == root


def test_other_origins_never_get_the_cid(window: BrowserContext, site: str) -> None:
    page = open_page(window, site)
    press(page, "begin")
    seen: list[dict[str, str]] = []

    def answer(route: Route) -> None:
        seen.append(route.request.headers)
        route.fulfill(
            json={"ok": True},
            headers={"Access-Control-Allow-Origin": "*", "X-Flow": "foreign"},
        )

    page.route(f"{OTHER_ORIGIN}/**", answer)
    assert fetch(page, f"{OTHER_ORIGIN}/api") == {"ok": True}
    assert seen and "x-flow" not in seen[0]
    assert cid(page) != "foreign"


def test_stale_answer_about_an_ended_conversation_is_ignored(
    window: BrowserContext, site: str, gate: threading.Event
) -> None:
    page = open_page(window, site)
    root = press(page, "begin")["cid"]
    child = press(page, "nest")["cid"]
    # A request on the nested conversation is still running when another
    # request ends it; it then finds it gone, and the server answers with
    # HX-Redirect to the start page. The page has moved on: it stays.
    with page.expect_request(lambda r: r.url.endswith("/slow")) as slow:
        page.locator("#slow").click()
    assert slow.value.headers["x-flow"] == child
    assert press(page, "up")["cid"] == root
    with page.expect_response(lambda r: r.url.endswith("/slow")) as answered:
        gate.set()
    assert answered.value.headers["hx-redirect"] == "/landing"
    # Had htmx followed it, the page would have asked for /landing before
    # the next answer came back.
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    assert press(page, "echo")["header"] == root
    assert not [url for url in requested if "/landing" in url]
    assert page.url == f"{site}/"
    assert cid(page) == root


def test_nothing_is_sent_once_htmx_redirects(window: BrowserContext, site: str) -> None:
    page = open_page(window, site)
    root = press(page, "begin")["cid"]
    # The user stays on the page when asked (the dialog is dismissed), so
    # the page lives on after htmx was told to leave it.
    page.evaluate(
        "() => addEventListener('beforeunload', (e) => { e.preventDefault(); e.returnValue = ''; })"
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    with page.expect_response(lambda r: r.url.endswith("/leave")):
        page.locator("#leave").click()
    page.locator("#echo").click()
    # A fetch() after the click: htmx would have sent its request by now.
    assert fetch(page, "/echo")["header"] == root
    assert dialogs == ["beforeunload"]
    assert [url for url in requested if url.endswith("/echo")] == [f"{site}/echo"]
    assert page.url == f"{site}/"


def test_included_twice_works_once(window: BrowserContext, site: str) -> None:
    page = open_page(window, f"{site}/?twice")
    root = press(page, "begin")["cid"]
    assert press(page, "echo")["header"] == root
    assert fetch(page, "/echo")["header"] == root
