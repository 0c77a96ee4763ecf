"""Short transactions on the store's engine: each takes a pooled
connection, runs one piece of work and gives the connection back, so that
nothing is held while a view runs.

Each database gets what the store's statements need:

-   **SQLite**: a writing transaction starts with ``BEGIN IMMEDIATE``, so
    that it takes the database's write lock at once, waiting for it up to
    the driver's busy timeout, instead of failing when a read must turn
    into a write while another process writes.
-   **MySQL and MariaDB**: ``READ COMMITTED``, in which reads inside a
    write take no locks and see what other transactions committed before
    them. Their default, ``REPEATABLE READ``, is changed for the store's
    own transactions only (``SET TRANSACTION``), unless the engine already
    runs with it.
-   **PostgreSQL**: ``READ COMMITTED`` too, its default; an engine set to
    a stricter level gets ``SET TRANSACTION`` like MySQL.

A connection that the database closed meanwhile (it restarted) is dropped
by the pool and the work runs once more on a new one, so that the first
request after an outage does not fail. Every other error of the driver or
the pool becomes :exc:`~flask_conversation.ConversationStoreError`.
"""

from __future__ import annotations

import threading
import typing as t

import sqlalchemy as sa

from ...errors import ConversationStoreError

T = t.TypeVar("T")

_READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"


def store_error(e: BaseException) -> ConversationStoreError:
    """The :exc:`~flask_conversation.ConversationStoreError` for a database
    error, with its cause in the message (for the logs).

    :param e: the error SQLAlchemy raised.
    """
    cause = getattr(e, "orig", None) or e
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return ConversationStoreError(f"SQL database: {type(cause).__name__}: {text}")


def engine_for(engine: sa.engine.Engine | str | sa.engine.URL) -> sa.engine.Engine:
    """The engine the store runs on: ``engine`` itself, or one created for
    a database URL with what the store's transactions need of it.

    :param engine: an engine, or a database URL.
    """
    if isinstance(engine, sa.engine.Engine):
        return engine
    url = sa.engine.make_url(engine)
    options: dict[str, t.Any] = {}
    backend = url.get_backend_name()
    if backend == "sqlite":
        # Writers from other processes wait for each other this long.
        options["connect_args"] = {"timeout": 30}
    elif backend in ("mysql", "mariadb"):
        options["isolation_level"] = "READ COMMITTED"
    return sa.create_engine(url, **options)


class Database:
    """The store's engine, and the transactions it runs on it.

    :param engine: the engine; shared with the application if it gave it.
    """

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Decided on first use: whether each transaction must choose its
        # isolation level.
        self._prelude: str | None = None
        self._checked = False
        self._mutex = threading.Lock()

    def _check(self) -> None:
        if self.dialect != "sqlite":
            # On a connection of its own: asking may open a transaction.
            with self.engine.connect() as conn:
                level = str(conn.get_isolation_level()).upper()
            if level not in ("READ COMMITTED", "AUTOCOMMIT"):
                self._prelude = _READ_COMMITTED
        self._checked = True

    def _begin(self, conn: sa.Connection, write: bool) -> None:
        conn.begin()
        if self.dialect == "sqlite":
            if write:
                dbapi = conn.connection.dbapi_connection
                # An engine whose own begin hook issued BEGIN keeps it.
                if dbapi is not None and not getattr(dbapi, "in_transaction", False):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif self._prelude is not None:
            conn.exec_driver_sql(self._prelude)

    def run(self, work: t.Callable[[sa.Connection], T], write: bool = True) -> T:
        """Run ``work`` in one transaction and commit it.

        :param work: called with the connection; its result is returned.
            It may run twice (see the module's text), so it must not change
            anything outside the transaction.
        :param write: whether the transaction writes (SQLite locks the
            database for it at once).
        :raise ConversationStoreError: the database or the pool failed.
        """
        for attempt in (1, 2):
            try:
                if not self._checked:
                    with self._mutex:
                        if not self._checked:
                            self._check()
                with self.engine.connect() as conn:
                    self._begin(conn, write)
                    result = work(conn)
                    conn.commit()
                    return result
            except sa.exc.DBAPIError as e:
                if attempt == 1 and e.connection_invalidated:
                    continue
                raise store_error(e) from e
            except sa.exc.SQLAlchemyError as e:
                if isinstance(e, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):
                    raise store_error(e) from e
                raise
        raise AssertionError("unreachable")  # pragma: no cover
