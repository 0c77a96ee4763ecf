"""Stack locks for the stores that live in one process."""

from __future__ import annotations

import threading


class LocalLocks:
    """Stack locks for one process: one :class:`threading.Condition` per
    held ``(namespace, root_id)``, created on demand and dropped when free,
    so the table never grows past the number of stacks in use.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owners: dict[tuple[str, str], str] = {}
        self._counter = 0

    def acquire(self, namespace: str, root_id: str, timeout: float) -> str | None:
        """Take the lock, waiting up to ``timeout`` seconds.

        :param namespace: the namespace of the stack.
        :param root_id: the id of the stack's root.
        :param timeout: seconds to wait.
        :return: an owner token, or ``None`` on timeout.
        """
        key = (namespace, root_id)
        with self._cond:
            if not self._cond.wait_for(lambda: key not in self._owners, timeout):
                return None
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
        with self._cond:
            if self._owners.get(key) == token:
                del self._owners[key]
                self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._owners)
