"""Waiting for stack locks: the in-process locks of the local stores, and
the pacing of stores whose backend cannot wait.
"""

from __future__ import annotations

import threading
import time
import typing as t

#: The first pause, in seconds, before a busy lock is tried again: most
#: holders are done within milliseconds.
LOCK_RETRY_FIRST = 0.01
#: The longest pause between two tries: a waiting request asks the store at
#: most ten times a second once it has waited a while.
LOCK_RETRY_MAX = 0.1


def lock_retries(timeout: float) -> t.Iterator[None]:
    """Pace the tries of a busy lock: yield at once, then after pauses that
    double from :data:`LOCK_RETRY_FIRST` to :data:`LOCK_RETRY_MAX`, the last
    time at the deadline. Over any second a waiter tries at most 14 times
    (10 a second after the first), so that requests waiting for a busy stack
    do not hammer the store. Uses real time, never a store's clock.

    .. code-block:: python

        for _ in lock_retries(timeout):
            if try_to_take_it():
                return token
        return None

    :param timeout: seconds until the last try.

    .. versionadded:: 0.1
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = LOCK_RETRY_FIRST
    while True:
        yield
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(pause, left))
        pause = min(pause * 2, LOCK_RETRY_MAX)


class _Waiters:
    """The requests waiting for one stack's lock: a condition on the
    shared mutex, and how many sleep on it.
    """

    __slots__ = ("cond", "count")

    def __init__(self, mutex: threading.Lock) -> None:
        self.cond = threading.Condition(mutex)
        self.count = 0


class LocalLocks:
    """Stack locks for one process. Waiters sleep on a condition of their
    own stack, created on demand and dropped when nobody waits, so a release
    wakes one waiter of that stack only (never every waiter of every stack)
    and the tables never grow past the stacks in use.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owners: dict[tuple[str, str], str] = {}
        self._waiting: dict[tuple[str, str], _Waiters] = {}
        self._counter = 0
        # Tokens taken away by revoke() whose holders did not release yet.
        self._revoked: set[str] = set()

    def acquire(self, namespace: str, root_id: str, timeout: float) -> str | None:
        """Take the lock, waiting up to ``timeout`` seconds.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param timeout: seconds to wait.
        :return: an owner token, or ``None`` on timeout.
        """
        key = (namespace, root_id)
        with self._mutex:
            if key in self._owners:
                waiters = self._waiting.get(key)
                if waiters is None:
                    waiters = self._waiting[key] = _Waiters(self._mutex)
                waiters.count += 1
                try:
                    if not waiters.cond.wait_for(lambda: key not in self._owners, timeout):
                        return None
                finally:
                    waiters.count -= 1
                    if not waiters.count:
                        del self._waiting[key]
            self._counter += 1
            token = str(self._counter)
            self._owners[key] = token
            return token

    def release(self, namespace: str, root_id: str, token: str) -> None:
        """Release the lock if ``token`` owns it.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param token: the token :meth:`acquire` returned.
        """
        key = (namespace, root_id)
        with self._mutex:
            self._revoked.discard(token)
            if self._owners.get(key) == token:
                del self._owners[key]
                self._wake(key)

    def revoke(self, namespace: str, keep: t.Iterable[str] = ()) -> None:
        """Take every lock of ``namespace`` away from its holder, except
        the tokens in ``keep``: the namespace was cleared or moved, and
        what its holders would write back is gone.

        :param namespace: the namespace.
        :param keep: tokens of the caller, which stay held.
        """
        kept = set(keep)
        with self._mutex:
            for key, token in list(self._owners.items()):
                if key[0] == namespace and token not in kept:
                    del self._owners[key]
                    self._revoked.add(token)
                    self._wake(key)

    def revoked(self, tokens: t.Iterable[str]) -> bool:
        """Whether :meth:`revoke` took away one of ``tokens``.

        :param tokens: tokens :meth:`acquire` returned.
        """
        with self._mutex:
            return any(token in self._revoked for token in tokens)

    def _wake(self, key: tuple[str, str]) -> None:
        # Called with the mutex held. One waiter can take the lock; the
        # others keep sleeping.
        waiters = self._waiting.get(key)
        if waiters is not None:
            waiters.cond.notify()

    def __len__(self) -> int:
        return len(self._owners)
