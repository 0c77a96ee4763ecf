"""The in-process figures (1 to 5 and 7): each builds its applications,
prepares the requests once, checks that they answer as expected, then
times them with :func:`bench.timing.compare`.
"""

from __future__ import annotations

import random
import string
import typing as t

from flask import Flask

from . import apps
from . import floors
from .context import Context
from .context import HEADER
from .context import hiredis_installed
from .context import redis_cpu_clock
from .context import redis_missing
from .context import redis_store
from .context import step_caller
from .results import ratio_row
from .results import Row
from .results import skipped
from .timing import compare
from .wsgi import caller
from .wsgi import prepare

if t.TYPE_CHECKING:  # pragma: no cover
    import redis

# -- 1 -------------------------------------------------------------------------


def figure_1(ctx: Context) -> list[Row]:
    """A view that never touches the conversation, with and without the
    extension; and the floor of any design with its two request hooks: the
    same app with two hooks that do nothing; and that of a design with one
    hook (a teardown, the commit registered per request with
    ``after_this_request``).

    :param ctx: the run's context.
    """
    plain = apps.plain_app()
    with_ext = apps.conversation_app()
    baseline = caller(plain, prepare(plain, "/")[0])
    subject = caller(with_ext, prepare(with_ext, "/")[0])
    rows = [
        ratio_row(
            "1",
            "untouched view, extension installed",
            "same app without the extension",
            compare(baseline, subject, ctx.timing),
            1.03,
        )
    ]
    for hooks, what in [
        (2, "floor: two request hooks that do nothing (informative)"),
        (1, "floor: one hook that does nothing, a one-hook design's (informative)"),
    ]:
        hooked = apps.hooked_app(hooks)
        floor = caller(hooked, prepare(hooked, "/")[0])
        comparison = compare(baseline, floor, ctx.timing)
        rows.append(ratio_row("1", what, "same app without the extension", comparison, None))
    return rows


# -- 2 and 3 -------------------------------------------------------------------


def figure_2(ctx: Context) -> list[Row]:
    """Read + write of a long-running conversation per request, in Flask's
    cookie session, against a hand-rolled ``session["tabs"][tab_id]``.

    :param ctx: the run's context.
    """
    tabs = apps.tabs_app()
    tab_id, tab_cookie = apps.start(tabs)
    conv = apps.conversation_app()
    cid, cookie = apps.start(conv)
    baseline = step_caller(tabs, tab_id, tab_cookie, apps.TAB_PARAM)
    floor = floors.session_floor_app()
    return [
        ratio_row(
            "2",
            "read+write, SessionStore (cookie session)",
            'hand-rolled session["tabs"][tab_id]',
            compare(baseline, step_caller(conv, cid, cookie), ctx.timing),
            1.25,
        ),
        ratio_row(
            "2",
            "floor: SessionStore's records read and written inline (informative)",
            'hand-rolled session["tabs"][tab_id]',
            compare(baseline, step_caller(floor, cid, cookie), ctx.timing),
            None,
        ),
    ]


def figure_3(ctx: Context, bookings: t.Sequence[int] = (1, 10)) -> list[Row]:
    """Read + write of a long-running conversation per request in
    ``RedisStore``, against Flask-Session's Redis backend holding the
    hand-rolled dict, in wall time with the server on a CPU of its own;
    once with the user's only booking, once with more bookings open in
    other tabs (which Flask-Session reads and writes whole on every
    request), and once more without hiredis (redis-py's pure-Python parser,
    both sides).

    :param ctx: the run's context.
    :param bookings: how many bookings the user has open, one row each.
    """
    what = "read+write, RedisStore (namespace in its own cookie)"
    why = redis_missing(ctx)
    if why:
        return [skipped("3", what, why)]
    # (bookings open, hiredis, namespace from a loader instead of a cookie)
    runs = [(n, True, False) for n in bookings]
    if hiredis_installed():
        runs.append((bookings[0], False, False))
    runs.append((bookings[0], True, True))
    rows = []
    for open_bookings, with_hiredis, loader in runs:
        tabs = apps.tabs_app(session_redis=ctx.redis_client(with_hiredis))
        tab_id, tab_cookie = apps.start(tabs)
        prefix = f"bench3-{open_bookings}-{with_hiredis}-{loader}:"
        conv = apps.conversation_app(
            redis_store(ctx, prefix, with_hiredis), namespace="bench-user" if loader else None
        )
        cid, cookie = apps.start(conv)
        for _ in range(open_bookings - 1):
            _, tab_cookie = apps.start(tabs, tab_cookie)
            _, cookie = apps.start(conv, cookie)
        suffix = "" if open_bookings == 1 else f", {open_bookings} bookings open"
        if not with_hiredis:
            suffix += ", without hiredis"
        label = what + suffix
        if loader:
            # What the namespace cookie costs: the same request without it.
            label = "read+write, RedisStore, namespace from a loader, no cookie (informative)"
        baseline = step_caller(tabs, tab_id, tab_cookie, apps.TAB_PARAM)
        first = (open_bookings, with_hiredis, loader) == runs[0]
        rows.append(
            _wall_row(
                ctx,
                label,
                baseline,
                step_caller(conv, cid, cookie),
                1.0 if first else None,
                bookings=open_bookings,
                hiredis=with_hiredis,
                loader=loader,
            )
        )
        if first:
            # The same booking, read and written by the floor.
            floor = floors.redis_floor_app(ctx.redis_client(), prefix)
            rows.append(
                _wall_row(
                    ctx,
                    "floor: RedisStore's two round trips written inline (informative)",
                    baseline,
                    step_caller(floor, cid, cookie),
                    None,
                    bookings=open_bookings,
                    hiredis=with_hiredis,
                    loader=loader,
                )
            )
    return rows


def _wall_row(
    ctx: Context,
    what: str,
    baseline: t.Callable[[], None],
    subject: t.Callable[[], None],
    limit: float | None,
    **extra: t.Any,
) -> Row:
    """A row of figure 3: ``subject`` against the Flask-Session request
    ``baseline`` in wall time, this process off the Redis server's CPU.
    """
    with ctx.off_redis_cpu():
        comparison = compare(baseline, subject, ctx.timing, clock="wall")
    row = ratio_row("3", what, "Flask-Session Redis, hand-rolled tabs dict", comparison, limit)
    row.extra.update(extra, redis_cpu=ctx.redis_cpu)
    return row


# -- 4 -------------------------------------------------------------------------


def populated(store: t.Any, live: int, limit: int) -> tuple[t.Callable[[], None], Flask]:
    """An app whose namespace holds ``live`` conversations, and the call
    that steps the first one.
    """
    app = apps.conversation_app(store, CONVERSATION_MAX_COUNT=limit)
    cid, cookie = apps.start(app)
    for _ in range(live - 1):
        apps.start(app, cookie)
    return step_caller(app, cid, cookie), app


def figure_4(ctx: Context) -> list[Row]:
    """The cost of one read + write against the number of live
    conversations in the namespace, for ``MemoryStore`` and ``RedisStore``.

    :param ctx: the run's context.
    """
    from flask_conversation.stores import MemoryStore

    limit = max(ctx.counts) + 8
    rows: list[Row] = []
    builders: dict[str, tuple[t.Callable[[str], t.Any], t.Any]] = {
        "MemoryStore": (lambda prefix: MemoryStore(max_size=limit * 4), "cpu"),
    }
    why = redis_missing(ctx)
    if why is None:
        builders["RedisStore"] = (
            lambda prefix: redis_store(ctx, prefix),
            redis_cpu_clock(ctx.redis_client()),
        )
    for name, (build, clock) in builders.items():
        baseline, _ = populated(build("bench4-base:"), 1, limit)
        for live in ctx.counts:
            subject, _ = populated(build(f"bench4-{live}:"), live, limit)
            top = live == max(ctx.counts)
            rows.append(
                ratio_row(
                    "4",
                    f"read+write, {name}, {live} live in the namespace",
                    "1 live conversation",
                    compare(baseline, subject, ctx.timing, clock=clock),
                    1.10 if top else None,
                )
            )
            rows[-1].extra.update(store=name, live=live)
    if why is not None:
        rows.append(skipped("4", "RedisStore rows", why))
    return rows


# -- 5 -------------------------------------------------------------------------


def _server_counts(client: redis.Redis) -> tuple[int, int]:
    info = client.info("stats")
    return int(info["total_reads_processed"]), int(info["total_commands_processed"])


def figure_5(ctx: Context, requests: int = 200) -> list[Row]:
    """Round trips to Redis per request, counted by the server: its read
    events (one per request the client sends, pipelined commands arrive
    together) and its commands.

    :param ctx: the run's context.
    :param requests: requests per count.
    """
    what = "Redis round trips per request"
    why = redis_missing(ctx)
    if why:
        return [skipped("5", what, why)]
    app = apps.conversation_app(redis_store(ctx, "bench5:"))
    cid, cookie = apps.start(app)
    cases = {
        "use": step_caller(app, cid, cookie),
        "no use (names a cid)": caller(
            app, prepare(app, "/", query={"cid": cid}, cookie=cookie)[0]
        ),
        "no use (no cid)": caller(app, prepare(app, "/", cookie=cookie)[0]),
    }
    try:
        from examples.booking import create_app as create_example

        from .example import open_booking
    except ImportError:
        pass
    else:
        # The example's page also lists the user's open bookings.
        example = create_example(
            {"CONVERSATION_STORE": "redis", "CONVERSATION_REDIS": ctx.redis_url}
        )
        path, cookie = open_booking(app=example)
        page, _, query = path.partition("?")
        cases["use (booking example review page, informative)"] = caller(
            example,
            prepare(example, page, query=dict([query.split("=", 1)]), cookie=cookie)[0],
            expect_header=HEADER,
        )
    monitor = ctx.redis_client()
    try:
        # What reading the counters costs by itself.
        first = _server_counts(monitor)
        second = _server_counts(monitor)
        idle = (second[0] - first[0], second[1] - first[1])
        rows = []
        for name, call in cases.items():
            before = _server_counts(monitor)
            for _ in range(requests):
                call()
            after = _server_counts(monitor)
            trips = (after[0] - before[0] - idle[0]) / requests
            commands = (after[1] - before[1] - idle[1]) / requests
            limit = None if "informative" in name else 2 if name == "use" else 0
            rows.append(
                Row(
                    figure="5",
                    what=f"{what}, {name}",
                    baseline="",
                    result=f"{trips:g} round trips",
                    target="" if limit is None else f"<= {limit}",
                    met=None if limit is None else trips <= limit,
                    absolute=f"{commands:g} commands",
                    value=trips,
                    extra={"commands": commands, "requests": requests},
                )
            )
        return rows
    finally:
        monitor.close()


# -- 8 -------------------------------------------------------------------------


def figure_8(ctx: Context) -> list[Row]:
    """Read + write with a server-side store, the namespace token in a
    cookie of its own, against the same application keeping the token in
    Flask's cookie session (``CONVERSATION_COOKIE_NAME = None``), which
    every request then decodes, and for ``RedisStore`` in a Flask-Session
    Redis session, which every request then reads and writes back.

    :param ctx: the run's context.
    """
    from flask_conversation.stores import MemoryStore

    cases: list[tuple[str, str, t.Callable[[str], t.Any], t.Any, dict[str, t.Any]]] = [
        ("MemoryStore", "Flask's cookie session", lambda p: MemoryStore(), "cpu", {})
    ]
    why = redis_missing(ctx)
    if why is None:
        clock = redis_cpu_clock(ctx.redis_client())
        cases.append(
            ("RedisStore", "Flask's cookie session", lambda p: redis_store(ctx, p), clock, {})
        )
        session_redis = {"SESSION_TYPE": "redis", "SESSION_REDIS": ctx.redis_client()}
        cases.append(
            (
                "RedisStore",
                "a Flask-Session Redis session",
                lambda p: redis_store(ctx, p),
                clock,
                session_redis,
            )
        )
    rows = []
    for i, (name, where, build, clock, session_config) in enumerate(cases):
        in_session = apps.conversation_app(
            build(f"bench8-{i}s:"), CONVERSATION_COOKIE_NAME=None, **session_config
        )
        if session_config:
            from flask_session import Session

            Session(in_session)
        own = apps.conversation_app(build(f"bench8-{i}c:"))
        session_cid, session_cookie = apps.start(in_session)
        cid, cookie = apps.start(own)
        rows.append(
            ratio_row(
                "8",
                f"read+write, {name}, namespace in its own cookie",
                f"namespace in {where}",
                compare(
                    step_caller(in_session, session_cid, session_cookie),
                    step_caller(own, cid, cookie),
                    ctx.timing,
                    clock=clock,
                ),
                # Decoding a session that holds only the token costs little:
                # the saving there is within the machine's A/A noise.
                1.0 if session_config else 1.03,
            )
        )
        rows[-1].extra["store"] = name
    if why is not None:
        rows.append(skipped("8", "RedisStore rows", why))
    return rows


# -- 7 -------------------------------------------------------------------------


def _value(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=100))


def _cookie_sizes(app: Flask, count: int) -> list[int]:
    rng = random.Random(7)
    sizes = []
    cookie = ""
    for _ in range(count):
        _, cookie = apps.start(app, cookie, value=_value(rng))
        sizes.append(len(apps.cookie_value(cookie)))
    return sizes


def figure_7(ctx: Context, count: int = 10) -> list[Row]:
    """Bytes each long-running conversation holding a 100-byte value adds
    to Flask's session cookie, next to a hand-rolled tab holding it.

    :param ctx: the run's context.
    :param count: conversations begun one after the other.
    """
    ours = _cookie_sizes(apps.conversation_app(), count)
    theirs = _cookie_sizes(apps.tabs_app(), count)
    per = (ours[-1] - ours[0]) / (count - 1)
    per_tab = (theirs[-1] - theirs[0]) / (count - 1)
    return [
        Row(
            figure="7",
            what="session cookie bytes per conversation (100-byte value)",
            baseline="hand-rolled tab holding the same value",
            result=f"{per:.0f} bytes",
            absolute=(
                f"hand-rolled {per_tab:.0f} bytes/tab; first conversation"
                f" {ours[0]} bytes (hand-rolled {theirs[0]})"
            ),
            value=per,
            extra={"cookie_sizes": ours, "hand_rolled_sizes": theirs},
        )
    ]
