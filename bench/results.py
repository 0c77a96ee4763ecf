"""What a figure produces: rows of the table, kept as JSON too."""

from __future__ import annotations

import dataclasses
import typing as t


@dataclasses.dataclass
class Row:
    """One line of the results table.

    :param figure: the figure number, with a suffix for its variants.
    :param what: what is measured.
    :param baseline: what it is compared with.
    :param result: the figure as printed (a ratio, a count, bytes).
    :param target: the target as printed, empty when the figure is a report.
    :param met: whether the target is met, ``None`` for reports and skips.
    :param absolute: the machine-specific numbers behind the figure.
    :param value: the figure as a number, for the JSON and the plot.
    :param extra: anything else worth keeping in the JSON (e.g. every
        round's ratio).
    """

    figure: str
    what: str
    baseline: str
    result: str
    target: str = ""
    met: bool | None = None
    absolute: str = ""
    value: float | None = None
    extra: dict[str, t.Any] = dataclasses.field(default_factory=dict)


def skipped(figure: str, what: str, why: str) -> Row:
    """A row for a figure that could not be measured in this run.

    :param figure: the figure number.
    :param what: what would have been measured.
    :param why: the reason, printed in the result column.
    """
    return Row(figure=figure, what=what, baseline="", result=f"skipped: {why}")


def ratio_row(
    figure: str,
    what: str,
    baseline: str,
    comparison: t.Any,
    limit: float | None,
    *,
    at_least: bool = False,
    unit: str | None = None,
) -> Row:
    """A row for a ratio from :func:`bench.timing.compare`.

    :param figure: the figure number.
    :param what: what is measured.
    :param baseline: what it is compared with.
    :param comparison: the :class:`~bench.timing.Comparison`.
    :param limit: the target ratio, ``None`` for a report.
    :param at_least: the target is a minimum (throughput), not a maximum.
    :param unit: the unit of the absolute numbers; by default the clock's
        microseconds per request.
    """
    ratio = comparison.ratio
    if unit is None:
        unit = f"us/request ({comparison.clock})"
    if limit is None:
        target, met = "", None
    elif at_least:
        target, met = f">= {limit:.2f}", ratio >= limit
    else:
        target, met = f"<= {limit:.2f}", ratio <= limit
    return Row(
        figure=figure,
        what=what,
        baseline=baseline,
        result=f"{ratio:.3f}",
        target=target,
        met=met,
        absolute=(f"{comparison.subject_us:.1f} vs {comparison.baseline_us:.1f} {unit}"),
        value=ratio,
        extra={
            "subject": comparison.subject_us,
            "baseline": comparison.baseline_us,
            "unit": unit,
            "rounds": comparison.ratios,
            "calls_per_batch": comparison.calls,
            "clock": comparison.clock,
        },
    )
