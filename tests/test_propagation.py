"""SPEC 2.4: how the cid is read and propagated."""

from __future__ import annotations

import pytest
from flask import Flask
from flask import redirect
from flask import render_template_string
from flask import url_for
from werkzeug.wrappers import Response

from flask_conversation import conversation
from flask_conversation import url_for_cid
from flask_conversation.testing import ConversationClient


@pytest.fixture
def two(app: Flask, api: ConversationClient) -> tuple[str, str]:
    """Two live conversations in one session: ``(a, b)``."""
    a = api.post("/begin").json["id"]
    b = api.new_tab().post("/begin").json["id"]
    return a, b


def plain(app: Flask, browser: ConversationClient | None = None):  # type: ignore[no-untyped-def]
    """A client that adds no cid by itself; with ``browser``, it shares that
    client's cookies (the same browser, another tab).
    """
    from flask.testing import FlaskClient

    app.test_client_class = FlaskClient
    client = app.test_client()
    if browser is not None:
        client._cookies = browser._cookies
    return client


def test_query_form_header_order(app: Flask, api: ConversationClient, two: tuple[str, str]) -> None:
    a, b = two
    client = plain(app, api)
    show = "/show"
    assert client.post(f"{show}?cid={a}", data={"cid": b}).json["id"] == a
    assert client.post(show, data={"cid": b}, headers={"X-Conversation-Id": a}).json["id"] == b
    assert client.post(show, headers={"X-Conversation-Id": a}).json["id"] == a
    assert client.get(f"{show}?cid={a}", headers={"X-Conversation-Id": b}).json["id"] == a


def test_empty_values_count_as_absent(
    app: Flask, api: ConversationClient, two: tuple[str, str]
) -> None:
    a, b = two
    client = plain(app, api)
    assert (
        client.post("/show?cid=", data={"cid": "  "}, headers={"X-Conversation-Id": b}).json["id"]
        == b
    )
    assert client.get("/show?cid=%20%09").json["id"] is None


def test_repeated_parameter_uses_first(
    app: Flask, api: ConversationClient, two: tuple[str, str]
) -> None:
    a, b = two
    client = plain(app, api)
    assert client.get(f"/show?cid={b}&cid={a}").json["id"] == b


def test_every_method_reads_the_cid(
    app: Flask, api: ConversationClient, two: tuple[str, str]
) -> None:
    a, _ = two
    client = plain(app, api)
    for method in ("get", "post", "put", "patch", "delete"):
        assert getattr(client, method)(f"/show?cid={a}").json["id"] == a


def test_url_for_cid(app: Flask, api: ConversationClient) -> None:
    @app.get("/links")
    def links() -> dict[str, object]:
        return {
            "with": url_for_cid("show"),
            "explicit": url_for_cid("show", cid="other"),
            "none": url_for_cid("show", cid=None),
            "plain": url_for("show"),
            "extra": url_for_cid("show", page=2),
        }

    assert api.get("/links").json["with"] == "/show"
    cid = api.post("/begin").json["id"]
    assert api.get("/links").json == {
        "with": f"/show?cid={cid}",
        "explicit": "/show?cid=other",
        "none": "/show",
        "plain": "/show",
        "extra": f"/show?page=2&cid={cid}",
    }


def test_param_name_follows_config(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_PARAM"] = "conv"

    @app.get("/link")
    def link() -> str:
        return url_for_cid("show")

    cid = api.post("/begin").json["id"]
    assert api.get("/link").text == f"/show?conv={cid}"
    assert plain(app).get(f"/show?conv={cid}").status_code == 404  # other cookie jar
    api_plain = plain(app, api)
    assert api_plain.get(f"/show?conv={cid}").json["id"] == cid


def test_header_name_follows_config(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_HEADER"] = "X-Flow"
    rv = api.post("/begin")
    assert rv.headers["X-Flow"] == rv.json["id"]
    assert "X-Conversation-Id" not in rv.headers
    assert api.get("/show").json["id"] == rv.json["id"]


def test_templates(app: Flask, api: ConversationClient) -> None:
    source = (
        "{{ cid }}|{{ conversation_field() }}|{{ url_for_cid('show') }}"
        "|{{ conversation.long_running }}|{{ conversation.get('a') }}"
    )

    @app.get("/page")
    def page() -> str:
        return render_template_string(source)

    assert api.get("/page").text == "None||/show|False|None"
    cid = api.post("/begin").json["id"]
    api.post("/set", json={"a": "<b>"})
    assert api.get("/page").text == (
        f'{cid}|<input type="hidden" name="cid" value="{cid}">|/show?cid={cid}|True|&lt;b&gt;'
    )


def test_conversation_field_param_name(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_PARAM"] = "flow"

    @app.get("/form")
    def form() -> str:
        return render_template_string("{{ conversation_field() }}")

    cid = api.post("/begin").json["id"]
    assert api.get("/form").text == f'<input type="hidden" name="flow" value="{cid}">'


def test_conversation_field_escapes_the_param_name(app: Flask, api: ConversationClient) -> None:
    # A parameter name is configuration, yet never breaks out of the tag.
    app.config["CONVERSATION_PARAM"] = 'flow"><b>'

    @app.get("/form")
    def form() -> str:
        return render_template_string("{{ conversation_field() }}")

    cid = api.post("/begin").json["id"]
    assert api.get("/form", query_string={'flow"><b>': cid}).text == (
        f'<input type="hidden" name="flow&#34;&gt;&lt;b&gt;" value="{cid}">'
    )


def test_form_field_round_trip(app: Flask, api: ConversationClient) -> None:
    cid = api.post("/begin").json["id"]
    client = plain(app, api)
    assert client.post("/incr", data={"cid": cid}).json["data"] == {"n": 1}
    assert client.post("/incr", data={"cid": cid}).json["data"] == {"n": 2}


def test_auto_propagate(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_AUTO_PROPAGATE"] = True

    @app.get("/auto")
    def auto() -> dict[str, str]:
        return {
            "view": url_for("show"),
            "static": url_for("static", filename="x.css"),
            "explicit": url_for("show", cid="x"),
        }

    assert api.get("/auto").json["view"] == "/show"
    cid = api.post("/begin").json["id"]
    assert api.get("/auto").json == {
        "view": f"/show?cid={cid}",
        "static": "/static/x.css",
        "explicit": "/show?cid=x",
    }


def test_auto_propagate_off_by_default(app: Flask, api: ConversationClient) -> None:
    @app.get("/auto")
    def auto() -> str:
        return url_for("show")

    api.post("/begin")
    assert api.get("/auto").text == "/show"


def test_redirect_with_url_for_cid_propagates(app: Flask, api: ConversationClient) -> None:
    @app.post("/next")
    def next_step() -> Response:
        return redirect(url_for_cid("show"))

    cid = api.post("/begin").json["id"]
    rv = api.post("/next")
    assert rv.location == f"/show?cid={cid}"
    assert plain(app).get("/show").json["id"] is None


def test_response_header_only_when_long_running(api: ConversationClient) -> None:
    assert "X-Conversation-Id" not in api.get("/show").headers
    cid = api.post("/begin").json["id"]
    assert api.get("/show").headers["X-Conversation-Id"] == cid


def test_template_cid_is_a_plain_value(app: Flask, api: ConversationClient) -> None:
    @app.get("/js")
    def js() -> str:
        return render_template_string("{{ cid is none }} {{ cid|tojson }}")

    assert api.get("/js").text == "True null"
    cid = api.post("/begin").json["id"]
    assert api.get("/js").text == f'False "{cid}"'


def test_template_rendered_outside_of_a_request(app: Flask) -> None:
    # A mail rendered by a command or a job: no request, so no cid and an
    # empty field, and the page's own variables render as usual.
    with app.app_context():
        rendered = render_template_string(
            "{{ cid is none }} [{{ conversation_field() }}] {{ name }}", name="a user"
        )
    assert rendered == "True [] a user"


def test_template_with_unknown_cid_renders(app: Flask, api: ConversationClient) -> None:
    @app.get("/about")
    def about() -> str:
        return render_template_string("about {{ cid }}")

    rv = api.get("/about?cid=expired")
    assert rv.status_code == 200
    assert rv.text == "about None"


def test_template_conversation_after_begin_and_unknown_cid(
    app: Flask, api: ConversationClient
) -> None:
    @app.post("/start")
    def start() -> str:
        conversation.begin(description="Trip")
        conversation["city"] = "Oslo"
        return render_template_string("{{ conversation.description }} {{ conversation.city }}")

    @app.get("/page")
    def page() -> str:
        return render_template_string("{{ conversation.long_running }}")

    assert api.post("/start").text == "Trip Oslo"
    assert api.get("/page").text == "True"
    # The template uses the conversation: an unknown cid is reported there.
    assert api.get("/page?cid=unknown").status_code == 404
