"""Store failures made visible: the ones a request answers with 503 are
logged on the ``flask_conversation`` logger at ``WARNING``, with the
store's exception, once per request; so is stored data that the store's
serializer cannot read back (see :mod:`.unreadable`).
"""

from __future__ import annotations

import logging
import typing as t

from .errors import ConversationStoreError
from .unreadable import UnreadableData

logger = logging.getLogger("flask_conversation")


class StoreFailureLog:
    """Logs the store failures of one request, the first one only: an
    outage fails every step of a request (the commit, then releasing the
    lock), and one line says it.

    :param store_name: the store's class name, for the message.
    """

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name
        self._logged = False
        # Apart from failures: a request that found unreadable data and
        # then failed to reach the store says both.
        self._unreadable_logged = False

    def reporting(self, during: str) -> _Reporting:
        """A context manager that logs a
        :exc:`~flask_conversation.ConversationStoreError` raised in the
        block, then lets it go on to the client as a 503; and likewise an
        :exc:`~.unreadable.UnreadableData`, which goes on as a 404.

        :param during: what the request was doing, for the message.
        """
        return _Reporting(self, during)

    def log(self, error: BaseException, during: str) -> None:
        """Log ``error``, unless a failure of this request was logged.

        :param error: the store's exception.
        :param during: what the request was doing, for the message.
        """
        if self._logged:
            return
        self._logged = True
        logger.warning(
            "The conversation store (%s) failed while %s: %s",
            self.store_name,
            during,
            error,
            exc_info=error,
        )

    def unreadable(self, error: UnreadableData, during: str) -> None:
        """Log stored data that the serializer cannot read, unless some was
        logged for this request.

        :param error: names the conversation and the cause.
        :param during: what the request was doing, for the message.
        """
        if self._unreadable_logged:
            return
        self._unreadable_logged = True
        logger.warning(
            "The conversation store (%s) holds data its serializer cannot read,"
            " in conversation %r: %s. Found while %s; the request for %r is"
            " answered as for an unknown cid, and the record is left as it is"
            " until it expires.",
            self.store_name,
            error.record_id,
            error.reason,
            during,
            error.cid,
            exc_info=error,
        )


class _Reporting:
    # A class rather than a generator-based context manager: it wraps every
    # store call of every request, and costs a fraction of one.
    __slots__ = ("_log", "_during")

    def __init__(self, log: StoreFailureLog, during: str) -> None:
        self._log = log
        self._during = during

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: t.Any
    ) -> None:
        # Returns None, so never swallows: the error goes on to the client.
        if isinstance(error, ConversationStoreError):
            self._log.log(error, self._during)
        elif isinstance(error, UnreadableData):
            self._log.unreadable(error, self._during)
