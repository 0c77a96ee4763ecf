"""Mistakes that explain themselves: the usual first errors with the
extension each get a message (or a log record) that names the cause and the
fix, instead of a silent redirect or a bare ``KeyError``.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
import typing as t

import pytest
from flask import Flask
from flask import redirect
from flask import render_template_string
from flask import request
from flask import url_for

from flask_conversation import begin_conversation
from flask_conversation import ContextNotActive
from flask_conversation import conversation
from flask_conversation import conversation_required
from flask_conversation import ConversationError
from flask_conversation import ConversationScope
from flask_conversation import end_conversation
from flask_conversation import url_for_cid
from flask_conversation.errors import NoCidKeyError
from flask_conversation.errors import NoSecretKey
from flask_conversation.testing import ConversationClient
from tests.conftest import conversation_app

CAUSES = (
    "a form without {{ conversation_field() }}, or a link or redirect built"
    " with url_for() instead of url_for_cid()"
)


# -- a forgotten cid at @conversation_required ----------------------------------


@pytest.fixture
def shop(app: Flask) -> Flask:
    """A two-step flow with both usual mistakes in it: the guests form
    forgets ``conversation_field()``, and ``/skip`` redirects with
    ``url_for``.
    """

    @app.post("/book")
    @begin_conversation()
    def book() -> t.Any:
        conversation["hotel"] = "Harbour View"
        return redirect(url_for_cid("guests"))

    @app.route("/guests", methods=["GET", "POST"])
    @conversation_required(redirect_to="home")
    def guests() -> t.Any:
        if request.method == "POST":
            conversation["guests"] = request.form["guests"]
            return redirect(url_for_cid("guests"))
        return render_template_string(
            '<form method="post" action="{{ url_for(\'guests\') }}"><input name="guests"></form>'
        )

    @app.post("/skip")
    def skip() -> t.Any:
        return redirect(url_for("guests"))

    @app.get("/")
    def home() -> str:
        return "home"

    @app.get("/strict")
    @conversation_required
    def strict() -> str:
        return "never"

    return app


def missing_cid_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "flask_conversation" and "@conversation_required" in r.getMessage()
    ]


@pytest.mark.parametrize("store_kind", ["cookie", "memory"])
def test_form_without_conversation_field_logs_a_warning_in_debug(
    shop: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    shop.debug = True
    tab = t.cast(ConversationClient, shop.test_client())
    tab.post("/book", follow_redirects=True)
    form = tab.get("/guests").text
    assert 'name="cid"' not in form  # the mistake
    tab.cid = None  # a browser sends what the form holds: no cid
    with caplog.at_level(logging.INFO, logger="flask_conversation"):
        rv = tab.post("/guests", data={"guests": "2"})
    assert rv.status_code == 302 and rv.location == "/"
    [record] = missing_cid_records(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "POST /guests reached the @conversation_required view 'guests' without a cid" in message
    assert "no 'cid' query parameter, form field or X-Conversation-Id header" in message
    assert CAUSES in message


@pytest.mark.parametrize("store_kind", ["cookie", "memory"])
def test_redirect_with_url_for_logs_info_outside_debug(
    shop: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    assert not shop.debug
    tab = t.cast(ConversationClient, shop.test_client())
    tab.post("/book")
    with caplog.at_level(logging.INFO, logger="flask_conversation"):
        rv = tab.post("/skip", follow_redirects=True)
    assert rv.request.path == "/" and rv.text == "home"
    [record] = missing_cid_records(caplog)
    assert record.levelno == logging.INFO
    assert "GET /guests reached the @conversation_required view 'guests'" in record.getMessage()
    assert CAUSES in record.getMessage()


@pytest.mark.parametrize("store_kind", ["memory"])
def test_no_conversation_error_is_logged_too(shop: Flask, caplog: pytest.LogCaptureFixture) -> None:
    shop.debug = True
    shop.config["CONVERSATION_PARAM"] = "c"
    shop.config["CONVERSATION_HEADER"] = "X-Flow"
    with caplog.at_level(logging.INFO, logger="flask_conversation"):
        assert shop.test_client().get("/strict").status_code == 400
    [record] = missing_cid_records(caplog)
    assert "view 'strict' without a cid (no 'c' query parameter" in record.getMessage()
    assert "X-Flow header" in record.getMessage()


@pytest.mark.parametrize("store_kind", ["cookie", "memory"])
def test_nothing_logged_with_a_cid(shop: Flask, caplog: pytest.LogCaptureFixture) -> None:
    shop.debug = True
    tab = t.cast(ConversationClient, shop.test_client())
    with caplog.at_level(logging.DEBUG, logger="flask_conversation"):
        tab.post("/book", follow_redirects=True)
        assert tab.post("/guests", data={"guests": "2"}).status_code == 302
        # An unknown cid is its own error (404), not a forgotten one.
        assert tab.get("/guests?cid=ended").status_code == 404
    assert missing_cid_records(caplog) == []


# -- a missing key in a request without a cid -------------------------------------


@pytest.fixture
def reader(app: Flask) -> Flask:
    @app.post("/begin")
    @begin_conversation()
    def begin() -> str:
        conversation["hotel"] = "Harbour View"
        return str(conversation.id)

    @app.post("/end")
    @end_conversation()
    def end() -> t.Any:
        return redirect(url_for_cid("hotel"))

    @app.get("/hotel")
    def hotel() -> str:
        try:
            return str(conversation["guests"])
        except KeyError as e:
            return f"{type(e).__name__}|{e.args[0]}|{e}"

    @app.get("/template")
    def template() -> str:
        return render_template_string("[{{ conversation.guests }}]")

    return app


@pytest.mark.parametrize("store_kind", ["cookie", "memory"])
def test_missing_key_without_a_cid_says_why(reader: Flask) -> None:
    tab = t.cast(ConversationClient, reader.test_client())
    kind, key, message = tab.get("/hotel").text.split("|")
    assert (kind, key) == ("NoCidKeyError", "guests")
    assert message.startswith("'guests'. This request named no cid, so the conversation is a")
    assert CAUSES in message
    with reader.test_request_context():
        with pytest.raises(KeyError) as info:
            conversation["guests"]
        assert isinstance(info.value, NoCidKeyError)
        assert not isinstance(info.value, ConversationError)
        assert info.value.args == ("guests",)
        # get() and templates treat it as any missing key.
        assert conversation.get("guests", 3) == 3
        assert "guests" not in conversation
    assert tab.get("/template").text == "[]"


@pytest.mark.parametrize("store_kind", ["cookie", "memory"])
def test_missing_key_with_a_cid_is_a_plain_key_error(reader: Flask) -> None:
    tab = t.cast(ConversationClient, reader.test_client())
    tab.post("/begin")
    assert tab.get("/hotel").text == "KeyError|guests|'guests'"
    # The one request after end + redirect named a cid: no hint either.
    to = tab.post("/end").location
    assert tab.get(to).text == "KeyError|guests|'guests'"


# -- outside a request ----------------------------------------------------------------


def test_context_not_active_names_test_request_context() -> None:
    with pytest.raises(ContextNotActive) as info:
        conversation.get("hotel")
    assert "with app.test_request_context(): ..." in str(info.value)


# -- Redis without the redis package ----------------------------------------------------


@pytest.fixture
def without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Import as if the ``redis`` package were not installed."""
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "flask_conversation.stores.redis", raising=False)


def test_redis_store_without_redis_names_the_extra(without_redis: None) -> None:
    app = Flask(__name__)
    app.config.update(CONVERSATION_STORE="redis", CONVERSATION_REDIS="redis://127.0.0.1:1/0")
    with pytest.raises(ModuleNotFoundError) as info:
        ConversationScope(app)
    assert info.value.name == "redis"
    message = str(info.value)
    assert message.startswith("RedisStore needs the redis client package, which is not installed")
    assert 'pip install -e ".[redis]"' in message and "[redis] extra" in message
    assert "conversation" not in app.extensions


class RedisImportedAtTop(importlib.abc.MetaPathFinder):
    """Fails the store module's import the way a module that imports
    ``redis`` at its top fails without the package.
    """

    def find_spec(self, name: str, path: t.Any, target: t.Any = None) -> None:
        if name == "flask_conversation.stores.redis":
            raise ModuleNotFoundError("No module named 'redis'", name="redis")


def test_importing_redis_store_without_redis_names_the_extra(
    without_redis: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "meta_path", [RedisImportedAtTop(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError, match=r"\[redis\] extra") as info:
        from flask_conversation.stores import RedisStore  # noqa: F401
    assert info.value.name == "redis"


# -- no secret key ----------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["cookie", "memory", "redis"])
def test_begin_without_secret_key_says_how_to_set_one(app: Flask, store_kind: str) -> None:
    app.config["SECRET_KEY"] = None

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        conversation["hotel"] = 1
        return "began"

    @app.get("/plain")
    def plain() -> str:
        return str(conversation.get("hotel"))

    client = app.test_client()
    # Requests that never begin a conversation need no key.
    assert client.get("/plain").text == "None"
    with pytest.raises(NoSecretKey) as info:
        client.post("/begin")
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ConversationError)
    message = str(info.value)
    assert message.startswith("Cannot begin a conversation: the namespace token")
    assert 'app.config["SECRET_KEY"]' in message and "secrets.token_hex()" in message

    app.config["PROPAGATE_EXCEPTIONS"] = False
    rv = client.post("/begin")
    assert rv.status_code == 500 and "Set-Cookie" not in rv.headers
    if store_kind != "cookie":
        assert ConversationScope.get_store(app).namespaces() == {}


@pytest.mark.parametrize("store_kind", ["cachelib"])
def test_server_side_session_needs_no_secret_key(app: Flask) -> None:
    app.config["SECRET_KEY"] = None

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        return "began"

    assert app.test_client().post("/begin").text == "began"


def test_namespace_loader_needs_no_secret_key() -> None:
    from flask_conversation.stores import MemoryStore

    app = conversation_app(MemoryStore())
    app.config["SECRET_KEY"] = None
    scope: ConversationScope = app.extensions["conversation"]
    scope.namespace_loader(lambda: "chat:1")

    @app.post("/begin")
    def begin() -> str:
        conversation.begin(join=True, id="chat")
        return str(conversation.id)

    assert app.test_client().post("/begin").text == "chat"
