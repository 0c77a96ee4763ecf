"""The store itself: :class:`SQLAlchemyStore`."""

from __future__ import annotations

import threading
import typing as t

import sqlalchemy as sa

from ...errors import BusyConversation
from ...errors import ConversationStoreError
from ...serialization import Serializer
from ..base import ConversationStore
from ..base import system_clock
from ..locks import lock_retries
from ..records import Acquired
from ..records import CommitBatch
from ..records import ConversationRecord
from ..records import Destroyed
from . import commit
from .database import Database
from .database import engine_for
from .database import store_error
from .leases import lease_params
from .leases import new_token
from .leases import real_time
from .purge import purge_leases
from .purge import purge_namespaces
from .rows import listing
from .rows import live_chain
from .rows import to_record
from .statements import Statements
from .tables import build_tables
from .tables import create_tables
from .tables import namespace_from_row
from .tables import namespace_key
from .tables import namespace_name

#: The longest table prefix: the longest name built on it (an index) must
#: stay within the 63 characters PostgreSQL allows.
MAX_PREFIX = 40


class _Busy:
    """Another request holds the stack's lease."""


class _Dead:
    """The lease was taken on a stack whose chain had expired meanwhile."""


_BUSY, _DEAD = _Busy(), _Dead()
T = t.TypeVar("T")


class SQLAlchemyStore(ConversationStore):
    """Keeps conversations in a SQL database through SQLAlchemy Core, shared
    by every worker process and machine of an application: SQLite (a file
    database), PostgreSQL, MySQL and MariaDB.

    -   **One row per conversation** in ``<prefix>records``, the data as
        text from the store's serializer (never pickled), with indexes that
        keep a request's cost the same however many conversations a
        namespace holds.
    -   **A lease per stack** in ``<prefix>leases``: the owner's random
        token and when it runs out (``lock_lease`` seconds), taken and
        released with single statements and checked inside the commit, so
        that a request whose lease ran out writes nothing and fails with
        :exc:`~flask_conversation.ConversationStoreError` (503). No
        database lock or connection is held while a view runs, and no
        connection- or session-scoped lock is used (they leak behind
        poolers such as PgBouncer).
    -   **Two short transactions** for a request that uses a conversation:
        one takes the lease and loads the stack (:meth:`acquire`), one
        checks and releases the lease and applies the changes
        (:meth:`commit`). A request that does not use a conversation runs
        no statement. While the namespace holds at most
        :attr:`listing_limit` conversations, the first transaction also
        reads their metadata, so that a page listing them makes no third.
    -   **Expiry by timeout**: expired conversations are removed, and
        reported, by the next commit in their namespace; :meth:`purge`
        (``flask conversation purge``, e.g. from cron) removes the others in
        bounded batches.
    -   **Outages**: every database error becomes
        :exc:`~flask_conversation.ConversationStoreError` (503 with
        ``Retry-After``); each write is one transaction, so nothing is ever
        half written, and the pool replaces dead connections when the
        database is back.

    The tables are created at first use (``create_tables=True``), or by the
    application's migrations from :attr:`metadata`.

    :param engine: a :class:`sqlalchemy.engine.Engine`, which the store
        shares with the application, or a database URL, for which it
        creates one.
    :param table_prefix: put before each table's name.
    :param create_tables: create the missing tables at first use.
    :param metadata: the :class:`sqlalchemy.MetaData` to define the tables
        in, e.g. the application's own (Flask-SQLAlchemy's ``db.metadata``),
        so that its migrations include them; a new one by default.
    :param serializer: see :class:`~flask_conversation.stores.ConversationStore`.
    :param clock: see :class:`~flask_conversation.stores.ConversationStore`.
    :param lock_lease: seconds after which the lease of a request that never
        released it runs out. Keep it above the longest request.

    .. versionadded:: 0.1
    """

    #: While a namespace holds at most this many conversations, taking a
    #: lease also reads their metadata (see :attr:`~.records.Acquired.listing`).
    listing_limit = 32

    #: How many namespaces one transaction of :meth:`purge` cleans up.
    purge_batch = 100

    def __init__(
        self,
        engine: sa.engine.Engine | str | sa.engine.URL,
        *,
        table_prefix: str = "conversation_",
        create_tables: bool = True,
        metadata: sa.MetaData | None = None,
        serializer: Serializer | None = None,
        clock: t.Callable[[], float] = system_clock,
        lock_lease: float = 30.0,
    ) -> None:
        super().__init__(serializer, clock)
        if len(table_prefix) > MAX_PREFIX:
            raise ValueError(f"table_prefix must be at most {MAX_PREFIX} characters long.")
        if lock_lease <= 0:
            raise ValueError("lock_lease must be positive.")
        self.engine = engine_for(engine)
        self.table_prefix = table_prefix
        self.create_tables = create_tables
        self.lock_lease = lock_lease
        self.tables = build_tables(table_prefix, metadata)
        #: The :class:`sqlalchemy.MetaData` holding the store's tables, for
        #: migrations (e.g. Alembic's ``target_metadata``).
        self.metadata = self.tables.metadata
        self._sql = Statements(self.tables, self.engine.dialect.name)
        self._db = Database(self.engine)
        self._ready = not create_tables
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.engine.url!r} prefix={self.table_prefix!r}>"

    # -- plumbing --------------------------------------------------------------

    def _run(self, work: t.Callable[[sa.Connection], T], write: bool = True) -> T:
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    try:
                        create_tables(self.engine, self.metadata, self.tables.all)
                    except sa.exc.DBAPIError as e:
                        raise store_error(e) from e
                    self._ready = True
        return self._db.run(work, write)

    # -- primitives ------------------------------------------------------------

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        """One ``SELECT``.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        params = {"ns": namespace_key(namespace), "cid": cid}
        row = self._run(lambda conn: conn.execute(self._sql.load, params).first(), write=False)
        return None if row is None else to_record(row, namespace)

    def save(self, record: ConversationRecord) -> None:
        """Write the record in one transaction, keeping its namespace's
        count and earliest expiry.

        :param record: the record to write.
        """
        key = namespace_key(record.namespace)
        hold = {
            "namespace": key,
            "name": namespace_name(record.namespace),
            "records": 0,
            "earliest": record.expires_at,
        }

        def work(conn: sa.Connection) -> None:
            conn.execute(self._sql.hold, hold)
            added = commit.write(conn, self._sql, key, [record])
            conn.execute(self._sql.note, {"ns": key, "added": added, "low": record.expires_at})

        self._run(work)

    def delete(self, namespace: str, cid: str) -> None:
        """Remove one record in one transaction.

        :param namespace: the namespace of the record.
        :param cid: the conversation id.
        """
        key = namespace_key(namespace)

        def work(conn: sa.Connection) -> None:
            hold = {"namespace": key, "name": None, "records": 0, "earliest": 0.0}
            conn.execute(self._sql.hold, hold)
            removed = conn.execute(self._sql.delete, {"ns": key, "ids": [cid]}).rowcount
            # A request may hold the record's stack: see commit.py.
            conn.execute(self._sql.shrink, {"ns": key, "removed": removed})
            conn.execute(self._sql.drop_empty, {"ns": key})

        self._run(work)

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        """One ``SELECT`` of the namespace's rows.

        :param namespace: the namespace to list.
        """
        params = {"ns": namespace_key(namespace)}
        rows = self._run(lambda conn: conn.execute(self._sql.list, params).all(), write=False)
        return [to_record(row, namespace) for row in rows]

    def try_lock(self, namespace: str, root_id: str) -> str | None:
        """Take the lease of a stack if it is free or ran out: one
        transaction of two statements (take it, read who holds it).
        :meth:`lock` tries again after growing pauses.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        """
        key, token = namespace_key(namespace), new_token()

        def work(conn: sa.Connection) -> bool:
            params = {**lease_params(key, token, self.lock_lease), "root": root_id}
            conn.execute(self._sql.lease_root, params)
            return conn.execute(self._sql.holder, params).scalar() == token

        return token if self._run(work) else None

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        """Delete the lease if ``token`` still owns it: one ``DELETE``.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param token: the token :meth:`lock` returned.
        """
        params = {"ns": namespace_key(namespace), "root": root_id, "token": token}
        self._run(lambda conn: conn.execute(self._sql.release, params))

    def namespaces(self) -> dict[str, int]:
        """Every namespace with its number of live conversations, in one
        ``SELECT`` (a tool for operators: it counts every row).
        """
        params = {"now": self.clock()}
        rows = self._run(lambda conn: conn.execute(self._sql.live_counts, params).all(), False)
        return {namespace_from_row(key, name): count for key, name, count in rows}

    # -- composite operations --------------------------------------------------

    def load_chain(self, namespace: str, cid: str) -> list[ConversationRecord] | None:
        """The chain from the root down to ``cid`` in one ``SELECT`` of its
        stack, or ``None`` if a link is missing or expired.

        :param namespace: the namespace to look in.
        :param cid: the conversation id.
        """
        now = self.clock()
        params = {"ns": namespace_key(namespace), "cid": cid, "now": now}
        rows = self._run(lambda conn: conn.execute(self._sql.stack, params).all(), write=False)
        return live_chain([to_record(row, namespace) for row in rows], cid, now)

    def acquire(self, namespace: str, cid: str, timeout: float) -> Acquired | None:
        """Take the lease of the stack ``cid`` belongs to and load the stack,
        in one transaction of two statements; while another request holds
        it, try again after growing pauses until ``timeout``.

        :param namespace: the namespace to look in.
        :param cid: the conversation id the request named.
        :param timeout: seconds to wait for the stack's lease.
        :raise BusyConversation: the lease was not free within ``timeout``.
        """
        rv = self._acquire(namespace, cid, timeout, claim=False)
        assert not isinstance(rv, _Dead)
        return rv

    def claim(self, namespace: str, cid: str, timeout: float) -> Acquired:
        """:meth:`acquire`, leasing a missing ``cid`` as a new root in the
        same statement.

        :param namespace: the namespace to look in.
        :param cid: the natural id to join or create.
        :param timeout: seconds to wait for the lease.
        :raise BusyConversation: the lease was not free within ``timeout``.
        """
        rv = self._acquire(namespace, cid, timeout, claim=True)
        if isinstance(rv, _Dead):
            # The stack expired while its lease was taken: start over the
            # slow way, which locks cid itself.
            return super().claim(namespace, cid, timeout)
        assert rv is not None
        return rv

    def _acquire(
        self, namespace: str, cid: str, timeout: float, claim: bool
    ) -> Acquired | _Dead | None:
        key, token = namespace_key(namespace), new_token()
        lease, stack = (
            (self._sql.lease_claim, self._sql.stack_of_claim)
            if claim
            else (self._sql.lease_stack, self._sql.stack_of_cid)
        )

        def work(conn: sa.Connection) -> Acquired | _Busy | _Dead | None:
            now = self.clock()
            params = {
                **lease_params(key, token, self.lock_lease),
                "cid": cid,
                "now": now,
                "listing": self.listing_limit,
            }
            conn.execute(lease, params)
            rows = conn.execute(stack, params).all()
            held = [row for row in rows if row.part == 1]
            if not held:
                return None
            if held[0].holder != token:
                return _BUSY
            root = held[0].leased
            records = [to_record(row, namespace) for row in held if row.id is not None]
            chain = live_chain(records, cid, now)
            if chain is None:
                if claim and root == cid:
                    return Acquired(cid, token, [])
                conn.execute(self._sql.release, {"ns": key, "root": root, "token": token})
                return _DEAD if claim else None
            population = held[0].population
            listed = None
            if population is None or population <= self.listing_limit:
                listed = listing([row for row in rows if row.part == 2], namespace)
            return Acquired(root, token, chain, listed)

        for _ in lock_retries(timeout):
            rv = self._run(work)
            if not isinstance(rv, _Busy):
                return rv
        raise BusyConversation()

    def commit(self, namespace: str, batch: CommitBatch) -> Destroyed:
        """Check and release the batch's leases and apply the rules of
        :func:`~.rules.plan_commit`, in one transaction: usually three or four
        statements that do not read the namespace (see
        :mod:`~flask_conversation.stores.sql.commit`).

        :param namespace: the namespace the changes belong to.
        :param batch: the changes.
        :raise ConversationStoreError: the database failed, or the request
            no longer holds a lease of the batch (it ran out); nothing was
            written.
        """
        if not batch:
            return []
        key, name = namespace_key(namespace), namespace_name(namespace)

        def work(conn: sa.Connection) -> Destroyed | commit.LeaseLost:
            return commit.apply(
                conn, self._sql, namespace, key, name, batch, self.clock(), real_time()
            )

        rv = self._run(work)
        if isinstance(rv, commit.LeaseLost):
            stacks = ", ".join(repr(root) for root in rv.roots)
            raise ConversationStoreError(
                f"The lock of stack {stacks} expired before the request committed"
                " (its lease ran out); nothing was written."
            )
        return rv

    def purge(self) -> int:
        """Remove the expired records of every namespace, except those of
        stacks that a request holds, and leases that ran out and were never
        released, in transactions of at most :attr:`purge_batch` namespaces
        each.

        :return: how many records were removed.
        """
        removed = 0
        after: str | None = None
        while True:

            def work(conn: sa.Connection, after: str | None = after) -> tuple[int, str | None]:
                now, limit = self.clock(), self.purge_batch
                return purge_namespaces(conn, self._sql, now, real_time(), limit, after)

            count, after = self._run(work)
            removed += count
            if after is None:
                break
        while self._run(lambda conn: purge_leases(conn, self._sql, real_time(), self.purge_batch)):
            pass
        return removed
