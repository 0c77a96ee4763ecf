"""What the SQL store's tests count with: every transaction and statement
an engine runs, seen through SQLAlchemy's event hooks.
"""

from __future__ import annotations

import threading
import typing as t

import sqlalchemy as sa


class StatementLog:
    """Records the transactions (``begin`` events) and the statements
    (``before_cursor_execute`` events, each one round trip) of an engine,
    from every thread, until closed.

    :param engine: the engine to watch.
    """

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.transactions = 0
        self.statements: list[str] = []
        self._mutex = threading.Lock()
        sa.event.listen(engine, "begin", self._begin)
        sa.event.listen(engine, "before_cursor_execute", self._execute)

    def _begin(self, conn: sa.Connection) -> None:
        with self._mutex:
            self.transactions += 1

    def _execute(self, conn: sa.Connection, cursor: t.Any, statement: str, *args: t.Any) -> None:
        with self._mutex:
            self.statements.append(" ".join(statement.split()))

    def take(self) -> tuple[int, list[str]]:
        """The transactions and statements since the last call."""
        with self._mutex:
            counts = (self.transactions, self.statements)
            self.transactions, self.statements = 0, []
        return counts

    def close(self) -> None:
        sa.event.remove(self.engine, "begin", self._begin)
        sa.event.remove(self.engine, "before_cursor_execute", self._execute)

    def __enter__(self) -> StatementLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verbs(statements: list[str]) -> list[str]:
    """The first word of each statement (``SELECT``, ``INSERT``, ...)."""
    return [s.split(" ", 1)[0].upper() for s in statements]
