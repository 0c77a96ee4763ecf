"""A pytest plugin that runs throwaway database servers for the SQL store:
PostgreSQL from ``initdb`` and ``postgres`` in ``pg_config --bindir``, and
MariaDB from ``mariadb-install-db`` and ``mariadbd``, each on a free
loopback port with its data in a temporary directory, one of each per test
session, stopped by PID at the end. SQLite needs no server.

Fixtures:

-   ``postgres_server`` / ``mariadb_server``: the session's servers.
-   ``postgres_url`` / ``mariadb_url``: a SQLAlchemy URL of the session's
    server, every table dropped before the test.
-   ``sqlite_url``: a SQLAlchemy URL of a new file database of the test.
-   ``sql_url``: one of the three, by the ``sql_kind`` parameter
    (``"sqlite"``, ``"postgres"`` or ``"mariadb"``).

:class:`PostgresServer` and :class:`MariaDBServer` are used without pytest
too (the fault tests start servers of their own to stop them).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.redis_servers import free_port
from tests.redis_servers import stop_process


def _pg_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise RuntimeError(
            "pg_config not found: install PostgreSQL (apt-get install -y postgresql)."
        )
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _run_as() -> dict[str, t.Any]:
    """Popen arguments that drop root to the ``postgres`` user, since
    PostgreSQL refuses to run as root. The process started is the server
    itself, so that its PID is the one to signal.
    """
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "Running as root needs the 'postgres' user: install PostgreSQL"
            " (apt-get install -y postgresql)."
        ) from None
    return {"user": user.pw_uid, "group": user.pw_gid}


def _wait_until(ready: t.Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}.")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within 30 seconds.")
        time.sleep(0.05)


def _answers(url: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


class PostgresServer:
    """One PostgreSQL server (``fsync=off``), listening on 127.0.0.1 only,
    its socket and data in a temporary directory owned by the user it runs
    as. It can be stopped (fast or immediate shutdown) and started again
    on the same port and data. As a context manager it is started and
    stopped, and its directory removed.

    :param durable: write every commit to the operating system before it
        is acknowledged (``synchronous_commit``), so that after a crash of
        the server (not of the machine) a restart shows exactly what was
        acknowledged.
    """

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.port = free_port()
        self.bindir = _pg_bindir()
        self.as_user = _run_as()
        self.directory = Path(tempfile.mkdtemp(prefix="conversation-pg-"))
        if self.as_user:
            os.chown(self.directory, self.as_user["user"], self.as_user["group"])
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Create the cluster (trust authentication, no fsync)."""
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
            **self.as_user,
        )

    def start(self) -> None:
        """Start it (again) and wait until it answers."""
        if not self.data.exists():
            self.init()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-k",
                    str(self.directory),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    f"synchronous_commit={'on' if self.durable else 'off'}",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                **self.as_user,
            )
        _wait_until(lambda: _answers(self.url), self.process, f"postgres (see {self.log})")

    def stop(self, immediate: bool = False) -> None:
        """Stop it, if it runs: a fast shutdown (``SIGINT``: open
        connections are cut, the data is kept) or an immediate one
        (``SIGQUIT``: no checkpoint, like a crash).
        """
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, signal.SIGQUIT if immediate else signal.SIGINT)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class MariaDBServer:
    """One MariaDB server, listening on 127.0.0.1 only, with grant tables
    skipped (any user may connect as root, without a password) and a
    database ``conversation_test``. Defaults stay the server's own (the
    ``latin1`` character set), so that tables must ask for what they need.
    As a context manager it is started and stopped, and its directory
    removed.
    """

    database = "conversation_test"

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="conversation-mariadb-"))
        self.data = self.directory / "data"
        self.log = self.directory / "mariadb.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.daemon = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
        self.installer = shutil.which("mariadb-install-db")
        if self.daemon is None or self.installer is None:
            raise RuntimeError(
                "mariadbd or mariadb-install-db not found: install MariaDB"
                " (apt-get install -y mariadb-server)."
            )

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{self.database}?charset=utf8mb4"

    def _root(self) -> bool:
        return os.geteuid() == 0

    def start(self) -> None:
        """Start it (installing its system tables the first time) and
        wait until it answers.
        """
        assert self.daemon is not None and self.installer is not None
        user = ["--user=root"] if self._root() else []
        if not self.data.exists():
            subprocess.run(
                [
                    self.installer,
                    "--no-defaults",
                    f"--datadir={self.data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *user,
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self.process = subprocess.Popen(
            [
                self.daemon,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--socket={self.directory / 'mariadb.sock'}",
                f"--pid-file={self.directory / 'mariadb.pid'}",
                f"--log-error={self.log}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=200",
                *user,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = self.url.rsplit("/", 1)[0] + "/?charset=utf8mb4"
        _wait_until(lambda: _answers(server), self.process, f"mariadbd (see {self.log})")
        engine = sa.create_engine(server, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {self.database}"))
        engine.dispose()

    def stop(self) -> None:
        """Stop it with ``SIGTERM``, if it runs."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout=30)

    def __enter__(self) -> MariaDBServer:
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def empty_tables(url: str) -> None:
    """Delete every row of every table of the database at ``url``
    (quicker than dropping the tables: the next store finds them).

    :param url: a SQLAlchemy URL.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            names = sa.inspect(conn).get_table_names()
            if names and engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"TRUNCATE {', '.join(names)}"))
            else:
                for name in names:
                    conn.execute(sa.text(f"DELETE FROM {name}"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> t.Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> t.Iterator[MariaDBServer]:
    with MariaDBServer() as server:
        yield server


@pytest.fixture(scope="module")
def spare_postgres() -> t.Iterator[PostgresServer]:
    """A PostgreSQL server of the test module's own, to stop and start."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's PostgreSQL server, every table emptied."""
    empty_tables(postgres_server.url)
    return postgres_server.url


@pytest.fixture
def mariadb_url(mariadb_server: MariaDBServer) -> str:
    """The session's MariaDB server, every table emptied."""
    empty_tables(mariadb_server.url)
    return mariadb_server.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite file database."""
    return f"sqlite:///{tmp_path / 'conversations.db'}"


def sql_engine(url: str, **options: t.Any) -> sa.engine.Engine:
    """An engine for a test database: SQLite does not wait for the disk
    (``synchronous=OFF``), which the tests do not need.

    :param url: a SQLAlchemy URL.
    :param options: passed to :func:`sqlalchemy.create_engine`.
    """
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def no_sync(dbapi_connection: t.Any, record: t.Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    return engine


#: The URL fixture of each kind of SQL database.
SQL_URL_FIXTURES = {"sqlite": "sqlite_url", "postgres": "postgres_url", "mariadb": "mariadb_url"}


def sql_url_for(kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database of ``kind``.

    :param kind: ``"sqlite"``, ``"postgres"`` or ``"mariadb"``.
    :param request: the test's request, to reach the fixtures.
    """
    return str(request.getfixturevalue(SQL_URL_FIXTURES[kind]))
