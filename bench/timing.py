"""Alternating baseline/subject timing: the ratio of each round is taken
from two batches run back to back, so that a machine busy with other work
slows both sides of a ratio alike; the figure is the median over rounds.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
import typing as t

#: One request (or one unit of work) to time.
Call = t.Callable[[], None]

#: The clocks a comparison can use by name. Work done in this thread alone
#: is timed in CPU time, which other processes competing for the cores do
#: not inflate. Work that also makes another process work (a Redis server)
#: is timed with a clock that adds that process's CPU time (see
#: :func:`bench.context.redis_cpu_clock`); ``"wall"`` is there for a quiet
#: machine.
CLOCKS: dict[str, t.Callable[[], float]] = {
    "cpu": time.thread_time,
    "wall": time.perf_counter,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long and how often to measure.

    :param rounds: alternating baseline/subject rounds.
    :param batch_seconds: the target duration of one batch; the number of
        calls in a batch is calibrated once from the baseline.
    :param min_calls: the fewest calls in a batch.
    """

    rounds: int = 31
    batch_seconds: float = 0.06
    min_calls: int = 20


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The result of timing a subject against its baseline.

    :param ratio: median over rounds of subject time / baseline time.
    :param baseline_us: median time of one baseline call, in microseconds.
    :param subject_us: median time of one subject call, in microseconds.
    :param ratios: every round's ratio, for the JSON results.
    :param calls: calls per batch.
    :param clock: the name of the clock, see :data:`CLOCKS`.
    """

    ratio: float
    baseline_us: float
    subject_us: float
    ratios: list[float]
    calls: int
    clock: str = "cpu"


def _batch(call: Call, n: int, clock: t.Callable[[], float] = time.perf_counter) -> float:
    gc.collect()
    start = clock()
    for _ in range(n):
        call()
    return clock() - start


def calibrate(call: Call, settings: Settings) -> int:
    """How many calls make a batch of about ``settings.batch_seconds``.

    :param call: the work to time.
    :param settings: the timing settings.
    """
    n = 10
    while True:
        elapsed = _batch(call, n)
        if elapsed >= 0.05 or n >= 1_000_000:
            break
        n *= 4
    return max(settings.min_calls, int(n * settings.batch_seconds / elapsed))


def compare(
    baseline: Call,
    subject: Call,
    settings: Settings,
    calls: int | None = None,
    clock: str | tuple[str, t.Callable[[], float]] = "cpu",
) -> Comparison:
    """Time ``subject`` against ``baseline`` in alternating batches.

    :param baseline: the reference work.
    :param subject: the work being measured.
    :param settings: the timing settings.
    :param calls: calls per batch; calibrated on the baseline if not given.
    :param clock: a name from :data:`CLOCKS`, or a ``(name, clock)`` pair.
    """
    name, timer = (clock, CLOCKS[clock]) if isinstance(clock, str) else clock
    # Warm both up: imports, caches, connection pools, template compilation.
    for _ in range(5):
        baseline()
        subject()
    n = calls or calibrate(baseline, settings)
    ratios: list[float] = []
    base_times: list[float] = []
    subj_times: list[float] = []
    for i in range(settings.rounds):
        # Alternate which side goes first, so neither always runs warmer.
        if i % 2 == 0:
            b = _batch(baseline, n, timer)
            s = _batch(subject, n, timer)
        else:
            s = _batch(subject, n, timer)
            b = _batch(baseline, n, timer)
        base_times.append(b)
        subj_times.append(s)
        ratios.append(s / b)
    return Comparison(
        ratio=statistics.median(ratios),
        baseline_us=statistics.median(base_times) / n * 1e6,
        subject_us=statistics.median(subj_times) / n * 1e6,
        ratios=ratios,
        calls=n,
        clock=name,
    )
