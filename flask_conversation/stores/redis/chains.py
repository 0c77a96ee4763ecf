"""What a process remembers of the conversations it has seen in
:class:`~flask_conversation.stores.RedisStore`: their chains, so that the
plain-command path (:mod:`.watched`) knows which stack to lock.
"""

from __future__ import annotations

import typing as t

from ..records import ConversationRecord


class Chains:
    """The chains (ids from the root down) of the conversations this
    process has seen. A conversation's ancestors never change, so a chain
    stays true while its conversation lives; the plain-command path checks
    every link it loads anyway, so a stale chain only costs a detour
    through the scripts.

    :param limit: forget everything once this many chains are known.
    """

    def __init__(self, limit: int = 65536) -> None:
        self.limit = limit
        self._chains: dict[tuple[str, str], tuple[str, ...]] = {}

    def get(self, namespace: str, cid: str) -> tuple[str, ...] | None:
        """The chain of ``cid``, if known.

        :param namespace: its namespace.
        :param cid: the conversation id.
        """
        return self._chains.get((namespace, cid))

    def remember(self, namespace: str, ids: tuple[str, ...]) -> None:
        """Know the chain ``ids`` of its last id.

        :param namespace: its namespace.
        :param ids: the ids from the root down.
        """
        if len(self._chains) >= self.limit:
            self._chains.clear()
        self._chains[namespace, ids[-1]] = ids

    def forget(self, namespace: str, cid: str) -> None:
        """Forget the chain of ``cid``: it proved wrong or gone, and the
        scripts decide until they load it again.

        :param namespace: its namespace.
        :param cid: the conversation id.
        """
        self._chains.pop((namespace, cid), None)

    def learn(self, namespace: str, saves: t.Iterable[ConversationRecord]) -> None:
        """Know the chains of records a commit writes, parents first.

        :param namespace: their namespace.
        :param saves: the records.
        """
        for record in saves:
            if (namespace, record.id) in self._chains:
                continue
            if record.parent_id is None:
                self.remember(namespace, (record.id,))
            else:
                parent = self._chains.get((namespace, record.parent_id))
                if parent is not None:
                    self.remember(namespace, (*parent, record.id))
