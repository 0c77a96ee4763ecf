"""Stack locks as leases: a row in ``<prefix>leases`` per locked stack,
holding its owner's random token and when the lease runs out.

A lease is taken with one statement (an insert that, on conflict, takes
the row over only if its lease ran out) and released with one (a delete
that names the token). Nothing is held between statements: no database
lock and no connection survives the transaction that took the lease, so
the store works behind connection poolers. A request that waits for a
stack asks again after pauses that grow
(:func:`~flask_conversation.stores.locks.lock_retries`), so that a waiter
asks the database at most about ten times a second.

Leases use the real time of the application's machines (kept in step by
NTP), never the store's clock, which tests may stop.
"""

from __future__ import annotations

import secrets
import time
import typing as t


def new_token() -> str:
    """A random owner token for a lease."""
    return secrets.token_hex(16)


def real_time() -> float:
    """The real time, in seconds since the epoch, for leases."""
    return time.time()


def lease_params(key: str, token: str, lease: float) -> dict[str, t.Any]:
    """The parameters of the statements that take a lease.

    :param key: the namespace's key.
    :param token: the owner token.
    :param lease: seconds until the lease runs out.
    """
    now = real_time()
    return {"ns": key, "token": token, "until": now + lease, "real_now": now}
