"""One request's conversation state: resolve it lazily, change it, commit
it once, release it always.

The :class:`RequestState` is created on first use of the conversation (see
:mod:`.context`) and kept on :data:`flask.g`. Everything a view changes is
recorded on it; at the end of the request :mod:`.commit` turns that into
one :class:`~.stores.records.CommitBatch` for the store and releases every
lock, also after an error.
"""

from __future__ import annotations

import copy
import secrets
import typing as t

from flask import request

from . import unreadable
from .cid import check_cid
from .cid import CidSource
from .cid import is_valid_cid
from .cid import locate_cid
from .config import Settings
from .conversation import Conversation
from .errors import BusyConversation
from .errors import ConversationIdInUse
from .errors import ConversationStateError
from .errors import ConversationStoreError
from .failures import StoreFailureLog
from .listing import NamespaceListing
from .namespaces import RequestNamespace
from .namespaces import Scope
from .nesting import nest
from .readonly import ReadOnlyConversation
from .redirects import Ended
from .redirects import report_missing
from .serialization import dump_data
from .signals import conversation_begun
from .signals import conversation_ended
from .snapshots import record_of
from .stores.records import Acquired
from .stores.records import ConversationRecord

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask

    from .stores.base import ConversationStore


class RequestState:
    """The conversation state of one request.

    :param app: the application handling the request.
    :param scope: the extension instance.
    :param store: the application's store.
    :param settings: the application's settings for this request.
    :param readonly: read the conversation without its stack's lock and
        change nothing (``@conversation_readonly``).
    """

    def __init__(
        self,
        app: Flask,
        scope: Scope,
        store: ConversationStore,
        settings: Settings,
        readonly: bool = False,
    ) -> None:
        self.app = app
        self.scope = scope
        self.store = store
        self.readonly = readonly
        self.settings = settings
        #: the request's namespace token: looked up once, created, rotated
        self.tokens = RequestNamespace(app, scope.namespace_callback, store)
        #: long-running conversations this request works in, by id
        self.active: dict[str, Conversation] = {}
        #: held stack locks, ``root_id -> token``
        self.locks: dict[str, str] = {}
        #: ids to delete at commit (with their descendants), with the reason
        self.deletes: dict[str, str | None] = {}
        self.ended: list[Ended] = []
        #: the cid the request named that was not live, until first reported
        self.missing: str | None = None
        #: the store's error while resolving, until first reported
        self.error: BusyConversation | ConversationStoreError | None = None
        #: set by ``got_request_exception`` or a refused begin: commit nothing
        self.failed = False
        #: ``end_all()`` was called: the commit clears the namespace
        self.clear = False
        #: roots of the stacks this request read from the store, under their lock
        self.held: set[str] = set()
        #: whether the request named a cid, for the hint of a missing key
        self.named_cid = False
        #: a limit refused this request: nothing changed, and the client
        #: keeps working in the conversation it named
        self.refused = False
        #: the live conversation the request named
        self.named_live: str | None = None
        #: where the request's cid came from, if it named one
        self.cid_source: CidSource | None = None
        self.failures = StoreFailureLog(type(store).__name__)
        #: the namespace's live conversations, with this request's changes
        self.listing = NamespaceListing(self, self.tokens, store, self.failures)
        self.current = unreadable.resolve(self, self._resolve, self._temporary)

    # -- resolving -------------------------------------------------------------

    def initial_state(self) -> dict[str, t.Any]:
        """A deep copy of ``CONVERSATION_INITIAL_STATE``."""
        return copy.deepcopy(dict(self.settings.initial_state))

    @property
    def _conversation_class(self) -> type[Conversation]:
        return ReadOnlyConversation if self.readonly else Conversation

    def _temporary(self, data: dict[str, t.Any] | None = None) -> Conversation:
        return self._conversation_class(
            self,
            self.initial_state() if data is None else data,
            timeout=self.settings.timeout,
        )

    @property
    def known_namespace(self) -> str | None:
        """The namespace if this request already looked it up; never looks
        it up.
        """
        return self.tokens.known

    def rotate_namespace(self) -> None:
        """Give the namespace a new token at commit; see
        :meth:`~flask_conversation.ConversationScope.rotate_namespace`.
        """
        self.check_writable("rotate the namespace")
        self.tokens.rotate()

    def _resolve(self) -> Conversation:
        settings = self.settings
        found = locate_cid(
            request._get_current_object(),  # type: ignore[attr-defined]
            settings.param,
            settings.header,
        )
        if found is None:
            return self._temporary()
        self.named_cid = True
        cid, self.cid_source = found
        if not is_valid_cid(cid):
            self.missing = cid
            return self._temporary()
        namespace = self.tokens.get()
        if namespace is None:
            self.missing = cid
            return self._temporary()
        if self.readonly:
            return self._resolve_readonly(namespace, cid)
        try:
            with self.failures.reporting("resolving the request's conversation"):
                acquired = self.store.acquire(namespace, cid, self.settings.lock_timeout)
        except (BusyConversation, ConversationStoreError) as e:
            # Reported on first use, like an unknown cid: error handlers then
            # see a temporary conversation instead of failing again.
            self.error = e
            return self._temporary()
        if acquired is None:
            self.missing = cid
            return self._temporary()
        self.locks[acquired.root_id] = acquired.token
        self.held.add(acquired.root_id)
        self.listing.keep(acquired.listing, acquired.count)
        record = acquired.chain[-1]
        if record.ended:
            # The one request an ended conversation survives after a redirect.
            self.deletes[record.id] = None
            return self._temporary(unreadable.load_data(self.store.serializer, record))
        self.named_live = cid
        return self._adopt(acquired.chain)

    def _resolve_readonly(self, namespace: str, cid: str) -> Conversation:
        # The last committed state, read past the stack's lock: nothing is
        # locked, so nothing may be written back.
        try:
            with self.failures.reporting("reading the request's conversation"):
                chain = self.store.load_chain(namespace, cid)
        except ConversationStoreError as e:
            self.error = e
            return self._temporary()
        if chain is None:
            self.missing = cid
            return self._temporary()
        if chain[-1].ended:
            # Read like the request that will consume it, and left for it.
            return self._temporary(unreadable.load_data(self.store.serializer, chain[-1]))
        self.named_live = cid
        return self._adopt(chain)

    def _adopt(self, chain: list[ConversationRecord]) -> Conversation:
        parent: Conversation | None = None
        for record, data in unreadable.load_chain(self.store.serializer, chain):
            conv = self.active.get(record.id)
            if conv is None:
                conv = self._conversation_class(
                    self,
                    data,
                    timeout=record.timeout,
                    id=record.id,
                    parent=parent,
                    description=record.description,
                    created_at=record.created_at,
                )
                self.active[record.id] = conv
            parent = conv
        assert parent is not None
        return parent

    def report_missing(self) -> None:
        """Raise, once, the error for a cid that named no live conversation
        (see :func:`~.redirects.report_missing`).
        """
        cid, self.missing = self.missing, None
        if cid is not None:
            report_missing(cid, self.settings)

    def check_writable(self, action: str) -> None:
        """Refuse ``action`` in a read-only request.

        :param action: what was attempted, for the message.
        :raise ConversationStateError: the request is read-only.
        """
        if self.readonly:
            raise ConversationStateError(
                f"Cannot {action} in a read-only request (@conversation_readonly):"
                " it reads the conversation without its lock and changes nothing."
            )

    # -- changing --------------------------------------------------------------

    def _find(self, cid: str, claim: bool = False) -> Conversation | None:
        """The live conversation ``cid``, locking its stack if needed.

        :param cid: the conversation id.
        :param claim: if there is none, lock ``cid`` for the new root this
            request is about to create.
        """
        if cid in self.active:
            return self.active[cid]
        namespace = self.tokens.get(create=claim)
        if namespace is None or cid in self.deletes or self.clear:
            return None
        with self.failures.reporting("looking up a conversation"):
            return self._find_stored(namespace, cid, claim)

    def _find_stored(self, namespace: str, cid: str, claim: bool) -> Conversation | None:
        if self.locks:
            # It may be in a stack this request holds: look before locking,
            # or the request would wait for itself.
            chain = self.store.load_chain(namespace, cid)
            if chain is not None and chain[0].id in self.locks:
                return None if chain[-1].ended else self._adopt(chain)
            if chain is None and not claim:
                return None
        timeout = self.settings.lock_timeout
        if claim:
            acquired: Acquired | None = self.store.claim(namespace, cid, timeout)
        else:
            acquired = self.store.acquire(namespace, cid, timeout)
        if acquired is None:
            return None
        self.locks[acquired.root_id] = acquired.token
        if acquired.chain:
            self.held.add(acquired.root_id)
        if not acquired.chain or acquired.chain[-1].ended:
            return None
        return self._adopt(acquired.chain)

    def begin(
        self,
        conv: Conversation,
        *,
        join: bool,
        nested: bool,
        id: str | None,
        description: str | None,
        timeout: float | None,
    ) -> bool:
        """See :meth:`Conversation.begin`."""
        self.check_writable("begin a conversation")
        if conv.long_running and not (join or nested):
            raise ConversationStateError(
                "A long-running conversation is already active; use join=True or nested=True."
            )
        if id is not None:
            check_cid(id)
            # A new root with a natural id: lock it first, so that two
            # requests creating it see each other's.
            existing = self._find(id, claim=not conv.long_running)
            if existing is not None:
                if not join:
                    raise ConversationIdInUse(id)
                self.current = existing
                return False
        if conv.long_running and not nested:
            return False

        namespace = self.tokens.get(create=True)
        assert namespace is not None
        new_id = id or secrets.token_urlsafe(16)

        if conv.long_running:
            conv = nest(self, conv, id=new_id, description=description, timeout=timeout)
        else:
            conv.promote(new_id, self.store.clock(), timeout=timeout, description=description)
        self.active[new_id] = conv
        self.listing.add_begun(new_id)
        self.current = conv
        conversation_begun.send(self.app, conversation=conv)
        return True

    def end(self, conv: Conversation, *, root: bool, before_redirect: bool) -> None:
        """See :meth:`Conversation.end`."""
        self.check_writable("end a conversation")
        if not conv.long_running:
            raise ConversationStateError("The conversation is temporary: nothing to end.")
        target = conv.root if root else conv
        cid = t.cast(str, target.id)
        conversation_ended.send(self.app, conversation=target)
        # Identity, not ``in``: conversations are mappings, equal by content.
        in_subtree = _within(self.current, target)
        for other_id, other in list(self.active.items()):
            if _within(other, target):
                del self.active[other_id]
                other.detach()
        self.deletes[cid] = "ended"
        survivor = target
        if target.parent is not None:
            if in_subtree:
                self.current = target.parent
        elif in_subtree:
            if self.current is not target:
                # Ending the whole stack from a child: the request goes on in a
                # temporary conversation that still reads the stack's data.
                survivor = Conversation(
                    self,
                    dict(self.current),
                    timeout=target.timeout_seconds,
                    description=target.description,
                    created_at=target.created_at,
                )
            self.current = survivor
        self.ended.append(Ended(cid, survivor, before_redirect))

    def end_all(self) -> None:
        """End every conversation of the namespace, as the namespace holds
        them when the request commits.
        """
        self.check_writable("end the conversations")
        if self.tokens.get() is None:
            return
        self.clear = True
        for conv in self.active.values():
            conv.detach()
        self.active.clear()
        # Nothing of the namespace survives, not even for a redirect.
        self.ended.clear()
        if self.current.nested:
            self.current = self._temporary(dict(self.current))

    def close(self) -> None:
        """Let go of the request's conversations and listing once the
        request ended and its locks were released. Each of them refers back
        to this state: left as they are, the request's objects would wait
        for the garbage collector, whose collections every later request
        then pays for. The state is not used afterwards.
        """
        self.active.clear()
        self.ended.clear()
        del self.current, self.listing

    # -- reading ---------------------------------------------------------------

    def cid_to_propagate(self) -> str | None:
        """The current long-running conversation's id, or the id of a root
        ended in this request that may survive a redirect; else ``None``.
        """
        if self.current.long_running:
            return self.current.id
        for ended in reversed(self.ended):
            if ended.conversation is self.current and not ended.before_redirect:
                return ended.cid
        return None

    def record(self, conv: Conversation, now: float, data: str | None = None) -> ConversationRecord:
        """The record ``conv`` is stored as, used at ``now``.

        :param conv: a long-running conversation of this request.
        :param now: the time of the commit.
        :param data: its data already serialized, else serialized here
            (within ``CONVERSATION_MAX_SIZE``).
        """
        if data is None:
            data = dump_data(self.store.serializer, conv.own_data, conv.id, self.settings.max_size)
        return record_of(conv, t.cast(str, self.known_namespace), now, data)


def _within(conv: Conversation, ancestor: Conversation) -> bool:
    """Whether ``ancestor`` is ``conv`` or one of its ancestors."""
    return any(c is ancestor for c in conv.stack)
