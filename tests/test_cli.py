"""``flask conversation list / show / purge`` through Flask's CLI runner,
against MemoryStore, a real Redis, SQLAlchemyStore on SQLite and
PostgreSQL, and the session store that cannot list.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from click.testing import Result
from conftest import conversation_app
from conftest import FakeClock
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationScope
from flask_conversation.cli import conversation_cli
from flask_conversation.stores import ConversationStore
from flask_conversation.stores import MemoryStore
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient


def make_app(store: ConversationStore) -> Flask:
    app = conversation_app(store)

    @app.post("/begin")
    def begin() -> dict[str, t.Any]:
        conversation.begin(description="Booking a room")
        conversation["hotel"] = "Ritz"
        conversation["nights"] = (1, 2)
        return {"cid": conversation.id}

    @app.post("/nest")
    def nest() -> dict[str, t.Any]:
        conversation.begin(nested=True)
        conversation["card"] = "visa"
        return {"cid": conversation.id}

    return app


def begin_first(app: Flask, tab: ConversationClient) -> tuple[str, str]:
    """Begin the first conversation of ``tab``'s browser; return the
    namespace the store lists for it, and the conversation's id.
    """
    store = ConversationScope.get_store(app)
    known = set(store.namespaces())
    root = tab.post("/begin").json["cid"]  # type: ignore[index]
    (ns,) = set(store.namespaces()) - known
    return ns, root


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(conversation_cli, list(args))


def fill(app: Flask) -> tuple[str, str, str]:
    """One user with a stack of two (root + child); returns its namespace
    and the two ids.
    """
    tab = t.cast(ConversationClient, app.test_client())
    ns, root = begin_first(app, tab)
    child = tab.post("/nest").json["cid"]  # type: ignore[index]
    return ns, root, child


# -- a real Redis -------------------------------------------------------------


def sql_store(kind: str, request: pytest.FixtureRequest, clock: FakeClock) -> ConversationStore:
    from flask_conversation.stores import SQLAlchemyStore
    from tests.sql_servers import sql_engine
    from tests.sql_servers import sql_url_for

    engine = sql_engine(sql_url_for(kind, request))
    request.addfinalizer(engine.dispose)
    return SQLAlchemyStore(engine, clock=clock)  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "redis", "sql-sqlite", "sql-postgres"])
def listing_store(
    request: pytest.FixtureRequest, clock: FakeClock
) -> t.Iterator[ConversationStore]:
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    if request.param.startswith("sql-"):
        yield sql_store(request.param[4:], request, clock)
        return
    redis_mod = pytest.importorskip("flask_conversation.stores.redis")
    # The fixture empties the server before each test and closes the client.
    client = request.getfixturevalue("redis_client")
    yield redis_mod.RedisStore(client, prefix="cli:", clock=clock)


@pytest.fixture(params=["memory", "sql-sqlite", "sql-postgres"])
def expiring_store(request: pytest.FixtureRequest, clock: FakeClock) -> ConversationStore:
    """A store that keeps expired records until a commit or a purge."""
    if request.param == "memory":
        return MemoryStore(clock=clock)
    return sql_store(request.param[4:], request, clock)


# -- list -----------------------------------------------------------------------


def test_list_namespaces_with_counts(listing_store: ConversationStore) -> None:
    app = make_app(listing_store)
    ns1, _, _ = fill(app)
    ns2, _ = begin_first(app, t.cast(ConversationClient, app.test_client()))

    result = run(app, "list")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAMESPACE", "CONVERSATIONS"]
    # Most conversations first.
    assert [line.split() for line in lines[1:]] == [[ns1, "2"], [ns2, "1"]]


def test_list_empty_store(listing_store: ConversationStore) -> None:
    result = run(make_app(listing_store), "list")
    assert result.exit_code == 0
    assert result.output == "No conversations.\n"


def test_list_one_namespace(listing_store: ConversationStore, clock: FakeClock) -> None:
    app = make_app(listing_store)
    ns, root, child = fill(app)
    clock.advance(90)

    result = run(app, "list", "--namespace", ns)

    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == [
        "ID",
        "PARENT",
        "DEPTH",
        "AGE",
        "IDLE",
        "EXPIRES",
        "IN",
        "SIZE",
        "DESCRIPTION",
    ]
    by_id = {row.split()[0]: row.split() for row in rows}
    # Used together, so root first.
    assert list(by_id) == [root, child]
    # id, parent, depth, age, idle, expires in, size, description...
    assert by_id[root][1:7] == ["-", "0", "1m30s", "1m30s", "28m30s", by_id[root][6]]
    assert by_id[root][7:] == ["Booking", "a", "room"]
    assert by_id[child][1:3] == [root, "1"]
    size = len(listing_store.load(ns, child).data.encode())  # type: ignore[union-attr]
    assert by_id[child][6] == str(size)


def test_list_marks_expired_records(expiring_store: ConversationStore, clock: FakeClock) -> None:
    # Only a store without native expiry still holds an expired record.
    app = make_app(expiring_store)
    ns, root, _ = fill(app)
    clock.advance(31 * 60)

    result = run(app, "list", "-n", ns)

    assert result.exit_code == 0
    assert all(row.split()[5] == "expired" for row in result.output.splitlines()[1:])


def test_list_unknown_namespace(listing_store: ConversationStore) -> None:
    result = run(make_app(listing_store), "list", "--namespace", "nobody")
    assert result.exit_code == 0
    assert result.output == "No conversations in namespace 'nobody'.\n"


# -- show -----------------------------------------------------------------------


def test_show_prints_the_data_as_json(listing_store: ConversationStore) -> None:
    app = make_app(listing_store)
    ns, root, child = fill(app)

    result = run(app, "show", ns, root)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"hotel": "Ritz", "nights": [1, 2]}
    assert result.stdout.startswith("{\n  ")  # pretty, not compact

    # A child's own data only: inherited keys live in the parent's record.
    result = run(app, "show", ns, child)
    assert json.loads(result.stdout) == {"card": "visa"}


def test_ids_that_look_like_options(clock: FakeClock) -> None:
    # token_urlsafe() may begin a namespace or an id with "-".
    store = MemoryStore(clock=clock)
    app = make_app(store)
    ns, root, _ = fill(app)
    record = store.load(ns, root)
    assert record is not None
    for name in ("-Gx1", "--dash"):
        store.save(dataclasses.replace(record, namespace=name, id=name))

        result = run(app, "show", name, name)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["hotel"] == "Ritz"

        result = run(app, "list", "--namespace", name)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[1].split()[0] == name


def test_show_unknown_conversation(listing_store: ConversationStore) -> None:
    result = run(make_app(listing_store), "show", "ns", "nope")
    assert result.exit_code == 1
    assert "No conversation 'nope' in namespace 'ns'." in result.stderr
    assert result.stdout == ""


def test_show_expired_warns_on_stderr(expiring_store: ConversationStore, clock: FakeClock) -> None:
    app = make_app(expiring_store)
    ns, root, _ = fill(app)
    clock.advance(31 * 60)

    result = run(app, "show", ns, root)

    assert result.exit_code == 0
    assert "has expired" in result.stderr
    assert json.loads(result.stdout)["hotel"] == "Ritz"


# -- purge ------------------------------------------------------------------------


def test_purge_removes_expired_records(expiring_store: ConversationStore, clock: FakeClock) -> None:
    store = expiring_store
    name = type(store).__name__
    app = make_app(store)
    ns, _, _ = fill(app)
    clock.advance(10 * 60)
    tab = t.cast(ConversationClient, app.test_client())
    tab.post("/begin")
    clock.advance(25 * 60)  # the first stack is 35 minutes idle, the second 25

    result = run(app, "purge")

    assert result.exit_code == 0, result.output
    assert result.output == f"Removed 2 expired conversations from {name}.\n"
    assert ns not in store.namespaces()
    assert sum(store.namespaces().values()) == 1
    assert store.list_namespace(ns) == []
    # Nothing left to remove.
    assert run(app, "purge").output == f"Removed 0 expired conversations from {name}.\n"


def test_purge_redis_has_nothing_to_do(clock: FakeClock, request: pytest.FixtureRequest) -> None:
    redis_mod = pytest.importorskip("flask_conversation.stores.redis")
    client = request.getfixturevalue("redis_client")
    app = make_app(redis_mod.RedisStore(client, prefix="purge:", clock=clock))
    fill(app)
    result = run(app, "purge")

    assert result.exit_code == 0
    assert result.output == "RedisStore expires conversations by itself: nothing to purge.\n"


# -- stores that cannot list ---------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["list"], ["list", "--namespace", "ns"], ["show", "ns", "cid"], ["purge"]]
)
def test_session_store_explains_and_fails(args: list[str]) -> None:
    app = make_app(SessionStore())
    app.test_client().post("/begin")

    result = run(app, *args)

    assert result.exit_code == 1
    assert "SessionStore keeps each user's conversations inside that user's session" in (
        result.stderr
    )
    assert 'CONVERSATION_STORE = "redis"' in result.stderr


class OneNamespaceStore(MemoryStore):
    """A custom store that does not implement the optional namespaces()."""

    def namespaces(self) -> dict[str, int]:
        return ConversationStore.namespaces(self)


def test_custom_store_without_namespaces() -> None:
    app = make_app(OneNamespaceStore())
    for args in (["list"], ["purge"]):
        result = run(app, *args)
        assert result.exit_code == 1
        assert "OneNamespaceStore cannot list its namespaces." in result.stderr


def test_app_without_the_extension() -> None:
    app = Flask(__name__)
    result = app.test_cli_runner().invoke(conversation_cli, ["list"])
    assert result.exit_code == 1
    assert "ConversationScope is not initialized" in result.stderr


# -- the real ``flask`` command ----------------------------------------------------------

APP_MODULE = """
from flask import Flask
from flask_conversation import ConversationScope
from flask_conversation.stores import MemoryStore

app = Flask(__name__)
ConversationScope(app, store=MemoryStore())
"""


def test_flask_command_finds_the_group(tmp_path: Path) -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="flask.commands")}
    if "conversation" not in names:
        pytest.skip("the package is not installed: no flask.commands entry point")
    (tmp_path / "cliapp.py").write_text(APP_MODULE)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)])}
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "cliapp", "conversation", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "No conversations.\n"
