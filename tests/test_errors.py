"""SPEC 2 and 3.3: unknown, malformed and foreign cids; error types."""

from __future__ import annotations

import pytest
from flask import Flask
from flask import get_flashed_messages
from werkzeug.exceptions import HTTPException

from flask_conversation import BusyConversation
from flask_conversation import ContextNotActive
from flask_conversation import conversation
from flask_conversation import ConversationError
from flask_conversation import ConversationIdInUse
from flask_conversation import ConversationLimitReached
from flask_conversation import ConversationScope
from flask_conversation import ConversationStateError
from flask_conversation import ConversationStoreError
from flask_conversation import ConversationTooLarge
from flask_conversation import NoConversation
from flask_conversation import NoNamespace
from flask_conversation import NonexistentConversation
from flask_conversation.testing import ConversationClient


def test_error_hierarchy() -> None:
    for cls in (
        ConversationStateError,
        ConversationIdInUse,
        NonexistentConversation,
        BusyConversation,
        NoConversation,
        ConversationStoreError,
        ConversationTooLarge,
        ConversationLimitReached,
        NoNamespace,
        ContextNotActive,
    ):
        assert issubclass(cls, ConversationError)
    assert issubclass(ContextNotActive, RuntimeError)
    assert not issubclass(ConversationIdInUse, ValueError)
    codes = {NonexistentConversation: 404, BusyConversation: 503, NoConversation: 400}
    codes[ConversationStoreError] = 503
    codes.update({ConversationTooLarge: 413, ConversationLimitReached: 409, NoNamespace: 403})
    for cls, code in codes.items():
        assert issubclass(cls, HTTPException)
        assert cls.code == code
    for cls in (BusyConversation, ConversationStoreError):
        headers = dict(cls().get_headers())
        assert int(headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    "cid", ["unknownbutwellformed", "x" * 65, "a b", "../etc", "*", "{x}", "é", "a%00b"]
)
def test_unknown_or_malformed_cid_is_404(api: ConversationClient, cid: str) -> None:
    api.post("/begin")  # a namespace exists
    rv = api.get("/show", query_string={"cid": cid})
    assert rv.status_code == 404


def test_unknown_cid_without_any_session(app: Flask, api: ConversationClient) -> None:
    assert api.get("/show?cid=abc").status_code == 404


def test_foreign_cid_is_404(app: Flask, api: ConversationClient) -> None:
    cid = api.post("/begin").json["id"]
    stranger = app.test_client()  # another browser: another cookie jar
    assert stranger.get(f"/show?cid={cid}").status_code == 404
    assert api.get(f"/show?cid={cid}").status_code == 200


def test_error_handler_sees_fresh_temporary(app: Flask, api: ConversationClient) -> None:
    @app.errorhandler(NonexistentConversation)
    def gone(e: NonexistentConversation) -> tuple[dict[str, object], int]:
        return {"cid": e.cid, "id": conversation.id, "lr": conversation.long_running}, 404

    rv = api.get("/show?cid=nope")
    assert rv.status_code == 404
    assert rv.json == {"cid": "nope", "id": None, "lr": False}


def test_fresh_temporary_after_missing_can_begin(app: Flask, api: ConversationClient) -> None:
    @app.post("/restart")
    def restart() -> dict[str, object]:
        with pytest.raises(NonexistentConversation):
            conversation.get("x")
        conversation.begin()
        return {"id": conversation.id}

    rv = api.post("/restart?cid=gone")
    assert rv.status_code == 200
    assert rv.json["id"] not in (None, "gone")


def test_missing_redirect_flashes(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_MISSING_REDIRECT"] = "start"

    @app.get("/start")
    def start() -> dict[str, object]:
        return {"flashes": get_flashed_messages(with_categories=True)}

    rv = api.get("/show?cid=expired")
    assert rv.status_code == 302
    assert rv.location == "/start"
    assert api.get("/start").json == {
        "flashes": [["warning", "That conversation has ended or expired. Please start again."]]
    }


def test_missing_flash_category(app: Flask, api: ConversationClient) -> None:
    app.config["CONVERSATION_MISSING_REDIRECT"] = "start"
    app.config["CONVERSATION_MISSING_FLASH_CATEGORY"] = "error"

    @app.get("/start")
    def start() -> dict[str, object]:
        return {"flashes": get_flashed_messages(with_categories=True)}

    api.get("/show?cid=expired")
    assert api.get("/start").json["flashes"][0][0] == "error"


def test_context_not_active() -> None:
    with pytest.raises(ContextNotActive):
        conversation.get("x")
    with pytest.raises(RuntimeError):
        _ = conversation.id


def test_app_context_alone_is_not_a_request(app: Flask) -> None:
    with app.app_context(), pytest.raises(ContextNotActive):
        conversation["x"] = 1


def test_no_handler_no_500(app: Flask, api: ConversationClient) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    rv = api.get("/show?cid=nope")
    assert rv.status_code == 404
    assert b"ended or expired" in rv.data


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"CONVERSATION_STORE": "nosuch"}, "CONVERSATION_STORE"),
        ({"CONVERSATION_STORE": "redis"}, "CONVERSATION_REDIS"),
    ],
)
def test_config_errors(config: dict[str, str], match: str) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ValueError, match=match):
        ConversationScope(app)


@pytest.mark.parametrize("name", ["session", "memory"])
def test_store_by_name(name: str) -> None:
    from flask_conversation.stores import MemoryStore
    from flask_conversation.stores import SessionStore

    app = Flask(__name__)
    app.config["CONVERSATION_STORE"] = name
    ConversationScope(app)
    store = ConversationScope.get_store(app)
    assert type(store) is {"session": SessionStore, "memory": MemoryStore}[name]


def test_extension_not_initialized() -> None:
    app = Flask(__name__)
    app.testing = True

    @app.get("/")
    def index() -> str:
        return str(conversation.id)

    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().get("/")


def test_several_apps_one_extension() -> None:
    from flask_conversation.stores import MemoryStore

    scope = ConversationScope()
    apps = []
    for _ in range(2):
        a = Flask(__name__)
        a.secret_key = "k"
        scope.init_app(a, store=MemoryStore())

        @a.post("/begin")
        def begin() -> str:
            conversation.begin()
            return str(conversation.id)

        apps.append(a)
    assert not hasattr(scope, "app")
    stores = [ConversationScope.get_store(a) for a in apps]
    assert stores[0] is not stores[1]
    for a, store in zip(apps, stores, strict=True):
        a.test_client().post("/begin")
        assert len(store) == 1  # type: ignore[arg-type]


def test_extension_registers_itself() -> None:
    app = Flask(__name__)
    scope = ConversationScope(app)
    assert app.extensions["conversation"] is scope
    assert "app" not in vars(scope)
