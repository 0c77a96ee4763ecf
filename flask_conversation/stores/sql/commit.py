"""One request's commit as one transaction: check and release its leases,
then apply the commit rules of :func:`~flask_conversation.stores.rules.plan_commit`.

Every transaction that writes records of a namespace first locks that
namespace's row in ``<prefix>namespaces`` (leases, then the namespace, then
its records: always in that order, so that two commits never wait for each
other in a circle). The row keeps the number of records and a time before
which none expires, so the usual commit, which renews the conversations it
used and perhaps adds one, knows without reading the namespace that the
rules would only save:

1.  release the leases (a lease that ran out: nothing is written);
2.  ``UPDATE`` the namespace's row if nothing of it has expired and it
    fits, lowering its earliest expiry if needed;
3.  write the records, learning how many are new;
4.  if some are, count them if they fit.

Three or four short statements, whatever the size of the namespace. When
step 2 or 4 finds that the rules have work to do (something expired, an
end, an eviction, ``end_all()``), the same transaction locks the row, reads
the namespace's metadata (never its data) and applies the rules in full.

A commit that removes records of stacks other than its own (expired,
evicted or cleared) may remove a stack that another request holds at that
moment; it sets the row's earliest expiry to 0, so that the next commit in
the namespace applies the rules in full too, and so does not write back a
stack that is gone (see :attr:`~flask_conversation.stores.records.CommitBatch.held`).
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa

from ..records import CommitBatch
from ..records import ConversationRecord
from ..records import Destroyed
from ..rules import plan_commit
from .rows import record_params
from .rows import to_record
from .statements import Statements


@dataclasses.dataclass(frozen=True)
class LeaseLost:
    """The commit found that the request no longer holds a stack's lease:
    it wrote nothing (and released the leases it still held).

    :param roots: the stacks whose lease ran out.
    """

    roots: tuple[str, ...]


def write(conn: sa.Connection, sql: Statements, key: str, records: list[ConversationRecord]) -> int:
    """Insert or update records, in one statement.

    :param conn: the transaction's connection.
    :param sql: the store's statements.
    :param key: the namespace's key.
    :param records: the records to write.
    :return: how many of them were new.
    """
    params = [record_params(r, key) for r in records]
    result = conn.execute(sql.save, params if len(params) > 1 else params[0])
    if sql.returning:
        # A new row keeps version 0; an updated one counts up.
        return sum(1 for (version,) in result if version == 0)
    # MySQL counts 1 for a row inserted, 2 for a row changed (and the
    # version always changes).
    return 2 * len(params) - result.rowcount


def release(
    conn: sa.Connection, sql: Statements, key: str, unlock: dict[str, str], real_now: float
) -> LeaseLost | None:
    """Release the leases of ``unlock`` that have not run out.

    :param conn: the transaction's connection.
    :param sql: the store's statements.
    :param key: the namespace's key.
    :param unlock: ``root_id -> token``.
    :param real_now: the real time.
    :return: what was lost, if a lease had run out.
    """
    params: dict[str, t.Any] = {"ns": key, "real_now": real_now}
    for i, (root_id, token) in enumerate(unlock.items()):
        params[f"root{i}"] = root_id
        params[f"token{i}"] = token
    released = conn.execute(sql.release_all(len(unlock)), params).rowcount
    if released == len(unlock):
        return None
    return LeaseLost(tuple(unlock))


def apply(
    conn: sa.Connection,
    sql: Statements,
    namespace: str,
    key: str,
    name: str | None,
    batch: CommitBatch,
    now: float,
    real_now: float,
) -> Destroyed | LeaseLost:
    """Apply one request's batch in the transaction of ``conn``.

    :param conn: the transaction's connection.
    :param sql: the store's statements.
    :param namespace: the namespace.
    :param key: its key in the tables.
    :param name: its ``name`` column.
    :param batch: the changes.
    :param now: the store's time.
    :param real_now: the real time, for leases.
    :return: the records removed with their reasons, or :class:`LeaseLost`
        (then the caller commits only the releases).
    """
    if batch.unlock:
        lost = release(conn, sql, key, batch.unlock, real_now)
        if lost is not None:
            return lost
    if not (batch.saves or batch.deletes or batch.clear):
        return []

    written = False
    if not (batch.deletes or batch.clear):
        low = min(r.expires_at for r in batch.saves)
        params = {"ns": key, "now": now, "max": batch.max_count, "low": low}
        if conn.execute(sql.renew, params).rowcount == 1:
            added = write(conn, sql, key, batch.saves)
            if not added:
                return []
            params = {"ns": key, "added": added, "max": batch.max_count}
            if conn.execute(sql.grow, params).rowcount == 1:
                return []
            written = True

    # The rules in full, on the namespace's metadata.
    conn.execute(sql.hold, {"namespace": key, "name": name, "records": 0, "earliest": 0.0})
    rows = conn.execute(sql.list_meta, {"ns": key})
    stored = [to_record(row, namespace, data="") for row in rows]
    plan = plan_commit(stored, batch, now)
    if plan.delete:
        conn.execute(sql.delete, {"ns": key, "ids": plan.delete})
    if plan.save and not written:
        write(conn, sql, key, plan.save)
    gone = set(plan.delete)
    kept = {r.id: r.expires_at for r in stored if r.id not in gone}
    kept.update((r.id, r.expires_at) for r in plan.save)
    if not kept:
        conn.execute(sql.forget, {"ns": key})
        return plan.destroyed
    earliest = min(kept.values())
    own = set(batch.unlock) | batch.held | batch.keep_roots | {r.root_id for r in batch.saves}
    if any(r.id in gone and r.root_id not in own for r in stored):
        # Removed from stacks that other requests may hold right now: their
        # commits must not take the shortcut, which would write them back,
        # but apply the rules (which see that they are gone).
        earliest = 0.0
    conn.execute(sql.recount, {"ns": key, "records": len(kept), "earliest": earliest})
    return plan.destroyed
