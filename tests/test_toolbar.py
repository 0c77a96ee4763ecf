"""The Flask-DebugToolbar panel, drawn into real pages of a test app."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_conversation import begin_conversation
from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient

pytest.importorskip("flask_debugtoolbar")

from flask_debugtoolbar import DebugToolbarExtension  # noqa: E402

PANEL = "flask_conversation.toolbar.ConversationPanel"
PAGE = "<!doctype html><html><body><p>{}</p></body></html>"


def make_app(store: ConversationStore, toolbar_first: bool = True) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test",
        DEBUG_TB_ENABLED=True,
        DEBUG_TB_PANELS=[PANEL],
        DEBUG_TB_INTERCEPT_REDIRECTS=False,
    )
    if toolbar_first:
        DebugToolbarExtension(app)
        ConversationScope(app, store=store)
    else:
        ConversationScope(app, store=store)
        DebugToolbarExtension(app)
    app.test_client_class = ConversationClient

    @app.get("/plain")
    def plain() -> str:
        return PAGE.format("no conversation here")

    @app.post("/book")
    @begin_conversation(description="Booking")
    def book() -> str:
        conversation["hotel"] = "Ritz"
        return PAGE.format("booking")

    @app.post("/pay")
    @begin_conversation(nested=True, description="Payment")
    def pay() -> str:
        conversation["card"] = "<visa>"
        return PAGE.format("paying")

    @app.get("/look")
    def look() -> str:
        return PAGE.format(conversation.get("hotel"))

    return app


def panel_html(page: str) -> str:
    """The content of the conversation panel in a page with the toolbar."""
    start = page.index('id="flDebugConversationPanel-content"')
    end = page.find('class="flDebugPanelContentParent"', start + 40)
    return page[start : end if end != -1 else len(page)]


def store_rows(panel: str) -> list[str]:
    return [
        html.unescape(m).replace("\u2003", " ").strip()
        for m in re.findall(r'<td class="store-method">([^<]*)</td>', panel)
    ]


def test_panel_shows_stack_data_and_store_calls() -> None:
    app = make_app(MemoryStore())
    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/book")
    page = tab.post("/pay").get_data(as_text=True)
    child = tab.cid
    assert child is not None

    panel = panel_html(page)

    assert "long-running, depth 1, " in page  # the toolbar's subtitle
    assert f"<th>id</th><td>{child}</td>" in panel
    assert "<th>long_running</th><td>True</td>" in panel
    assert "<th>nested</th><td>True</td>" in panel
    assert "<th>description</th><td>Payment</td>" in panel
    assert "<th>timeout</th><td>0:30:00</td>" in panel
    # Breadcrumbs, root first.
    crumbs = re.search(r'class="conversation-breadcrumbs">(.*?)</p>', panel, re.S)
    assert crumbs is not None
    assert re.sub(r"\s+", " ", html.unescape(crumbs.group(1))).strip() == "Booking › Payment"
    # The data the view sees (inherited keys included), escaped.
    data = re.search(r'<pre class="conversation-data">(.*?)</pre>', panel, re.S)
    assert data is not None
    assert json.loads(html.unescape(data.group(1))) == {"card": "<visa>", "hotel": "Ritz"}
    assert "&lt;visa&gt;" in panel and "<visa>" not in panel
    # The request locked and loaded the root's stack, then committed.
    rows = store_rows(panel)
    assert rows[0] == "acquire"
    assert "commit" in rows
    assert "MemoryStore:" in panel
    assert "round trips" in panel
    assert "initialize DebugToolbarExtension before" not in " ".join(panel.split())


def test_round_trips_count_the_calls_that_did_io() -> None:
    app = make_app(MemoryStore())
    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/book")
    panel = panel_html(tab.get("/look").get_data(as_text=True))

    rows = store_rows(panel)
    # The default acquire: load the chain, lock its root, load it again.
    assert rows[:6] == ["acquire", "load_chain", "load", "lock", "load_chain", "load"]
    summary = re.search(r"MemoryStore: (\d+) calls, (\d+) round trips", panel)
    assert summary is not None
    calls, round_trips = int(summary.group(1)), int(summary.group(2))
    assert calls == len(rows)
    # acquire and load_chain are composite: every other call did its own I/O.
    assert round_trips == len([r for r in rows if r not in ("acquire", "load_chain", "commit")])
    assert re.search(r"lock wait \d+\.\d\d ms", panel)


def test_redis_store_makes_two_round_trips(request: pytest.FixtureRequest) -> None:
    redis_mod = pytest.importorskip("flask_conversation.stores.redis")
    client = request.getfixturevalue("redis_client")
    app = make_app(redis_mod.RedisStore(client, prefix="toolbar:"))
    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/book")
    panel = panel_html(tab.get("/look").get_data(as_text=True))

    # Lock and load in one call, commit and unlock in another.
    assert store_rows(panel) == ["acquire", "commit"]
    assert "RedisStore: 2 calls, 2 round trips" in panel


def test_request_that_does_not_use_the_conversation() -> None:
    app = make_app(MemoryStore())
    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/book")

    panel = panel_html(tab.get("/plain").get_data(as_text=True))

    assert "did not use the conversation" in panel
    assert "MemoryStore: 0 calls, 0 round trips" in panel


def test_temporary_conversation() -> None:
    app = make_app(SessionStore())
    panel = panel_html(app.test_client().get("/look").get_data(as_text=True))

    assert "<th>id</th><td>None (temporary)</td>" in panel
    assert "<th>long_running</th><td>False</td>" in panel
    assert "SessionStore: 0 calls" in panel


def test_warns_when_drawn_before_the_commit() -> None:
    app = make_app(MemoryStore(), toolbar_first=False)
    tab = t.cast(ConversationClient, app.test_client())
    panel = panel_html(tab.post("/book").get_data(as_text=True))

    assert "initialize DebugToolbarExtension before ConversationScope" in " ".join(panel.split())
    assert "commit" not in store_rows(panel)


def test_calls_outside_a_toolbar_request_are_not_recorded() -> None:
    store = MemoryStore()
    app = make_app(store)
    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/book")  # instruments the store
    with app.app_context():
        assert store.namespaces()  # goes straight through, nothing recorded


def test_package_does_not_need_the_toolbar() -> None:
    code = (
        "import sys, flask_conversation, flask_conversation.cli, flask_conversation.stores;"
        "assert 'flask_debugtoolbar' not in sys.modules, 'imported'"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_panel_template_is_a_file_of_the_package() -> None:
    """The panel's HTML is a template file shipped with the package (as
    package data), and the panel renders it.
    """
    from importlib import resources

    from flask_conversation import toolbar

    path = resources.files("flask_conversation").joinpath(toolbar.TEMPLATE)
    assert path.is_file()
    assert toolbar.panel_template() == path.read_text("utf-8")
    assert "<h4>Store</h4>" in toolbar.panel_template()
