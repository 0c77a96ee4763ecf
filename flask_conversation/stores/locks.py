"""Stack locks for the stores that live in one process."""

from __future__ import annotations

import threading
import typing as t


class LocalLocks:
    """Stack locks for one process: one :class:`threading.Condition` per
    held ``(namespace, root_id)``, created on demand and dropped when free,
    so the table never grows past the number of stacks in use.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owners: dict[tuple[str, str], str] = {}
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
            self._revoked.discard(token)
            if self._owners.get(key) == token:
                del self._owners[key]
                self._cond.notify_all()

    def revoke(self, namespace: str, keep: t.Iterable[str] = ()) -> None:
        """Take every lock of ``namespace`` away from its holder, except
        the tokens in ``keep``: the namespace was cleared or moved, and
        what its holders would write back is gone.

        :param namespace: the namespace.
        :param keep: tokens of the caller, which stay held.
        """
        kept = set(keep)
        with self._cond:
            for key, token in list(self._owners.items()):
                if key[0] == namespace and token not in kept:
                    del self._owners[key]
                    self._revoked.add(token)
            self._cond.notify_all()

    def revoked(self, tokens: t.Iterable[str]) -> bool:
        """Whether :meth:`revoke` took away one of ``tokens``.

        :param tokens: tokens :meth:`acquire` returned.
        """
        with self._cond:
            return any(token in self._revoked for token in tokens)

    def __len__(self) -> int:
        return len(self._owners)
