"""Store failures made visible: the ones a request answers with 503 are
logged on the ``flask_conversation`` logger at ``WARNING``, with the
store's exception, once per request.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

from .errors import ConversationStoreError

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

    @contextlib.contextmanager
    def reporting(self, during: str) -> t.Iterator[None]:
        """Log a :exc:`~flask_conversation.ConversationStoreError` raised in
        the block, then let it go on to the client as a 503.

        :param during: what the request was doing, for the message.
        """
        try:
            yield
        except ConversationStoreError as e:
            self.log(e, during)
            raise

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
