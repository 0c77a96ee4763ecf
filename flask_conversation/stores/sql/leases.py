"""Stack locks as leases: a row in ``<prefix>leases`` per locked stack,
holding its owner's random token and when the lease runs out.

A lease is taken with one statement (an insert that, on conflict, takes
the row over only if its lease ran out) and released with one (a delete
that names the token). Nothing is held between statements: no database
lock and no connection survives the transaction that took the lease, so
the store works behind connection poolers. A request that waits for a
stack asks again after pauses that grow to :data:`LONGEST_PAUSE`, so that
a waiter asks the database at most about 20 times a second.

Leases use the real time of the application's machines (kept in step by
NTP), never the store's clock, which tests may stop.
"""

from __future__ import annotations

import secrets
import time
import typing as t

#: The first pause between two attempts to take a lease, in seconds.
FIRST_PAUSE = 0.005
#: The longest pause: a waiter makes at most 1 / LONGEST_PAUSE attempts a
#: second once its pauses have grown.
LONGEST_PAUSE = 0.05


def new_token() -> str:
    """A random owner token for a lease."""
    return secrets.token_hex(16)


def real_time() -> float:
    """The real time, in seconds since the epoch, for leases."""
    return time.time()


def waits(timeout: float) -> t.Iterator[None]:
    """Yield at once, then after pauses that double from
    :data:`FIRST_PAUSE` up to :data:`LONGEST_PAUSE`, until ``timeout``
    seconds have passed; the last time at the deadline.

    :param timeout: seconds to keep trying.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = FIRST_PAUSE
    while True:
        yield
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_PAUSE)
