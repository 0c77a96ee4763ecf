"""The outputs of a run: the printed table, the JSON results and the plot
of figure 4.
"""

from __future__ import annotations

import json
import platform
import typing as t
from pathlib import Path

from .results import Row

COLUMNS = ("#", "what", "baseline", "result", "target", "met", "absolute (this machine)")


def _cells(row: Row) -> tuple[str, ...]:
    met = "" if row.met is None else ("yes" if row.met else "NO")
    return (row.figure, row.what, row.baseline, row.result, row.target, met, row.absolute)


def table(rows: list[Row]) -> str:
    """The rows as a plain-text table.

    :param rows: the results.
    """
    cells = [COLUMNS, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]

    def line(c: t.Sequence[str]) -> str:
        return " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def rst_table(rows: list[Row]) -> str:
    """The rows as a reStructuredText ``list-table``, for the docs.

    :param rows: the results.
    """
    out = [".. list-table::", "    :header-rows: 1", ""]
    for cells in [COLUMNS, *(_cells(r) for r in rows)]:
        out.append(f"    *   - {cells[0]}")
        out.extend(f"        - {c}" if c else "        -" for c in cells[1:])
    return "\n".join(out)


def write_json(rows: list[Row], path: Path, settings: dict[str, t.Any]) -> None:
    """Keep every figure, with the raw rounds, as JSON.

    :param rows: the results.
    :param path: the file to write.
    :param settings: how the run was configured.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": settings,
        "rows": [r.__dict__ for r in rows],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def plot(rows: list[Row], path: Path) -> bool:
    """Plot figures 4 and 11: the ratio to one live conversation, and the
    time of a request, against the number of live conversations, one line
    per store.

    :param rows: the results; only figure 4's and 11's rows are used.
    :param path: the PNG to write.
    :return: ``False`` if there was nothing to plot.
    :raise ImportError: matplotlib is not installed.
    """
    series: dict[str, list[tuple[int, float, float]]] = {}
    for r in rows:
        if r.figure in ("4", "11") and r.value is not None and "store" in r.extra:
            series.setdefault(r.extra["store"], []).append(
                (r.extra["live"], r.value, r.extra["subject"])
            )
    if not series:
        return False

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name, points in series.items():
        points.sort()
        xs = [p[0] for p in points]
        left.plot(xs, [p[1] for p in points], marker="o", label=name)
        right.plot(xs, [p[2] for p in points], marker="o", label=name)
    left.axhline(1.10, color="grey", linestyle="--", linewidth=1, label="target (1.10)")
    left.axhline(1.0, color="grey", linewidth=0.5)
    left.set(
        xscale="log",
        xlabel="live conversations in the namespace",
        ylabel="time / time with 1 live conversation",
        title="Cost of a request, relative",
    )
    right.set(
        xscale="log",
        xlabel="live conversations in the namespace",
        ylabel="CPU microseconds per request (this machine)",
        title="Cost of a request, absolute",
    )
    right.set_ylim(bottom=0)
    ticks = sorted({p[0] for points in series.values() for p in points})
    for ax in (left, right):
        ax.set_xticks(ticks, [str(x) for x in ticks])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
