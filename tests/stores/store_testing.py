"""What the store tests build records with."""

from __future__ import annotations

from conftest import FakeClock

from flask_conversation.stores.base import ConversationStore
from flask_conversation.stores.memory import MemoryStore
from flask_conversation.stores.records import CommitBatch
from flask_conversation.stores.records import ConversationRecord
from flask_conversation.stores.records import Destroyed


class PlanReference(MemoryStore):
    """A ``MemoryStore`` whose commits take the base class's path:
    :func:`~flask_conversation.stores.rules.plan_commit` itself, with no
    shortcut, which the stores' fast paths are held against.
    """

    def apply_batch(self, namespace: str, batch: CommitBatch) -> Destroyed:
        return ConversationStore.apply_batch(self, namespace, batch)


class Records:
    """Builds records in one namespace at the clock's current time."""

    def __init__(self, clock: FakeClock, namespace: str = "ns") -> None:
        self.clock = clock
        self.namespace = namespace

    def __call__(
        self,
        cid: str,
        parent: ConversationRecord | None = None,
        *,
        data: str = '{"n":1}',
        timeout: float = 60.0,
        ended: bool = False,
        description: str | None = None,
        namespace: str | None = None,
    ) -> ConversationRecord:
        now = self.clock()
        return ConversationRecord(
            id=cid,
            namespace=namespace if namespace is not None else self.namespace,
            parent_id=None if parent is None else parent.id,
            root_id=cid if parent is None else parent.root_id,
            depth=0 if parent is None else parent.depth + 1,
            data=data,
            description=description,
            timeout=timeout,
            created_at=now,
            last_access=now,
            ended=ended,
        )
