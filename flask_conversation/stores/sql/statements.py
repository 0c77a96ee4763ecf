"""Every statement the SQL store runs, built once per store so that
SQLAlchemy compiles each only once. Values are bound by name:

``ns``          the namespace's key (:func:`~.tables.namespace_key`)
``cid``         a conversation id
``root``        the id of a stack's root
``token``       a lease's owner token
``until``       when a lease taken now runs out (real time)
``real_now``    the real time, for leases
``now``         the store's clock, for records
``max``         ``CONVERSATION_MAX_COUNT``

Inserting or updating in one statement is spelled differently by each
database (``ON CONFLICT`` on PostgreSQL and SQLite, ``ON DUPLICATE KEY
UPDATE`` on MySQL and MariaDB); :func:`upsert` hides that.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from .tables import Tables

#: The databases the store speaks to, by SQLAlchemy dialect name.
DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")

#: The columns of a record besides its namespace, data and version.
META = (
    "id",
    "root_id",
    "parent_id",
    "depth",
    "description",
    "timeout",
    "created_at",
    "last_access",
    "expires_at",
    "ended",
    "size",
)


def upsert(
    dialect: str,
    table: sa.Table,
    values: t.Any,
    update: t.Callable[[t.Any], list[tuple[str, t.Any]]],
    only_if: t.Callable[[t.Any], sa.ColumnElement[bool]] | None = None,
) -> t.Any:
    """An ``INSERT`` that updates the row with the same primary key instead.

    :param dialect: the database's dialect name.
    :param table: the table.
    :param values: the row to insert: a ``select()`` of every column, or
        ``None`` to bind each column by its name.
    :param update: called with the proposed row (``excluded`` /
        ``VALUES()``), returns the ``(column, value)`` pairs to set, in
        order.
    :param only_if: called with the proposed row, the condition under which
        an existing row is updated (else it is left as it is).
    """
    if dialect in ("mysql", "mariadb"):
        stmt: t.Any = mysql.insert(table)
        if values is not None:
            stmt = stmt.from_select([c.name for c in table.columns], values)
        proposed = stmt.inserted
        pairs = update(proposed)
        if only_if is not None:
            # MySQL assigns left to right and a later assignment sees the
            # earlier ones: the condition must read only columns set last.
            cond = only_if(proposed)
            pairs = [(k, sa.func.IF(cond, v, table.c[k])) for k, v in pairs]
        return stmt.on_duplicate_key_update(pairs)
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table)
    if values is not None:
        stmt = stmt.from_select([c.name for c in table.columns], values)
    proposed = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_=dict(update(proposed)),
        where=None if only_if is None else only_if(proposed),
    )


class Statements:
    """The store's statements for one database.

    :param tables: the store's tables.
    :param dialect: the database's dialect name, one of :data:`DIALECTS`.
    """

    def __init__(self, tables: Tables, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(
                f"SQLAlchemyStore works on SQLite, PostgreSQL, MySQL and MariaDB, not {dialect!r}."
            )
        self.dialect = dialect
        self._release_all: dict[int, t.Any] = {}
        self.returning = dialect in ("postgresql", "sqlite")
        records, leases, namespaces = tables.records, tables.leases, tables.namespaces
        self.tables = tables
        key_type = records.c.namespace.type
        id_type = records.c.id.type
        time_type = records.c.expires_at.type
        ns = sa.bindparam("ns", type_=key_type)
        cid = sa.bindparam("cid", type_=id_type)
        token = sa.bindparam("token", type_=id_type)
        until = sa.bindparam("until", type_=time_type)
        real_now = sa.bindparam("real_now", type_=time_type)
        now = sa.bindparam("now", type_=time_type)

        # -- records -------------------------------------------------------
        def live(table: t.Any, cid_value: t.Any = cid) -> sa.ColumnElement[bool]:
            return sa.and_(
                table.c.namespace == ns, table.c.id == cid_value, table.c.expires_at > now
            )

        #: The root of the live conversation ``cid``, or NULL.
        root_of = sa.select(records.c.root_id).where(live(records)).scalar_subquery()
        meta = [records.c[name] for name in META]

        self.load = sa.select(*meta, records.c.data).where(
            records.c.namespace == ns, records.c.id == cid
        )
        self.list = sa.select(*meta, records.c.data).where(records.c.namespace == ns)
        self.list_meta = sa.select(*meta).where(records.c.namespace == ns)
        self.stack = sa.select(*meta, records.c.data).where(
            records.c.namespace == ns, records.c.root_id == root_of
        )
        columns = [c.name for c in records.columns if c.name != "version"]
        self.save = upsert(
            dialect,
            records,
            None,
            lambda new: [
                *((name, new[name]) for name in columns if name not in ("namespace", "id")),
                # A literal: MySQL's driver cannot bind in this clause
                # when it sends many rows at once.
                ("version", records.c.version + sa.literal_column("1")),
            ],
        )
        if self.returning:
            self.save = self.save.returning(records.c.version)
        self.delete = records.delete().where(
            records.c.namespace == ns, records.c.id.in_(sa.bindparam("ids", expanding=True))
        )
        # Never a stack that a request holds: a conversation does not expire
        # while it is used.
        leased = (
            sa.select(leases.c.root_id)
            .where(
                leases.c.namespace == records.c.namespace,
                leases.c.root_id == records.c.root_id,
                leases.c.expires_at > sa.bindparam("real_now", type_=time_type),
            )
            .exists()
        )
        self.delete_expired = records.delete().where(
            records.c.namespace.in_(sa.bindparam("keys", expanding=True)),
            records.c.expires_at <= now,
            sa.not_(leased),
        )
        self.tally = (
            sa.select(
                records.c.namespace,
                sa.func.count().label("records"),
                sa.func.min(records.c.expires_at).label("earliest"),
            )
            .where(records.c.namespace.in_(sa.bindparam("keys", expanding=True)))
            .group_by(records.c.namespace)
        )
        self.live_counts = (
            sa.select(records.c.namespace, namespaces.c.name, sa.func.count())
            .select_from(
                records.outerjoin(namespaces, namespaces.c.namespace == records.c.namespace)
            )
            .where(records.c.expires_at > now, sa.not_(records.c.ended))
            .group_by(records.c.namespace, namespaces.c.name)
        )

        # -- leases --------------------------------------------------------
        def take(values: t.Any) -> t.Any:
            # Free, or run out, or already ours (a retried statement).
            return upsert(
                dialect,
                leases,
                values,
                lambda new: [("token", new.token), ("expires_at", new.expires_at)],
                lambda new: sa.or_(leases.c.expires_at <= real_now, leases.c.token == new.token),
            )

        #: Lease the stack of the live conversation ``cid``, if there is one.
        self.lease_stack = take(sa.select(ns, records.c.root_id, token, until).where(live(records)))
        # SQLite needs a WHERE in an upsert's SELECT to parse it.
        claimed_root = sa.func.coalesce(root_of, cid)
        #: Lease that stack, or ``cid`` itself as the root of a new one.
        self.lease_claim = take(sa.select(ns, claimed_root, token, until).where(sa.true()))
        #: Lease the stack ``root``.
        self.lease_root = take(
            sa.select(ns, sa.bindparam("root", type_=id_type), token, until).where(sa.true())
        )
        self.holder = sa.select(leases.c.token).where(
            leases.c.namespace == ns, leases.c.root_id == sa.bindparam("root", type_=id_type)
        )
        self.release = leases.delete().where(
            leases.c.namespace == ns,
            leases.c.root_id == sa.bindparam("root", type_=id_type),
            leases.c.token == token,
        )
        self.stale_leases = (
            sa.select(leases.c.namespace, leases.c.root_id)
            .where(leases.c.expires_at <= real_now)
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
        self.drop_stale_lease = leases.delete().where(
            leases.c.namespace == sa.bindparam("key", type_=key_type),
            leases.c.root_id == sa.bindparam("root", type_=id_type),
            leases.c.expires_at <= real_now,
        )

        # A stack with its lease holder, and with the metadata of a small
        # namespace's conversations, in one statement.
        def stack_rows(root: t.Any) -> t.Any:
            size = (
                sa.select(namespaces.c.records)
                .where(namespaces.c.namespace == ns)
                .scalar_subquery()
            )
            held = sa.select(
                sa.literal(1, sa.Integer).label("part"),
                leases.c.token.label("holder"),
                leases.c.root_id.label("leased"),
                size.label("population"),
                *meta,
                records.c.data,
            ).select_from(
                leases.outerjoin(
                    records,
                    sa.and_(
                        records.c.namespace == leases.c.namespace,
                        records.c.root_id == leases.c.root_id,
                    ),
                )
            )
            held = held.where(leases.c.namespace == ns, leases.c.root_id == root)
            other = records.alias("other")
            # NULL matches nothing: a large namespace is not read at all.
            listed_ns = sa.case((size <= sa.bindparam("listing", type_=sa.Integer), ns))
            listing = sa.select(
                sa.literal(2, sa.Integer),
                sa.cast(sa.null(), id_type),
                sa.cast(sa.null(), id_type),
                sa.cast(sa.null(), sa.Integer),
                *[other.c[name] for name in META],
                sa.cast(sa.null(), records.c.data.type),
            ).where(other.c.namespace == listed_ns)
            return sa.union_all(held, listing)

        self.stack_of_cid = stack_rows(root_of)
        self.stack_of_claim = stack_rows(claimed_root)

        # -- namespaces ----------------------------------------------------
        #: Renew without reading the namespace: nothing expired, and it fits.
        self.renew = (
            namespaces.update()
            .where(
                namespaces.c.namespace == ns,
                namespaces.c.earliest > now,
                namespaces.c.records <= sa.bindparam("max", type_=sa.Integer),
            )
            .values(
                earliest=sa.case(
                    (
                        namespaces.c.earliest < sa.bindparam("low", type_=time_type),
                        namespaces.c.earliest,
                    ),
                    else_=sa.bindparam("low", type_=time_type),
                )
            )
        )
        added = sa.bindparam("added", type_=sa.Integer)
        #: Count conversations a renewing commit created, if they fit.
        self.grow = (
            namespaces.update()
            .where(
                namespaces.c.namespace == ns,
                namespaces.c.records + added <= sa.bindparam("max", type_=sa.Integer),
            )
            .values(records=namespaces.c.records + added)
        )
        #: Count what a plain save added, and lower the earliest expiry.
        self.note = (
            namespaces.update()
            .where(namespaces.c.namespace == ns)
            .values(
                records=namespaces.c.records + added,
                earliest=sa.case(
                    (
                        namespaces.c.earliest < sa.bindparam("low", type_=time_type),
                        namespaces.c.earliest,
                    ),
                    else_=sa.bindparam("low", type_=time_type),
                ),
            )
        )
        #: Count what a plain delete removed; the next commit applies the
        #: rules in full (a request may hold the deleted record's stack).
        self.shrink = (
            namespaces.update()
            .where(namespaces.c.namespace == ns)
            .values(
                records=namespaces.c.records - sa.bindparam("removed", type_=sa.Integer),
                earliest=0.0,
            )
        )
        self.drop_empty = namespaces.delete().where(
            namespaces.c.namespace == ns, namespaces.c.records <= 0
        )
        #: Create the namespace's row or lock it, for a full commit.
        self.hold = upsert(
            dialect,
            namespaces,
            None,
            lambda new: [("records", namespaces.c.records)],
        )
        self.recount = (
            namespaces.update()
            .where(namespaces.c.namespace == ns)
            .values(
                records=sa.bindparam("records", type_=sa.Integer),
                earliest=sa.bindparam("earliest", type_=time_type),
            )
        )
        self.recount_many = (
            namespaces.update()
            .where(namespaces.c.namespace == sa.bindparam("key", type_=key_type))
            .values(
                records=sa.bindparam("count", type_=sa.Integer),
                earliest=sa.bindparam("first", type_=time_type),
            )
        )
        self.forget = namespaces.delete().where(namespaces.c.namespace == ns)
        self.forget_many = namespaces.delete().where(
            namespaces.c.namespace.in_(sa.bindparam("keys", expanding=True))
        )
        purgeable = (
            sa.select(namespaces.c.namespace)
            .where(namespaces.c.earliest <= now)
            .order_by(namespaces.c.namespace)
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
        if dialect != "sqlite":
            purgeable = purgeable.with_for_update()
        #: The first namespaces with something expired, in key order; and
        #: those after the key ``after``.
        self.purgeable = purgeable
        self.purgeable_after = purgeable.where(
            namespaces.c.namespace > sa.bindparam("after", type_=key_type)
        )

    def release_all(self, count: int) -> t.Any:
        """Release ``count`` leases of one namespace that have not run out;
        bind ``root0``, ``token0``, ``root1``, ...

        :param count: how many leases.
        """
        stmt = self._release_all.get(count)
        if stmt is None:
            stmt = self._release_all[count] = self._build_release_all(count)
        return stmt

    def _build_release_all(self, count: int) -> t.Any:
        leases = self.tables.leases
        id_type = leases.c.root_id.type
        pairs = [
            sa.and_(
                leases.c.root_id == sa.bindparam(f"root{i}", type_=id_type),
                leases.c.token == sa.bindparam(f"token{i}", type_=id_type),
            )
            for i in range(count)
        ]
        return leases.delete().where(
            leases.c.namespace == sa.bindparam("ns", type_=leases.c.namespace.type),
            sa.or_(*pairs),
            leases.c.expires_at > sa.bindparam("real_now", type_=leases.c.expires_at.type),
        )
