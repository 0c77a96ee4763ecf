"""A per-process store: a scan-resistant LRU over conversation records."""

from __future__ import annotations

import dataclasses
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
    every namespace together, at most ``max_size`` entries. Expired records
    are removed, and reported, by the next commit in their namespace or by
    :meth:`purge`.

    When it is full, the eviction resists floods (a segmented LRU): a
    record that only the request which wrote it has used is *on probation*;
    once a later request loads it or writes it again, it is *protected*, and
    so is a new child of a protected root.
    The least recently used record on probation goes first; a protected one
    goes only when none is left on probation. So a flood of conversations
    that each live for one request (a client begin after begin without a
    cookie) evicts only its own kind, never a conversation a user has come
    back to.

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
        # Least recently used first. A key is in one of the two at a time.
        self._probation: OrderedDict[tuple[str, str], ConversationRecord] = OrderedDict()
        self._protected: OrderedDict[tuple[str, str], ConversationRecord] = OrderedDict()
        # namespace -> ids, so that listing a namespace does not scan them all
        self._index: dict[str, set[str]] = {}
        # namespace -> a time no record of it expires before (a lower bound:
        # renewing or deleting records only moves the true earliest later),
        # so that a commit knows without a scan that nothing has expired.
        self._earliest: dict[str, float] = {}
        self._mutex = threading.Lock()
        self._locks = LocalLocks()

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)

    def protected(self, namespace: str, cid: str) -> bool:
        """Whether a record is protected from floods: a request after the
        one that wrote it has used it.

        :param namespace: the namespace of the record.
        :param cid: the conversation id.
        """
        with self._mutex:
            return (namespace, cid) in self._protected

    def _get(self, key: tuple[str, str]) -> ConversationRecord | None:
        record = self._protected.get(key)
        return record if record is not None else self._probation.get(key)

    def _use(self, key: tuple[str, str], record: ConversationRecord) -> None:
        # Used again: protected, and the most recently used.
        self._probation.pop(key, None)
        self._protected[key] = record
        self._protected.move_to_end(key)

    def _drop(self, key: tuple[str, str]) -> None:
        if self._probation.pop(key, None) is None:
            del self._protected[key]
        ids = self._index[key[0]]
        ids.discard(key[1])
        if not ids:
            del self._index[key[0]]
            self._earliest.pop(key[0], None)

    def _evict(self, keep: tuple[str, str]) -> None:
        while len(self) > self.max_size:
            victims = iter(self._probation or self._protected)
            victim = next(victims)
            if victim == keep:
                # Never the record being written: its request was promised it.
                victim = next(victims, None) or next(iter(self._protected))
            self._drop(victim)

    def load(self, namespace: str, cid: str) -> ConversationRecord | None:
        key = (namespace, cid)
        with self._mutex:
            record = self._get(key)
            if record is None:
                return None
            self._use(key, record)
            # Records are immutable in practice; a copy keeps it that way.
            return _copy(record)

    def save(self, record: ConversationRecord) -> None:
        key = (record.namespace, record.id)
        with self._mutex:
            if self._get(key) is not None or (record.namespace, record.root_id) in self._protected:
                # Written again, or a new child in a stack a user came back to.
                self._use(key, _copy(record))
            else:
                self._probation[key] = _copy(record)
            self._index.setdefault(record.namespace, set()).add(record.id)
            earliest = self._earliest.get(record.namespace)
            if earliest is None or record.expires_at < earliest:
                self._earliest[record.namespace] = record.expires_at
            self._evict(key)

    def delete(self, namespace: str, cid: str) -> None:
        with self._mutex:
            if self._get((namespace, cid)) is not None:
                self._drop((namespace, cid))

    def list_namespace(self, namespace: str) -> list[ConversationRecord]:
        with self._mutex:
            rv = []
            for cid in self._index.get(namespace, ()):
                record = self._get((namespace, cid))
                assert record is not None
                rv.append(_copy(record))
            return rv

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
                    t.cast(ConversationRecord, self._get((namespace, cid))).expires_at
                    for cid in ids
                )
        return destroyed

    def namespaces(self) -> dict[str, int]:
        with self._mutex:
            return {ns: len(ids) for ns, ids in self._index.items()}

    def move_namespace(self, old: str, new: str, timeout: float) -> None:
        # As the default, but deleting first: nothing here can fail between
        # the two steps, and the store never holds both copies, which could
        # evict other users' conversations from a full store.
        tokens = self.lock_namespace(old, timeout)
        try:
            records = self.list_namespace(old)
            for record in records:
                self.delete(old, record.id)
            for record in records:
                self.save(dataclasses.replace(record, namespace=new))
        finally:
            for root_id, token in tokens.items():
                self.unlock(old, root_id, token)

    def lock(self, namespace: str, root_id: str, timeout: float) -> str | None:
        return self._locks.acquire(namespace, root_id, timeout)

    def unlock(self, namespace: str, root_id: str, token: str) -> None:
        self._locks.release(namespace, root_id, token)


def _copy(record: ConversationRecord) -> ConversationRecord:
    # Every field is immutable (the data is serialized text), so a shallow
    # copy fully isolates the caller from the stored entry.
    return ConversationRecord(**vars(record))
