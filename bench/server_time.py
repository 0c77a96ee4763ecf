"""Figure 9: the work one request gives the Redis server, which caps a
whole deployment (one Redis primary serves every app server): the time
the server spends executing the request's commands, from ``INFO
commandstats``, for ``RedisStore`` and for the hand-rolled dict in a
Flask-Session Redis session, and the requests per second one Redis core
could serve at that cost.
"""

from __future__ import annotations

import statistics
import typing as t

from . import apps
from .context import Context
from .context import redis_missing
from .context import redis_store
from .context import step_caller
from .results import Row
from .results import skipped

#: Commands that run scripts: the commands a script calls are counted in
#: their own statistics too, and in the script's time.
SCRIPTS = ("evalsha", "eval", "fcall", "evalsha_ro", "eval_ro", "fcall_ro")

#: What RedisStore sends itself, outside a transaction or a script. The time
#: of an ``EXEC`` includes the commands it ran, which are counted in their
#: own statistics too, like a script's. A script's own calls of these names
#: (rare on the path measured) are counted twice: that only makes
#: RedisStore's figure larger.
SENT = ("set", "watch", "unwatch", "hgetall", "hmget", "hlen", "multi", "exec", *SCRIPTS)


def _usage(client: t.Any) -> tuple[float, float]:
    """Microseconds the server spent in commands sent by clients, and its
    CPU time (user + system, I/O included), in microseconds.
    """
    stats = client.info("commandstats")
    usec = {name.removeprefix("cmdstat_"): float(v["usec"]) for name, v in stats.items()}
    if usec.get("exec"):
        commands = sum(usec.get(name, 0.0) for name in SENT)
    elif any(usec.get(name) for name in SCRIPTS):
        # Only scripts are sent: what the others measure was called from them.
        commands = sum(usec.get(name, 0.0) for name in SCRIPTS)
    else:
        commands = sum(v for name, v in usec.items() if not name.startswith(("info", "config")))
    cpu = client.info("cpu")
    return commands, (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


def _measure(ctx: Context, call: t.Callable[[], None], n: int) -> tuple[float, float]:
    client = ctx.redis_client()
    try:
        client.config_resetstat()
        _, cpu_before = _usage(client)
        for _ in range(n):
            call()
        commands, cpu_after = _usage(client)
        # Reading the statistics costs the same on both sides; it is
        # spread over n requests.
        return commands / n, (cpu_after - cpu_before) / n
    finally:
        client.close()


def figure_9(ctx: Context, requests: int = 2000, rounds: int = 5) -> list[Row]:
    """Server time per request of figure 3's pair, in alternating rounds.

    :param ctx: the run's context.
    :param requests: requests per side and round.
    :param rounds: alternating rounds; the figures are medians.
    """
    what = "Redis server time per request (commandstats)"
    why = redis_missing(ctx)
    if why:
        return [skipped("9", what, why)]
    tabs = apps.tabs_app(session_redis=ctx.redis_client())
    tab_id, tab_cookie = apps.start(tabs)
    conv = apps.conversation_app(redis_store(ctx, "bench9:"))
    cid, cookie = apps.start(conv)
    base_call = step_caller(tabs, tab_id, tab_cookie, apps.TAB_PARAM)
    subj_call = step_caller(conv, cid, cookie)
    # The floor of two script calls: what two calls that do nothing cost
    # the server, next to a GET and a SET of a session-sized value.
    client = ctx.redis_client()
    nothing = client.register_script("return 1")
    value = b"x" * 300

    def empty_scripts() -> None:
        nothing(keys=["bench9:floor"])
        nothing(keys=["bench9:floor"])

    def get_set() -> None:
        client.get("bench9:session")
        client.set("bench9:session", value, ex=3600)

    base: list[tuple[float, float]] = []
    subj: list[tuple[float, float]] = []
    floor: list[tuple[float, float]] = []
    plain: list[tuple[float, float]] = []
    with ctx.off_redis_cpu():
        for i in range(rounds):
            order = [(base, base_call), (subj, subj_call), (plain, get_set), (floor, empty_scripts)]
            for into, call in order if i % 2 == 0 else order[::-1]:
                into.append(_measure(ctx, call, requests))
    client.close()
    ratios = [s[0] / b[0] for s, b in zip(subj, base, strict=True)]
    cpu_ratios = [s[1] / b[1] for s, b in zip(subj, base, strict=True)]
    b_us = statistics.median(b[0] for b in base)
    s_us = statistics.median(s[0] for s in subj)
    b_cpu = statistics.median(b[1] for b in base)
    s_cpu = statistics.median(s[1] for s in subj)
    ratio = statistics.median(ratios)
    cpu_ratio = statistics.median(cpu_ratios)
    floor_ratio = statistics.median(f[0] / p[0] for f, p in zip(floor, plain, strict=True))
    f_us = statistics.median(f[0] for f in floor)
    p_us = statistics.median(p[0] for p in plain)
    ceiling = 1e6 / s_us
    extra = {
        "subject": s_us,
        "baseline": b_us,
        "subject_cpu": s_cpu,
        "baseline_cpu": b_cpu,
        "rounds": ratios,
        "cpu_rounds": cpu_ratios,
        "requests": requests,
        "redis_cpu": ctx.redis_cpu,
        "floor": {"scripts": f_us, "get_set": p_us, "ratio": floor_ratio},
    }
    pair = "Flask-Session Redis, hand-rolled tabs dict"
    return [
        Row(
            figure="9",
            what=f"{what}, RedisStore read+write",
            baseline=pair,
            result=f"{ratio:.2f}",
            target="<= 3.00",
            met=ratio <= 3.0,
            absolute=f"{s_us:.1f} vs {b_us:.1f} us/request",
            value=ratio,
            extra=extra,
        ),
        Row(
            figure="9",
            what="requests/s one Redis core serves, from the line above",
            baseline="",
            result=f"{ceiling:,.0f} req/s",
            target=">= 180,000",
            met=ceiling >= 180_000,
            absolute=f"hand-rolled {1e6 / b_us:,.0f} req/s",
            value=ceiling,
            extra=extra,
        ),
        Row(
            figure="9",
            what="floor: two script calls that do nothing (informative)",
            baseline="a GET and a SET of 300 bytes",
            result=f"{floor_ratio:.2f}",
            absolute=f"{f_us:.1f} vs {p_us:.1f} us; at most {1e6 / f_us:,.0f} req/s per core",
            value=floor_ratio,
            extra=extra,
        ),
        Row(
            figure="9",
            what="Redis CPU per request, I/O included (informative)",
            baseline=pair,
            result=f"{cpu_ratio:.2f}",
            absolute=(
                f"{s_cpu:.1f} vs {b_cpu:.1f} us/request;"
                f" {1e6 / s_cpu:,.0f} vs {1e6 / b_cpu:,.0f} req/s per core"
            ),
            value=cpu_ratio,
            extra=extra,
        ),
    ]
