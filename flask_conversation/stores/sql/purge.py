"""Removing what expired, for ``flask conversation purge``: one batch of
namespaces, or of leases, per short transaction.

A namespace's row says when its first record expires, so the namespaces
with something to remove are found through an index, without reading any
record; each batch deletes their expired records and counts what is left.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from .statements import Statements


def purge_namespaces(
    conn: sa.Connection,
    sql: Statements,
    now: float,
    real_now: float,
    limit: int,
    after: str | None,
) -> tuple[int, str | None]:
    """Remove the expired records of up to ``limit`` namespaces, locking
    their rows first (in key order, like every writer), and set their rows
    from what is left. A stack that a request holds is left alone: a
    conversation does not expire while it is used.

    :param conn: the transaction's connection.
    :param sql: the store's statements.
    :param now: the store's time.
    :param real_now: the real time, for leases.
    :param limit: the most namespaces to clean up.
    :param after: the last key of the previous batch, or ``None`` for the
        first batch.
    :return: how many records were removed, and the last key of this batch,
        or ``None`` if there are no more namespaces to clean up.
    """
    params: dict[str, t.Any] = {"now": now, "limit": limit}
    if after is None:
        found = conn.execute(sql.purgeable, params)
    else:
        found = conn.execute(sql.purgeable_after, {**params, "after": after})
    keys = [row.namespace for row in found]
    if not keys:
        return 0, None
    params = {"keys": keys, "now": now, "real_now": real_now}
    removed = conn.execute(sql.delete_expired, params).rowcount
    tallies = conn.execute(sql.tally, {"keys": keys}).all()
    if tallies:
        conn.execute(
            sql.recount_many,
            [{"key": key, "count": count, "first": first} for key, count, first in tallies],
        )
    empty = set(keys) - {row.namespace for row in tallies}
    if empty:
        conn.execute(sql.forget_many, {"keys": sorted(empty)})
    return int(removed), keys[-1] if len(keys) == limit else None


def purge_leases(conn: sa.Connection, sql: Statements, real_now: float, limit: int) -> bool:
    """Remove up to ``limit`` leases that ran out and were never released
    (their request's worker died, or the database was down when it ended).

    :param conn: the transaction's connection.
    :param sql: the store's statements.
    :param real_now: the real time.
    :param limit: the most leases to remove.
    :return: whether there may be more.
    """
    stale = conn.execute(sql.stale_leases, {"real_now": real_now, "limit": limit}).all()
    if stale:
        conn.execute(
            sql.drop_stale_lease,
            [{"key": key, "root": root, "real_now": real_now} for key, root in stale],
        )
    return len(stale) == limit
