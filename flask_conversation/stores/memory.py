"""A per-process store: an LRU over conversation records."""

from __future__ import annotations

import threading
import typing as t
from collections import OrderedDict

from ..serialization import Serializer
from .base import ConversationStore
from .base import system_clock
from .locks import LocalLocks
from .records import CommitBatch
from .records import ConversationRecord
from .records import Destroyed
from .rules import only_saves


class MemoryStore(ConversationStore):
    """Keeps records in this process's memory: one entry per conversation,
    every namespace together, at most ``max_size`` entries (the least
    recently used one is dropped first). Expired records are removed, and
    reported, by the next commit in their namespace or by :meth:`purge`.

    For development, tests and single-process servers: the data is lost on
    restart and not shared between worker processes.

    :param max_size: the most records kept, over all namespaces.
    :param serializer: see :class:`ConversationStore`.
    :param clock: see :class:`ConversationStore`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        max_size: int = 10_000,
        serializer: Serializer | None = None,
        clock: t.Callable[[], float] = system_clock,
    ) -> None:
        super().__init__(serializer, clock)
        if max_size < 1:
            raise ValueError("max_size must be at least 1.")
        self.max_size = max_size
        self._records: OrderedDict[tuple[str, str], ConversationRecord] = OrderedDict()
        # namespace -> ids, so that listing a namespace does not scan them all
        self._index: dict[str, set[str]] = {}
        # namespace -> a time no record of it expires before (a lower bound:
        # renewing or deleting records only moves the true earliest later),
        # so that a commit knows without a scan that nothing has expired.
        self._earliest: dict[str, float] = {}
        self._mutex = threading.Lock()
        self._locks = LocalLocks()

    def __len__(self) -> int:
        return len(self._records)

    def _drop(self, key: tuple[str, str]) -> None:
        del self._records[key]
        ids = self._index[key[0]]
        ids.discard(key[1])
        if not ids:
            del self._index[key[0]]
            self._earliest.pop(key[0], None)

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        key = (namespace, cid)
        with self._mutex:
            record = self._records.get(key)
            if record is None:
                return None
            self._records.move_to_end(key)
            # Records are immutable in practice; a copy keeps it that way.
            return _copy(record)

    def save(self, record: ConversationRecord) -> None:
        key = (record.namespace, record.id)
        with self._mutex:
            self._records[key] = _copy(record)
            self._records.move_to_end(key)
            self._index.setdefault(record.namespace, set()).add(record.id)
            earliest = self._earliest.get(record.namespace)
            if earliest is None or record.expires_at < earliest:
                self._earliest[record.namespace] = record.expires_at
            while len(self._records) > self.max_size:
                self._drop(next(iter(self._records)))

    def delete(self, namespace: str, cid: str) -> None:
        with self._mutex:
            if (namespace, cid) in self._records:
                self._drop((namespace, cid))

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        with self._mutex:
            return [
                _copy(self._records[(namespace, cid)]) for cid in self._index.get(namespace, ())
            ]

    def apply_batch(self, namespace: str, batch: CommitBatch) -> Destroyed:
        # The common request only renews or adds records: when the rules
        # would just save the batch, skip copying the whole namespace to
        # find that out.
        with self._mutex:
            fast = only_saves(
                batch,
                self._index.get(namespace, set()),
                self._earliest.get(namespace, float("inf")),
                self.clock(),
            )
        if fast:
            for record in batch.saves:
                self.save(record)
            return []
        destroyed = super().apply_batch(namespace, batch)
        with self._mutex:
            ids = self._index.get(namespace, ())
            if ids:
                self._earliest[namespace] = min(
                    self._records[(namespace, cid)].expires_at for cid in ids
                )
        return destroyed

    def namespaces(self) -> dict[str, int]:
        with self._mutex:
            return {ns: len(ids) for ns, ids in self._index.items()}

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        return self._locks.acquire(namespace, root_id, timeout)

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        self._locks.release(namespace, root_id, token)


def _copy(record: ConversationRecord) -> ConversationRecord:
    # Every field is immutable (the data is serialized text), so a shallow
    # copy fully isolates the caller from the stored entry.
    return ConversationRecord(**vars(record))
