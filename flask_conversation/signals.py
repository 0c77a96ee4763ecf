"""Signals sent by Flask-Conversation, in their own :mod:`blinker`
namespace. Each is sent with the application as sender.

.. code-block:: python

    from flask_conversation import conversation_destroyed

    @conversation_destroyed.connect_via(app)
    def log_destroyed(app, cid, namespace, reason):
        app.logger.info("conversation %s destroyed (%s)", cid, reason)
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent when a conversation became long-running, once its id is set, with
#: ``conversation``: the :class:`~flask_conversation.Conversation`.
conversation_begun = _signals.signal("conversation-begun")

#: Sent when :meth:`~flask_conversation.Conversation.end` is called on a
#: long-running conversation, with ``conversation``: the one that ends.
conversation_ended = _signals.signal("conversation-ended")

#: Sent once for each long-running conversation that the extension removes
#: from the store, after the request committed, with ``cid``, ``namespace``
#: and ``reason``: ``"ended"``, ``"expired"``, ``"evicted"`` or ``"cleared"``.
conversation_destroyed = _signals.signal("conversation-destroyed")
