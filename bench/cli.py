"""``python -m bench``: run the figures, print the table, write the JSON
results and the plot of figure 4.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
import typing as t
from pathlib import Path

from . import figures
from . import http
from . import report
from . import server_time
from . import sql
from .context import Context
from .redis_server import DEFAULT_BINARY
from .redis_server import own_cpu
from .redis_server import RedisServer
from .results import Row
from .timing import Settings

ROOT = Path(__file__).resolve().parent.parent
ALL = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def parser() -> argparse.ArgumentParser:
    """The command line options."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Measure what Flask-Conversation costs a request. Every figure is a"
            " ratio against a baseline measured in the same run; absolute"
            " numbers are specific to this machine."
        ),
    )
    p.add_argument("--quick", action="store_true", help="few short rounds, for a smoke run")
    p.add_argument("--figures", default=",".join(ALL), help="comma-separated figures to run")
    p.add_argument("--rounds", type=int, help="alternating rounds per in-process figure")
    p.add_argument("--batch-seconds", type=float, help="duration of one timed batch")
    p.add_argument("--counts", type=_ints, help="live conversations of figure 4, e.g. 1,10,100")
    p.add_argument("--http-rounds", type=int, help="alternating wrk runs of figure 6")
    p.add_argument("--http-seconds", type=float, help="length of one wrk run")
    p.add_argument("--redis-server", default=DEFAULT_BINARY, help="redis-server executable")
    p.add_argument(
        "--shared-cpu",
        action="store_true",
        help="do not pin redis-server to a CPU of its own (it is, with taskset and 2+ CPUs)",
    )
    p.add_argument(
        "--json",
        type=Path,
        help="results file (default: bench/results/results-<time>.json)",
    )
    p.add_argument(
        "--plot",
        type=Path,
        help=(
            "PNG of figure 4 (default: docs/_static/bench-live-conversations.png;"
            " with --quick, bench/results/ so that the docs' plot stays)"
        ),
    )
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--rst", action="store_true", help="also print the table as reST")
    return p


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the benchmark.

    :param argv: the arguments, by default ``sys.argv[1:]``.
    """
    args = parser().parse_args(argv)
    quick = args.quick
    timing = Settings(
        rounds=args.rounds or (3 if quick else 31),
        batch_seconds=args.batch_seconds or (0.02 if quick else 0.06),
        min_calls=5 if quick else 20,
    )
    counts = args.counts or ((1, 10, 100) if quick else (1, 10, 100, 1000))
    http_rounds = args.http_rounds or (1 if quick else 5)
    http_seconds = args.http_seconds or (1 if quick else 5)
    wanted = {f.strip() for f in args.figures.split(",")}
    unknown = wanted - set(ALL)
    if unknown:
        print(f"unknown figures: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    rows: list[Row] = []
    started = time.time()
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        ctx = Context(timing=timing, counts=counts)
        if wanted & {"3", "4", "5", "6", "8", "9"}:
            cpu = None if args.shared_cpu else own_cpu()
            try:
                ctx.redis_url = stack.enter_context(RedisServer(args.redis_server, cpu)).url
                ctx.redis_cpu = cpu
            except RuntimeError as e:
                ctx.redis_error = str(e)
        if wanted & {"10", "11"}:
            try:
                from tests.sql_servers import PostgresServer

                postgres = stack.enter_context(PostgresServer())
            except (ImportError, RuntimeError, OSError) as e:
                ctx.postgres_error = str(e)
            else:
                ctx.postgres_url = postgres.url
                assert postgres.process is not None
                ctx.postgres_pid = postgres.process.pid
        steps: list[tuple[str, t.Callable[[], list[Row]]]] = [
            ("1", lambda: figures.figure_1(ctx)),
            ("2", lambda: figures.figure_2(ctx)),
            ("3", lambda: figures.figure_3(ctx)),
            ("4", lambda: figures.figure_4(ctx)),
            ("5", lambda: figures.figure_5(ctx, requests=20 if quick else 200)),
            (
                "6",
                lambda: http.figure_6(ctx.redis_url, rounds=http_rounds, seconds=http_seconds),
            ),
            ("7", lambda: figures.figure_7(ctx)),
            ("8", lambda: figures.figure_8(ctx)),
            (
                "9",
                lambda: server_time.figure_9(
                    ctx, requests=200 if quick else 2000, rounds=1 if quick else 7
                ),
            ),
            ("10", lambda: sql.figure_10(ctx)),
            ("11", lambda: sql.figure_11(ctx)),
        ]
        for figure, run in steps:
            if figure in wanted:
                print(f"figure {figure} ...", file=sys.stderr, flush=True)
                rows.extend(run())

    load_after = os.getloadavg()[0]
    print(f"Flask-Conversation benchmarks ({time.time() - started:.0f} s)")
    print("Ratios are subject / baseline, medians of alternating rounds.")
    print(
        "Absolute numbers are specific to this machine and its load"
        f" ({os.cpu_count()} CPUs, load average {load_before:.1f} before,"
        f" {load_after:.1f} after; redis-server on"
        f" {'CPU ' + str(ctx.redis_cpu) if ctx.redis_cpu is not None else 'any CPU'}).\n"
    )
    print(report.table(rows))
    if args.rst:
        print()
        print(report.rst_table(rows))

    settings = dataclasses.asdict(timing) | {
        "counts": counts,
        "http_rounds": http_rounds,
        "http_seconds": http_seconds,
        "quick": quick,
        "load_average": [load_before, load_after],
        "cpus": os.cpu_count(),
        "redis_cpu": ctx.redis_cpu,
    }
    json_path = args.json or (
        ROOT / "bench" / "results" / time.strftime("results-%Y%m%dT%H%M%S.json")
    )
    report.write_json(rows, json_path, settings)
    print(f"\nresults: {json_path}")
    if not args.no_plot:
        plot_path = args.plot or (
            ROOT / "bench" / "results" / "bench-live-conversations.png"
            if quick
            else ROOT / "docs" / "_static" / "bench-live-conversations.png"
        )
        try:
            if report.plot(rows, plot_path):
                print(f"plot: {plot_path}")
        except ImportError:
            print('plot: skipped, matplotlib is not installed (pip install -e ".[bench]")')
    return 0
