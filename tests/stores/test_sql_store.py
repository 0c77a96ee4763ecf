"""What only SQLAlchemyStore promises, checked on real SQLite, PostgreSQL
and MariaDB: its tables and metadata, text values, namespaces kept apart
however strange, leases that run out, the namespace rows that spare
commits a read, purging in batches, tables created by several processes
at once, and errors while the database is down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import FakeClock

from flask_conversation import BusyConversation
from flask_conversation import ConversationStoreError
from flask_conversation.stores import SQLAlchemyStore
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.sql.statements import Statements
from flask_conversation.stores.sql.tables import build_tables
from flask_conversation.stores.sql.tables import namespace_key
from stores.store_testing import Records
from tests.sql_servers import PostgresServer
from tests.sql_servers import sql_engine
from tests.sql_servers import sql_url_for
from tests.sql_testing import StatementLog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def sql_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(sql_kind: str, request: pytest.FixtureRequest) -> str:
    return sql_url_for(sql_kind, request)


@pytest.fixture
def engine(url: str) -> t.Iterator[sa.engine.Engine]:
    engine = sql_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: sa.engine.Engine, store_clock: FakeClock) -> SQLAlchemyStore:
    return SQLAlchemyStore(engine, clock=store_clock)


def rows(engine: sa.engine.Engine, table: sa.Table) -> list[t.Any]:
    with engine.connect() as conn:
        return list(conn.execute(table.select()).all())


def test_tables_and_metadata(engine: sa.engine.Engine, make: Records) -> None:
    store = SQLAlchemyStore(engine, table_prefix="app_conv_")
    assert sorted(store.metadata.tables) == [
        "app_conv_leases",
        "app_conv_namespaces",
        "app_conv_records",
    ]
    assert store.tables.records.name == "app_conv_records"
    # Nothing is created before the first use (other tests' tables stay).
    before = set(sa.inspect(engine).get_table_names())
    assert not before & set(store.metadata.tables)
    store.save(make("root"))
    assert set(sa.inspect(engine).get_table_names()) - before == set(store.metadata.tables)
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("app_conv_records")}
    assert "app_conv_records_stack" in indexes
    # A second store finds them.
    assert SQLAlchemyStore(engine, table_prefix="app_conv_").load("ns", "root") is not None


def test_tables_in_the_application_metadata(engine: sa.engine.Engine, make: Records) -> None:
    """Defined in the application's metadata, so that its migrations see
    them; the store creates its own tables only.
    """
    metadata = sa.MetaData()
    sa.Table("app_model", metadata, sa.Column("id", sa.Integer, primary_key=True))
    store = SQLAlchemyStore(engine, metadata=metadata)
    assert store.metadata is metadata
    assert sorted(metadata.tables) == [
        "app_model",
        "conversation_leases",
        "conversation_namespaces",
        "conversation_records",
    ]
    store.save(make("root"))
    assert "app_model" not in sa.inspect(engine).get_table_names()


def test_without_creating_tables(engine: sa.engine.Engine, make: Records) -> None:
    store = SQLAlchemyStore(engine, create_tables=False, table_prefix="unmade_")
    with pytest.raises(ConversationStoreError) as info:
        store.save(make("root"))
    assert info.value.code == 503
    # What migrations would do.
    store.metadata.create_all(engine)
    store.save(make("root"))
    assert store.load("ns", "root") == make("root")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="table_prefix"):
        SQLAlchemyStore("sqlite://", table_prefix="x" * 41)
    with pytest.raises(ValueError, match="lock_lease"):
        SQLAlchemyStore("sqlite://", lock_lease=0)
    with pytest.raises(ValueError, match="SQLite, PostgreSQL, MySQL and MariaDB"):
        Statements(build_tables("x_"), "oracle")


def test_values_are_text(store: SQLAlchemyStore, engine: sa.engine.Engine, make: Records) -> None:
    record = make("root", data='{"cart":[1,"é ☃ 🎈"]}', description="Trip 🎈")
    store.save(record)
    (row,) = rows(engine, store.tables.records)
    assert row.data == record.data
    assert row.size == len(record.data.encode())
    assert row.description == "Trip 🎈"
    assert row.expires_at == record.expires_at
    assert store.load("ns", "root") == record


def test_large_data(store: SQLAlchemyStore, make: Records) -> None:
    # Past MySQL's TEXT (64 KB): LONGTEXT there.
    record = make("root", data='"' + "é" * 300_000 + '"')
    store.save(record)
    assert store.load("ns", "root") == record


NAMESPACES = [
    "plain",
    "Plain",
    "PLAIN",
    "plain ",
    " plain",
    "plain\t",
    "plain\x00",
    "plain\n",
    "~plain",
    "~" + "0" * 64,
    "",
    " ",
    "ünïcødé",
    "emoji 🎈",
    "x" * 128,
    "x" * 129,
    "y" * 1000,
    "telegram:42",
    "%",
]


def test_namespaces_never_mix(store: SQLAlchemyStore, make: Records) -> None:
    """Case, trailing spaces, NUL and length: every database keeps these
    apart (MySQL's default collation would not), and the CLI sees them as
    they are.
    """
    for i, ns in enumerate(NAMESPACES):
        store.save(make("same", namespace=ns, data=str(i)))
        acquired = store.acquire(ns, "same", 0)
        assert acquired is not None
        store.commit(
            ns,
            CommitBatch(
                saves=[make("same", namespace=ns, data=str(i))],
                unlock={"same": acquired.token},
                keep_roots={"same"},
            ),
        )
    for i, ns in enumerate(NAMESPACES):
        record = store.load(ns, "same")
        assert record is not None and record.data == str(i), repr(ns)
        assert [r.id for r in store.list_namespace(ns)] == ["same"]
    assert store.namespaces() == {ns: 1 for ns in NAMESPACES}
    # Readable where it can be, a digest where it must.
    assert namespace_key("telegram:42") == "telegram:42"
    assert {len(namespace_key(ns)) for ns in ("x" * 129, "plain\x00", "~plain")} == {65}


def test_a_crashed_holder_loses_its_lock_after_the_lease(
    engine: sa.engine.Engine, store_clock: FakeClock, make: Records
) -> None:
    store = SQLAlchemyStore(engine, clock=store_clock, lock_lease=0.3)
    store.save(make("root", data="1"))
    crashed = store.acquire("ns", "root", 0)
    assert crashed is not None
    with pytest.raises(BusyConversation):
        store.acquire("ns", "root", 0)
    # Never released: the next request gets the stack once the lease ran out.
    successor = store.acquire("ns", "root", 10)
    assert successor is not None
    assert successor.token != crashed.token
    # The late holder can neither release the successor's lease nor write.
    store.unlock("ns", "root", crashed.token)
    with pytest.raises(ConversationStoreError, match="lease"):
        store.commit(
            "ns",
            CommitBatch(saves=[make("root", data="2")], unlock={"root": crashed.token}),
        )
    record = store.load("ns", "root")
    assert record is not None and record.data == "1"
    with pytest.raises(BusyConversation):
        store.acquire("ns", "root", 0)
    store.commit(
        "ns", CommitBatch(saves=[make("root", data="3")], unlock={"root": successor.token})
    )
    record = store.load("ns", "root")
    assert record is not None and record.data == "3"


def test_a_lease_that_ran_out_untaken_still_writes_nothing(
    engine: sa.engine.Engine, make: Records
) -> None:
    store = SQLAlchemyStore(engine, clock=make.clock, lock_lease=0.2)
    store.save(make("root", data="1"))
    store.save(make("other", data="1"))
    late = store.acquire("ns", "root", 0)
    held = store.acquire("ns", "other", 0)
    assert late is not None and held is not None
    time.sleep(0.3)
    fresh = store.acquire("ns", "other", 0)  # "other" ran out too; taken again
    assert fresh is not None
    with pytest.raises(ConversationStoreError, match="'root'"):
        store.commit("ns", CommitBatch(saves=[make("root", data="2")], unlock={"root": late.token}))
    assert store.load("ns", "root").data == "1"  # type: ignore[union-attr]
    # The lease of "root" is free for the next request.
    assert store.lock("ns", "root", 0) is not None


def namespace_row(store: SQLAlchemyStore, ns: str) -> t.Any:
    namespaces = store.tables.namespaces
    with store.engine.connect() as conn:
        query = namespaces.select().where(namespaces.c.namespace == namespace_key(ns))
        return conn.execute(query).first()


def test_the_namespace_row(store: SQLAlchemyStore, make: Records, store_clock: FakeClock) -> None:
    """It counts the namespace's records and bounds their expiry from
    below, through saves, commits and deletes, and is gone with the last
    record.
    """
    store.save(make("a", timeout=100))
    store.save(make("b", timeout=50))
    row = namespace_row(store, "ns")
    assert (row.records, row.earliest) == (2, store_clock() + 50)
    store.commit("ns", CommitBatch(saves=[make("c", timeout=10)], keep_roots={"c"}))
    row = namespace_row(store, "ns")
    assert (row.records, row.earliest) == (3, store_clock() + 10)
    store_clock.advance(20)
    # Something expired: the commit reads the namespace and counts it
    # exactly; it removed another stack, which a request may hold, so the
    # next commit reads the namespace too.
    assert store.commit("ns", CommitBatch(saves=[make("a")], keep_roots={"a"})) == [
        ("c", "expired")
    ]
    row = namespace_row(store, "ns")
    assert (row.records, row.earliest) == (2, 0.0)
    assert store.commit("ns", CommitBatch(saves=[make("a")], keep_roots={"a"})) == []
    row = namespace_row(store, "ns")
    assert (row.records, row.earliest) == (2, store_clock() + 30)
    # Nothing removed, nothing to read: the shortcut.
    with StatementLog(store.engine) as log:
        store.commit("ns", CommitBatch(saves=[make("a")], keep_roots={"a"}))
        assert not [s for s in log.take()[1] if s.startswith("SELECT")]
    store.delete("ns", "a")
    store.delete("ns", "missing")
    assert (namespace_row(store, "ns").records, namespace_row(store, "ns").earliest) == (1, 0.0)
    store.commit("ns", CommitBatch(deletes={"b": "ended"}))
    assert namespace_row(store, "ns") is None


@pytest.mark.parametrize("removal", ["cleared", "evicted", "expired"])
def test_a_stack_removed_while_held_is_not_written_back(
    store: SQLAlchemyStore, make: Records, store_clock: FakeClock, removal: str
) -> None:
    """Another request removes a stack that this one holds (``end_all()``,
    an eviction, a commit that finds it expired): this request's commit,
    which would otherwise take the shortcut, writes nothing of it back.
    """
    store.save(make("held", timeout=10 if removal == "expired" else 60))
    store.save(make("other"))
    acquired = store.acquire("ns", "held", 0)
    assert acquired is not None
    if removal == "expired":
        store_clock.advance(10)
    batch = CommitBatch(
        saves=[make("new", namespace="ns")],
        max_count=1 if removal == "evicted" else 32,
        keep_roots={"new"},
        clear=removal == "cleared",
    )
    destroyed = store.commit("ns", batch)
    assert ("held", removal) in destroyed
    store.commit(
        "ns",
        CommitBatch(
            saves=[make("held", data='{"n":2}')],
            unlock={"held": acquired.token},
            keep_roots={"held"},
            held={"held"},
        ),
    )
    assert store.load("ns", "held") is None


def test_purge_in_batches(engine: sa.engine.Engine, store_clock: FakeClock, make: Records) -> None:
    store = SQLAlchemyStore(engine, clock=store_clock, lock_lease=0.1)
    store.purge_batch = 3
    for i in range(8):
        store.save(make("old", namespace=f"ns{i}", timeout=10))
        if i % 2:
            store.save(make("new", namespace=f"ns{i}", timeout=100))
    assert store.lock("ns0", "crashed", 0) is not None  # never released
    assert store.lock("ns1", "running", 0) is not None
    time.sleep(0.15)
    store.lock_lease = 60
    assert store.lock("ns1", "running", 0) is not None
    store_clock.advance(10)
    with StatementLog(engine) as log:
        assert store.purge() == 8
        transactions, _ = log.take()
    # At most purge_batch namespaces per transaction, and the leases.
    assert transactions >= 8 / 3 + 1
    assert store.namespaces() == {f"ns{i}": 1 for i in range(1, 8, 2)}
    assert [row.root_id for row in rows(engine, store.tables.leases)] == ["running"]
    assert len(rows(engine, store.tables.namespaces)) == 4
    assert store.purge() == 0
    assert namespace_row(store, "ns1").earliest == store_clock() + 90


def test_purge_leaves_a_held_stack_alone(store: SQLAlchemyStore, make: Records) -> None:
    """A conversation never expires while a request holds it."""
    store.save(make("held", timeout=10))
    acquired = store.acquire("ns", "held", 0)
    assert acquired is not None
    make.clock.advance(10)
    assert store.purge() == 0
    store.unlock("ns", "held", acquired.token)
    assert store.purge() == 1


CREATE = """
import sys, time
from pathlib import Path
from flask_conversation.stores import SQLAlchemyStore
from flask_conversation.stores.records import ConversationRecord

url, meeting, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = SQLAlchemyStore(url)
(meeting / name).touch()
while not (meeting / "go").exists():
    time.sleep(0.001)
now = time.time()
store.save(ConversationRecord(name, "ns", None, name, 0, "{}", None, 600.0, now, now))
"""


@pytest.mark.parametrize("sql_kind", ["sqlite", "postgres"])
def test_tables_created_by_several_processes_at_once(url: str, tmp_path: Path) -> None:
    """Processes that start together (gunicorn's workers) each find the
    tables missing at their first request and create them.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    names = [f"p{i}" for i in range(4)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CREATE), url, str(tmp_path), name],
            env=env,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / name).exists() for name in names):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / "go").touch()
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    store = SQLAlchemyStore(url)
    try:
        assert sorted(r.id for r in store.list_namespace("ns")) == names
    finally:
        store.engine.dispose()


# -- outage ----------------------------------------------------------------------------


def test_store_errors_while_the_database_is_down(tmp_path: Path) -> None:
    with PostgresServer() as server:
        engine = sa.create_engine(server.url, connect_args={"connect_timeout": 2})
        store = SQLAlchemyStore(engine)
        records = Records(store.clock)
        try:
            saved = records("root")
            store.save(saved)
            acquired = store.acquire("ns", "root", 0)
            assert acquired is not None
            server.stop()
            calls: list[t.Callable[[], t.Any]] = [
                lambda: store.load("ns", "root"),
                lambda: store.save(records("other")),
                lambda: store.delete("ns", "root"),
                lambda: store.list_namespace("ns"),
                lambda: store.lock("ns", "x", 0),
                lambda: store.unlock("ns", "root", acquired.token),
                lambda: store.acquire("ns", "root", 0),
                lambda: store.claim("ns", "new", 0),
                lambda: store.load_chain("ns", "root"),
                lambda: store.commit(
                    "ns", CommitBatch(saves=[records("root")], unlock={"root": acquired.token})
                ),
                lambda: store.namespaces(),
                lambda: store.purge(),
            ]
            for call in calls:
                with pytest.raises(ConversationStoreError) as info:
                    call()
                assert info.value.code == 503
                assert "SQL database" in str(info.value)
            server.start()
            # The data survived the restart; the lease too.
            assert store.load("ns", "root") == saved
            store.commit(
                "ns", CommitBatch(saves=[records("root")], unlock={"root": acquired.token})
            )
            assert store.acquire("ns", "root", 0) is not None
        finally:
            engine.dispose()
