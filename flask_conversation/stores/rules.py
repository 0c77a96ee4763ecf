"""The commit rules every store shares, as pure functions: what a batch
does to the records a namespace holds.

A store may run them natively (a script, a statement) as long as an
equivalence test shows that it decides the same.
"""

from __future__ import annotations

import dataclasses
import typing as t

from .records import CommitBatch
from .records import ConversationRecord
from .records import Destroyed


@dataclasses.dataclass
class Plan:
    """What :func:`plan_commit` decided: the ids to delete and the records
    to write, and what to report.
    """

    delete: list[str]
    save: list[ConversationRecord]
    destroyed: Destroyed


def only_saves(batch: CommitBatch, stored: t.Collection[str], earliest: float, now: float) -> bool:
    """Whether :func:`plan_commit` would save the whole batch and delete
    nothing, so that a store may just write it: the batch deletes and
    clears nothing, every stack it held is still stored, no stored record
    has expired, and the namespace still fits ``batch.max_count``.

    :param batch: the request's changes.
    :param stored: the ids the namespace holds.
    :param earliest: a time no stored record expires before (``inf`` for
        an empty namespace).
    :param now: the current time.
    """
    if batch.deletes or batch.clear or not batch.saves or earliest <= now:
        return False
    if batch.lost_roots(stored):
        return False
    new = sum(1 for r in batch.saves if r.id not in stored)
    return len(stored) + new <= batch.max_count


def plan_commit(stored: t.Iterable[ConversationRecord], batch: CommitBatch, now: float) -> Plan:
    """Decide how a batch applies to the records a namespace holds: drop
    expired records, clear the namespace if asked, delete ended subtrees,
    then evict least recently used stacks until the namespace fits
    ``batch.max_count``. Stacks the request held that another request
    removed meanwhile are not written back (see :class:`.CommitBatch`).

    A pure function, so that every store shares the same rules.

    :param stored: the records currently in the namespace.
    :param batch: the request's changes.
    :param now: the current time.
    """
    records = {r.id: r for r in stored}
    lost = batch.lost_roots(records)
    saves = [r for r in batch.saves if r.root_id not in lost]
    saving = {r.id for r in saves}
    delete: list[str] = []
    destroyed: Destroyed = []

    def remove(cid: str, reason: str | None) -> None:
        records.pop(cid, None)
        if cid in delete:
            return
        delete.append(cid)
        if reason is not None:
            destroyed.append((cid, reason))

    # A record held by this request is being renewed, so it cannot expire.
    for r in list(records.values()):
        if r.expires_at <= now and r.id not in saving:
            remove(r.id, None if r.ended else "expired")

    if batch.clear:
        for r in list(records.values()):
            remove(r.id, None if r.ended else "cleared")

    children: dict[str, list[str]] = {}
    for r in [*records.values(), *saves]:
        if r.parent_id is not None:
            children.setdefault(r.parent_id, []).append(r.id)

    for cid, reason in batch.deletes.items():
        pending = [cid]
        while pending:
            current = pending.pop()
            pending.extend(children.pop(current, ()))
            if current in records or current in saving:
                is_tombstone = current in records and records[current].ended
                remove(current, None if is_tombstone else reason)

    for r in saves:
        records[r.id] = r

    live = [r for r in records.values() if not r.ended]
    excess = len(live) - batch.max_count
    if excess > 0:
        stacks: dict[str, list[ConversationRecord]] = {}
        for r in live:
            stacks.setdefault(r.root_id, []).append(r)
        # Stacks used at the same time go by root id, so that the outcome
        # does not depend on the order in which a store lists records.
        by_age = sorted(
            (s for root, s in stacks.items() if root not in batch.keep_roots),
            key=lambda s: (max(r.last_access for r in s), s[0].root_id),
        )
        for stack in by_age:
            if excess <= 0:
                break
            for r in stack:
                remove(r.id, "evicted")
            excess -= len(stack)

    return Plan(
        delete=delete,
        save=[r for r in saves if r.id in records],
        destroyed=destroyed,
    )
