"""``python -m bench.compare BEFORE.json AFTER.json``: plot two runs of
``python -m bench`` side by side (the Redis and HTTP figures, before and
after a change), for the performance page.
"""

from __future__ import annotations

import argparse
import json
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The bars: a label, how to find the row, and the target.
RATIOS: list[tuple[str, str, str, float]] = [
    ("read+write, wall time\n(fig. 3, <= 1.00)", "3", "Flask-Session", 1.00),
    ("Redis server time\n(fig. 9, <= 3.00)", "9", "Flask-Session", 3.00),
    ("HTTP req/s\n(fig. 6, >= 0.90)", "6", "Flask-Session", 0.90),
]


def _row(rows: list[dict[str, t.Any]], figure: str, baseline: str) -> dict[str, t.Any] | None:
    for row in rows:
        if row["figure"] == figure and baseline in row["baseline"] and row.get("value"):
            return row
    return None


def plot(before: dict[str, t.Any], after: dict[str, t.Any], path: Path) -> None:
    """Draw the ratios of both runs against their targets, and the Redis
    server time per request of each next to its baseline's.

    :param before: the results JSON of the run before.
    :param after: the results JSON of the run after.
    :param path: the PNG to write.
    :raise ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 4), layout="constrained", width_ratios=(3, 2)
    )
    width = 0.38
    for i, (_, figure, baseline, target) in enumerate(RATIOS):
        for offset, run, name, color in (
            (-width / 2, before, "before", "#bbbbbb"),
            (width / 2, after, "after", "#3a7ebf"),
        ):
            row = _row(run["rows"], figure, baseline)
            if row is None:
                continue
            left.bar(i + offset, row["value"], width, color=color, label=name if i == 0 else None)
            left.text(i + offset, row["value"], f"{row['value']:.2f}", ha="center", va="bottom")
        left.hlines(target, i - 0.45, i + 0.45, colors="black", linestyles="--", linewidth=1)
    left.set_xticks(range(len(RATIOS)), [r[0] for r in RATIOS])
    left.set(
        ylabel="RedisStore / hand-rolled Flask-Session",
        title="Ratios (dashed: target; log scale)",
        yscale="log",
    )
    left.legend()
    names, values, colors = [], [], []
    for name, run in (("before", before), ("after", after)):
        row = _row(run["rows"], "9", "Flask-Session")
        if row is None:
            continue
        names += [f"RedisStore\n{name}", f"Flask-Session\n{name}"]
        values += [row["extra"]["subject"], row["extra"]["baseline"]]
        colors += ["#3a7ebf" if name == "after" else "#bbbbbb", "#7fbf7f"]
    right.bar(range(len(values)), values, color=colors)
    for i, v in enumerate(values):
        right.text(i, v, f"{v:.1f}", ha="center", va="bottom")
    right.set_xticks(range(len(names)), names)
    right.set(ylabel="us of Redis per request (commandstats)", title="Redis server time")
    for ax in (left, right):
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: t.Sequence[str] | None = None) -> int:
    """Read two results files and write the plot.

    :param argv: the arguments, by default ``sys.argv[1:]``.
    """
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    p.add_argument("before", type=Path, help="results JSON of the run before")
    p.add_argument("after", type=Path, help="results JSON of the run after")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=ROOT / "docs" / "_static" / "bench-redis-before-after.png",
        help="the PNG (default: docs/_static/bench-redis-before-after.png)",
    )
    args = p.parse_args(argv)
    plot(json.loads(args.before.read_text()), json.loads(args.after.read_text()), args.output)
    print(f"plot: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
