"""The SQL figures, on a throwaway PostgreSQL server:

10. read + write of a conversation per request with ``SQLAlchemyStore``,
    against the hand-rolled ``session["tabs"][tab_id]`` in Flask-Session's
    SQLAlchemy backend on the same server (what a user of a SQL database
    would pick instead), and the transactions and statements per request
    of both, counted with SQLAlchemy's event hooks;
11. the cost of one read + write against the number of live conversations
    in the namespace.

Both sides of a ratio are timed with the CPU time of this thread plus the
CPU time of every PostgreSQL process, so that other work on a busy machine
does not count, but the database's own work does.
"""

from __future__ import annotations

import contextlib
import time
import typing as t
from pathlib import Path

import sqlalchemy as sa

from . import apps
from .context import Context
from .context import step_caller
from .figures import populated
from .results import ratio_row
from .results import Row
from .results import skipped
from .timing import compare

WHAT_10 = "read+write, SQLAlchemyStore on PostgreSQL (cookie session holds the namespace)"


def postgres_cpu_clock(pid: int) -> tuple[str, t.Callable[[], float]]:
    """A clock of the CPU time this thread and the PostgreSQL server (the
    process ``pid`` and its children: backends, WAL writer, ...) spend,
    from the scheduler's nanosecond counters.

    :param pid: the PostgreSQL server's process id.
    """

    def server_ns() -> int:
        total = 0
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        for process in (str(pid), *children):
            # A backend that just exited has nothing to read.
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(Path(f"/proc/{process}/schedstat").read_text().split()[0])
        return total

    def clock() -> float:
        return time.thread_time() + server_ns() / 1e9

    return "cpu+postgres", clock


def _store(ctx: Context, prefix: str) -> t.Any:
    from flask_conversation.stores import SQLAlchemyStore

    assert ctx.postgres_url is not None
    return SQLAlchemyStore(ctx.postgres_url, table_prefix=prefix)


def _engine_of(app: t.Any) -> sa.engine.Engine:
    """The engine an app's requests use: the store's, or Flask-SQLAlchemy's."""
    from flask_conversation import ConversationScope

    if "sqlalchemy" in app.extensions:
        with app.app_context():
            return t.cast(sa.engine.Engine, app.extensions["sqlalchemy"].engine)
    return t.cast(sa.engine.Engine, ConversationScope.get_store(app).engine)


def _counted(app: t.Any, call: t.Callable[[], None], requests: int) -> tuple[float, float]:
    """Transactions and statements per request of ``call``."""
    engine = _engine_of(app)
    counts = {"begin": 0, "statements": 0}

    def begin(conn: t.Any) -> None:
        counts["begin"] += 1

    def execute(*args: t.Any) -> None:
        counts["statements"] += 1

    sa.event.listen(engine, "begin", begin)
    sa.event.listen(engine, "before_cursor_execute", execute)
    try:
        for _ in range(requests):
            call()
    finally:
        sa.event.remove(engine, "begin", begin)
        sa.event.remove(engine, "before_cursor_execute", execute)
    return counts["begin"] / requests, counts["statements"] / requests


def figure_10(ctx: Context, bookings: t.Sequence[int] = (1, 10)) -> list[Row]:
    """Read + write per request with ``SQLAlchemyStore`` against
    Flask-Session's SQLAlchemy backend holding the hand-rolled dict, once
    with the user's only booking and once with more open in other tabs;
    then the transactions and statements per request of both.

    :param ctx: the run's context.
    :param bookings: how many bookings the user has open, one row each.
    """
    if ctx.postgres_url is None or ctx.postgres_pid is None:
        return [skipped("10", WHAT_10, ctx.postgres_error or "no PostgreSQL")]
    rows = []
    counted: dict[str, tuple[t.Any, t.Callable[[], None]]] = {}
    for open_bookings in bookings:
        tabs = apps.tabs_app(session_sqlalchemy=ctx.postgres_url)
        tab_id, tab_cookie = apps.start(tabs)
        conv = apps.conversation_app(_store(ctx, f"bench9_{open_bookings}_"))
        cid, cookie = apps.start(conv)
        for _ in range(open_bookings - 1):
            _, tab_cookie = apps.start(tabs, tab_cookie)
            _, cookie = apps.start(conv, cookie)
        baseline = step_caller(tabs, tab_id, tab_cookie, apps.TAB_PARAM)
        subject = step_caller(conv, cid, cookie)
        suffix = "" if open_bookings == 1 else f", {open_bookings} bookings open"
        rows.append(
            ratio_row(
                "10",
                WHAT_10 + suffix,
                "Flask-Session SQLAlchemy, hand-rolled tabs dict",
                compare(baseline, subject, ctx.timing, clock=postgres_cpu_clock(ctx.postgres_pid)),
                1.0,
            )
        )
        rows[-1].extra["bookings"] = open_bookings
        if open_bookings == 1:
            counted = {"SQLAlchemyStore": (conv, subject), "Flask-Session": (tabs, baseline)}
    for name, (app, call) in counted.items():
        transactions, statements = _counted(app, call, 20)
        limit = 2 if name == "SQLAlchemyStore" else None
        rows.append(
            Row(
                figure="10",
                what=f"SQL transactions per read+write request, {name}",
                baseline="",
                result=f"{transactions:g} transactions",
                target="" if limit is None else f"<= {limit}",
                met=None if limit is None else transactions <= limit,
                absolute=f"{statements:g} statements",
                value=transactions,
                extra={"statements": statements},
            )
        )
    return rows


def figure_11(ctx: Context) -> list[Row]:
    """The cost of one read + write against the number of live
    conversations in the namespace, for ``SQLAlchemyStore`` on PostgreSQL.

    :param ctx: the run's context.
    """
    what = "read+write, SQLAlchemyStore (PostgreSQL)"
    if ctx.postgres_url is None or ctx.postgres_pid is None:
        return [skipped("11", what, ctx.postgres_error or "no PostgreSQL")]
    clock = postgres_cpu_clock(ctx.postgres_pid)
    limit = max(ctx.counts) + 8
    baseline, _ = populated(_store(ctx, "bench10_base_"), 1, limit)
    rows = []
    for live in ctx.counts:
        subject, _ = populated(_store(ctx, f"bench10_{live}_"), live, limit)
        top = live == max(ctx.counts)
        rows.append(
            ratio_row(
                "11",
                f"{what}, {live} live in the namespace",
                "1 live conversation",
                compare(baseline, subject, ctx.timing, clock=clock),
                1.10 if top else None,
            )
        )
        rows[-1].extra.update(store="SQLAlchemyStore (PostgreSQL)", live=live)
    return rows
