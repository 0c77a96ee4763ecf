"""SPEC 7.1 and 7.2 through the Flask test client, on every store: the
redirect rules applied to ``HX-Redirect`` and ``HX-Location``, the htmx
answer to an unknown cid, ``conversation_hx_headers()`` and
``conversation_script()``.
"""

from __future__ import annotations

import configparser
import html
import json
import re
import typing as t
from importlib import resources
from pathlib import Path

import pytest
from flask import Flask
from flask import get_flashed_messages
from flask import render_template_string
from flask import request
from werkzeug.wrappers import Response

from flask_conversation import conversation
from flask_conversation import conversation_hx_headers
from flask_conversation import conversation_required
from flask_conversation import conversation_script
from flask_conversation import ConversationScope
from flask_conversation import end_conversation
from flask_conversation import url_for_cid
from flask_conversation.stores import MemoryStore
from flask_conversation.testing import ConversationClient

HX = {"HX-Request": "true"}
#: A URL with everything a rewriting parser would spoil.
ODD_QUERY = "x=%FF%FE&a=1;b=2&flag"


@pytest.fixture
def shop(app: Flask, api: ConversationClient) -> ConversationClient:
    """``/finish`` ends the conversation and answers with the redirect the
    request body describes; ``/receipt`` shows what it can read.
    """

    @app.post("/finish")
    def finish() -> Response:
        spec = request.get_json()
        cid = t.cast(str, conversation.id)
        conversation.end(before_redirect=spec.get("before_redirect", False))
        url = spec["url"].replace("CID", cid)
        header = spec["header"]
        value = url
        if header == "HX-Location JSON":
            header, value = "HX-Location", json.dumps({"path": url, "target": "#main"})
        return Response("", spec.get("status", 200), {header: value})

    @app.post("/finish-decorated")
    @end_conversation(before_redirect=True)
    def finish_decorated() -> Response:
        return Response("", 200, {"HX-Redirect": url_for_cid("receipt") + "&" + ODD_QUERY})

    @app.post("/finish-url-for-cid")
    def finish_url_for_cid() -> Response:
        conversation.end()
        return Response("", 200, {"HX-Redirect": url_for_cid("receipt")})

    @app.get("/receipt")
    def receipt() -> dict[str, t.Any]:
        return {"id": conversation.id, "data": dict(conversation)}

    api.post("/begin")
    api.post("/set", json={"cart": ["tea"]})
    return api


HEADERS = ["HX-Redirect", "HX-Location", "HX-Location JSON"]


def finish(tab: ConversationClient, header: str, url: str, **spec: t.Any) -> Response:
    return tab.post("/finish", json={"header": header, "url": url, **spec})


@pytest.mark.parametrize("header", HEADERS)
def test_ended_conversation_survives_one_htmx_redirect(
    shop: ConversationClient, header: str
) -> None:
    cid = shop.cid
    rv = finish(shop, header, "/receipt?cid=CID")
    assert rv.status_code == 200
    name = header.split()[0]
    assert f"/receipt?cid={cid}" in rv.headers[name]
    # Where htmx goes next (a page load or an htmx request) reads it once.
    page = shop.new_tab().get(f"/receipt?cid={cid}", headers=HX if "Location" in header else {})
    assert page.json == {"id": None, "data": {"cart": ["tea"]}}
    assert "X-Conversation-Id" not in page.headers
    assert shop.new_tab().get(f"/receipt?cid={cid}").status_code == 404


def test_htmx_redirect_built_with_url_for_cid(shop: ConversationClient) -> None:
    cid = shop.cid
    rv = shop.post("/finish-url-for-cid")
    assert rv.headers["HX-Redirect"] == f"/receipt?cid={cid}"
    assert shop.get(rv.headers["HX-Redirect"]).json["data"] == {"cart": ["tea"]}


@pytest.mark.parametrize("header", HEADERS)
def test_htmx_redirect_without_the_cid_destroys_at_once(
    shop: ConversationClient, header: str
) -> None:
    cid = shop.cid
    finish(shop, header, "/receipt")
    assert shop.new_tab().get(f"/receipt?cid={cid}").status_code == 404


@pytest.mark.parametrize(
    ("header", "status"),
    [("HX-Redirect", 302), ("HX-Location", 400), ("HX-Redirect", 500), ("Location", 200)],
)
def test_only_redirect_headers_of_their_status_count(
    shop: ConversationClient, header: str, status: int
) -> None:
    # htmx reads HX-* headers of 2xx responses only (it never sees a 3xx),
    # and a browser follows Location only on a 3xx.
    cid = shop.cid
    finish(shop, header, "/receipt?cid=CID", status=status)
    assert shop.new_tab().get(f"/receipt?cid={cid}").status_code == 404


@pytest.mark.parametrize("header", ["Location", *HEADERS])
def test_before_redirect_removes_only_the_cid(shop: ConversationClient, header: str) -> None:
    cid = shop.cid
    url = f"/receipt?{ODD_QUERY}&cid=CID#top"
    status = 302 if header == "Location" else 200
    rv = finish(shop, header, url, before_redirect=True, status=status)
    expected = f"/receipt?{ODD_QUERY}#top"
    if header == "HX-Location JSON":
        assert rv.headers["HX-Location"] == json.dumps({"path": expected, "target": "#main"})
    else:
        assert rv.headers[header] == expected
    assert shop.new_tab().get(f"/receipt?cid={cid}").status_code == 404


@pytest.mark.parametrize("header", ["Location", "HX-Redirect"])
def test_before_redirect_empties_the_query(shop: ConversationClient, header: str) -> None:
    status = 303 if header == "Location" else 200
    rv = finish(shop, header, "/receipt?cid=CID", before_redirect=True, status=status)
    assert rv.headers[header] == "/receipt"


def test_before_redirect_keeps_other_cids(shop: ConversationClient) -> None:
    other = shop.new_tab()
    other_cid = other.post("/begin").json["id"]
    rv = finish(shop, "HX-Redirect", f"/receipt?cid={other_cid}&cid=CID", before_redirect=True)
    assert rv.headers["HX-Redirect"] == f"/receipt?cid={other_cid}"


def test_before_redirect_decorator_with_htmx(shop: ConversationClient) -> None:
    cid = shop.cid
    rv = shop.post("/finish-decorated")
    assert rv.headers["HX-Redirect"] == f"/receipt?{ODD_QUERY}"
    assert shop.new_tab().get(f"/receipt?cid={cid}").status_code == 404


# -- an unknown cid from htmx -----------------------------------------------------


@pytest.fixture
def missing(app: Flask, api: ConversationClient) -> ConversationClient:
    app.config["CONVERSATION_MISSING_REDIRECT"] = "start"

    @app.get("/start")
    def start() -> dict[str, t.Any]:
        return {"flashed": get_flashed_messages(with_categories=True)}

    @app.post("/done")
    @end_conversation()
    def done() -> str:
        return "done"

    @app.get("/inside")
    @conversation_required(redirect_to="start")
    def inside() -> str:
        return "inside"

    return api


@pytest.mark.parametrize("path", ["/show?cid=gone", "/done?cid=gone"])
def test_htmx_request_with_unknown_cid_gets_hx_redirect(
    missing: ConversationClient, app: Flask, path: str
) -> None:
    method = missing.post if path.startswith("/done") else missing.get
    rv = method(path, headers=HX)
    assert rv.status_code == 200
    assert rv.headers["HX-Redirect"] == "/start"
    assert "Location" not in rv.headers
    assert rv.data == b""
    message = app.config["CONVERSATION_MISSING_FLASH_MESSAGE"]
    assert missing.get("/start").json == {"flashed": [["warning", message]]}


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "false"}])
def test_other_requests_with_unknown_cid_get_302(
    missing: ConversationClient, headers: dict[str, str]
) -> None:
    rv = missing.get("/show?cid=gone", headers=headers)
    assert rv.status_code == 302
    assert rv.location == "/start"
    assert "HX-Redirect" not in rv.headers
    assert missing.get("/start").json["flashed"]


def test_htmx_request_with_unknown_cid_without_setting_is_404(api: ConversationClient) -> None:
    rv = api.get("/show?cid=gone", headers=HX)
    assert rv.status_code == 404
    assert "HX-Redirect" not in rv.headers


def test_conversation_required_redirects_htmx_with_hx_redirect(
    missing: ConversationClient,
) -> None:
    rv = missing.get("/inside", headers=HX)
    assert (rv.status_code, rv.headers["HX-Redirect"]) == (200, "/start")
    rv = missing.get("/inside")
    assert (rv.status_code, rv.location) == (302, "/start")


# -- conversation_hx_headers() ----------------------------------------------------


@pytest.fixture
def pages(app: Flask, api: ConversationClient) -> ConversationClient:
    @app.route("/page", methods=["GET", "POST"])
    def page() -> str:
        if request.method == "POST":
            conversation.begin()
        return render_template_string(
            """<body hx-headers="{{ conversation_hx_headers() }}">"""
            """<main hx-headers='{{ conversation_hx_headers() }}'>"""
            """{{ conversation_script(**script_args) }}</main>""",
            script_args=request.args.to_dict(),
        )

    @app.get("/python")
    def python() -> dict[str, t.Any]:
        return {"headers": json.loads(conversation_hx_headers()), "type": "str"}

    return api


def attributes(page: str, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(rf"{name}=[\"']([^\"']*)[\"']", page)]


def test_hx_headers_carry_the_cid(pages: ConversationClient) -> None:
    page = pages.post("/page").text
    cid = pages.cid
    # Both quote styles hold valid JSON once the browser unescapes them.
    assert [json.loads(v) for v in attributes(page, "hx-headers")] == [
        {"X-Conversation-Id": cid},
        {"X-Conversation-Id": cid},
    ]
    assert '"' not in re.search(r"hx-headers=\"([^\"]*)\"", page).group(1)  # type: ignore[union-attr]
    assert pages.get("/python").json["headers"] == {"X-Conversation-Id": cid}


def test_hx_headers_without_a_cid(pages: ConversationClient) -> None:
    page = pages.new_tab().get("/page").text
    assert [json.loads(v) for v in attributes(page, "hx-headers")] == [{}, {}]
    assert pages.new_tab().get("/python").json["headers"] == {}


def test_hx_headers_follow_the_header_setting(app: Flask, pages: ConversationClient) -> None:
    app.config["CONVERSATION_HEADER"] = "X-Flow"
    page = pages.post("/page").text
    assert json.loads(attributes(page, "hx-headers")[0]) == {"X-Flow": pages.cid}


def test_hx_headers_value_is_plain_json_text(app: Flask) -> None:
    with app.test_request_context("/"):
        value = conversation_hx_headers()
        assert value == "{}"
        assert json.loads(value) == {}
        assert str(value) == "{}"


# -- conversation_script() --------------------------------------------------------


def script_tag(page: str) -> dict[str, str]:
    match = re.search(r"<script([^>]*)></script>", page)
    assert match is not None, page
    return {k: html.unescape(v) for k, v in re.findall(r' ([\w-]+)="([^"]*)"', match.group(1))}


def test_script_tag_names_cid_header_and_param(pages: ConversationClient) -> None:
    tag = script_tag(pages.post("/page").text)
    assert tag == {
        "src": "/_flask_conversation/static/conversation.js",
        "data-header": "X-Conversation-Id",
        "data-param": "cid",
        "data-cid": t.cast(str, pages.cid),
    }


def test_script_tag_without_a_cid_and_with_a_nonce(pages: ConversationClient) -> None:
    tag = script_tag(pages.new_tab().get("/page?nonce=r4nd0m").text)
    assert "data-cid" not in tag
    assert tag["nonce"] == "r4nd0m"


def test_script_tag_escapes_its_settings(app: Flask, pages: ConversationClient) -> None:
    app.config.update(CONVERSATION_PARAM='c"id<', CONVERSATION_HEADER="X-Flow")
    page = pages.post("/page?nonce=%22%3E%3Cb%3E").text
    assert "<b>" not in page
    tag = script_tag(page)
    assert (tag["data-param"], tag["data-header"], tag["nonce"]) == ('c"id<', "X-Flow", '"><b>')


def test_script_is_served(app: Flask, pages: ConversationClient) -> None:
    src = script_tag(pages.post("/page").text)["src"]
    rv = pages.new_tab().get(src)
    assert rv.status_code == 200
    assert rv.mimetype == "text/javascript"
    packaged = resources.files("flask_conversation").joinpath("static", "conversation.js")
    assert rv.data == packaged.read_bytes()
    assert b"flaskConversation" in rv.data
    rv.close()


def test_script_url_takes_no_cid_and_does_not_clash() -> None:
    app = Flask(__name__, static_folder=None)
    app.config.update(SECRET_KEY="test", CONVERSATION_AUTO_PROPAGATE=True)
    ConversationScope(app, store=MemoryStore())

    @app.get("/<path:anything>")
    def catch_all(anything: str) -> str:
        return "app"

    @app.post("/page")
    def page() -> str:
        conversation.begin()
        return str(conversation_script())

    client = app.test_client()
    src = script_tag(client.post("/page").text)["src"]
    assert "cid" not in src
    rv = client.get(src)
    assert rv.mimetype == "text/javascript"
    rv.close()
    assert client.get("/static/app.css").text == "app"


def test_script_is_package_data() -> None:
    config = configparser.ConfigParser()
    config.read(Path(__file__).parent.parent / "setup.cfg")
    patterns = config["options.package_data"]["flask_conversation"].split()
    package = Path(resources.files("flask_conversation"))  # type: ignore[arg-type]
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    assert package / "static" / "conversation.js" in shipped


def test_template_helpers_in_a_request_without_conversation(app: Flask) -> None:
    with app.test_request_context("/"):
        assert conversation_hx_headers() == "{}"
        assert "data-cid" not in conversation_script()
