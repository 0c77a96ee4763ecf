"""The extension's registration on an application: once per application,
with its request hooks as bound methods and the namespace loader readable.
"""

from __future__ import annotations

import pytest
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore


def test_init_app_twice_on_one_app_raises() -> None:
    app = Flask(__name__)
    app.secret_key = "test"
    scope = ConversationScope(app)
    hooks = list(app.after_request_funcs[None])
    teardowns = list(app.teardown_request_funcs[None])

    with pytest.raises(RuntimeError, match="already registered"):
        scope.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        ConversationScope(app, store=MemoryStore())

    # The first registration stands, with each hook once.
    assert app.extensions["conversation"] is scope
    assert app.after_request_funcs[None] == hooks
    assert app.teardown_request_funcs[None] == teardowns
    assert ConversationScope.get_store(app) is scope.store_for(app)

    @app.post("/")
    def begin() -> dict[str, str | None]:
        conversation.begin()
        return {"id": conversation.id}

    client = app.test_client()
    response = client.post("/")
    assert response.headers["X-Conversation-Id"] == response.json["id"]  # type: ignore[index]


def test_one_scope_serves_several_apps() -> None:
    scope = ConversationScope()
    apps = [Flask(__name__), Flask(__name__)]
    stores = [MemoryStore(), MemoryStore()]
    for app, store in zip(apps, stores, strict=True):
        scope.init_app(app, store=store)
    assert [ConversationScope.get_store(a) for a in apps] == stores


def test_hooks_are_bound_methods_of_the_scope() -> None:
    app = Flask(__name__)
    scope = ConversationScope(app)
    assert scope.commit_conversation in app.after_request_funcs[None]
    assert scope.release_conversation in app.teardown_request_funcs[None]


def test_namespace_loader_is_readable_through_a_property() -> None:
    app = Flask(__name__)
    scope = ConversationScope(app, store=MemoryStore())
    assert scope.namespace_callback is None

    @scope.namespace_loader
    def chat() -> str:
        return "chat:1"

    assert scope.namespace_callback is chat
    with pytest.raises(AttributeError):
        scope.namespace_callback = None  # type: ignore[misc]

    @app.post("/")
    def begin() -> dict[str, str | None]:
        conversation.begin(id="talk")
        return {"id": conversation.id}

    app.test_client().post("/")
    # The loader's namespace is where the conversation went.
    assert [r.id for r in ConversationScope.get_store(app).list_namespace("chat:1")] == ["talk"]
