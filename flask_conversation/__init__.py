"""Conversation scope for Flask: state that belongs to one task in one
browser tab, not to the whole session.
"""

from __future__ import annotations

from .context import conversation_proxy as conversation
from .conversation import Conversation as Conversation
from .decorators import begin_conversation as begin_conversation
from .decorators import conversation_readonly as conversation_readonly
from .decorators import conversation_required as conversation_required
from .decorators import end_conversation as end_conversation
from .errors import BusyConversation as BusyConversation
from .errors import ContextNotActive as ContextNotActive
from .errors import ConversationError as ConversationError
from .errors import ConversationIdInUse as ConversationIdInUse
from .errors import ConversationLimitReached as ConversationLimitReached
from .errors import ConversationStateError as ConversationStateError
from .errors import ConversationStoreError as ConversationStoreError
from .errors import ConversationTooLarge as ConversationTooLarge
from .errors import NoConversation as NoConversation
from .errors import NoNamespace as NoNamespace
from .errors import NonexistentConversation as NonexistentConversation
from .extension import ConversationScope as ConversationScope
from .htmx import conversation_hx_headers as conversation_hx_headers
from .htmx import conversation_script as conversation_script
from .propagation import conversation_field as conversation_field
from .propagation import url_for_cid as url_for_cid
from .signals import conversation_begun as conversation_begun
from .signals import conversation_destroyed as conversation_destroyed
from .signals import conversation_ended as conversation_ended
from .stores.records import ConversationInfo as ConversationInfo

__all__ = [
    "BusyConversation",
    "ContextNotActive",
    "Conversation",
    "ConversationError",
    "ConversationIdInUse",
    "ConversationInfo",
    "ConversationLimitReached",
    "ConversationScope",
    "ConversationStateError",
    "ConversationStoreError",
    "ConversationTooLarge",
    "NoConversation",
    "NoNamespace",
    "NonexistentConversation",
    "begin_conversation",
    "conversation",
    "conversation_begun",
    "conversation_destroyed",
    "conversation_ended",
    "conversation_field",
    "conversation_hx_headers",
    "conversation_readonly",
    "conversation_required",
    "conversation_script",
    "end_conversation",
    "url_for_cid",
]
