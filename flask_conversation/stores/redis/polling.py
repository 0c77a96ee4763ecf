"""How a request waits for a stack lock that another request holds:
asking Redis again after growing pauses, so that a waiting request costs
the server at most about 20 calls a second instead of hammering it.
"""

from __future__ import annotations

import random
import time
import typing as t


def waits(timeout: float, longest: float) -> t.Iterator[None]:
    """Yield at once, then after pauses growing from 10 ms to ``longest``
    (each lengthened by up to a tenth at random, so that waiters spread
    out), until ``timeout`` seconds have passed, the last time at the
    deadline: the attempts of one wait.

    :param timeout: seconds to wait, real time.
    :param longest: the longest pause, in seconds.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.01
    while True:
        yield
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(pause * random.uniform(1.0, 1.1), left))
        pause = min(pause * 2, longest)
