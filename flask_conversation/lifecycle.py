"""One request's conversation state: resolve it lazily, change it, commit
it once, release it always.

The :class:`RequestState` is created on first use of the conversation and
kept on :data:`flask.g`. Everything a view changes is recorded on it; the
``after_request`` hook turns that into one :class:`~.stores.base.CommitBatch`
for the store, and ``teardown_request`` releases every lock, also after an
error.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import secrets
import typing as t

from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import has_request_context
from flask import request
from flask import session
from flask import url_for
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response

from .conversation import Conversation
from .conversation import ReadOnlyConversation
from .conversation import to_seconds
from .errors import BusyConversation
from .errors import ContextNotActive
from .errors import ConversationError
from .errors import ConversationIdInUse
from .errors import ConversationStateError
from .errors import ConversationStoreError
from .errors import NonexistentConversation
from .propagation import read_cid
from .redirects import is_htmx
from .redirects import redirect_response
from .redirects import redirect_urls
from .redirects import replace_redirect_url
from .redirects import strip_cids
from .redirects import url_cids
from .serialization import dump_data
from .signals import conversation_begun
from .signals import conversation_destroyed
from .signals import conversation_ended
from .stores.base import Acquired
from .stores.base import CommitBatch
from .stores.base import ConversationInfo
from .stores.base import ConversationRecord

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask
    from flask.ctx import _AppCtxGlobals

    from .extension import ConversationScope
    from .stores.base import ConversationStore

logger = logging.getLogger("flask_conversation")

_STATE = "_flask_conversation"
#: Set on :data:`flask.g` by a read-only view resolved before its marker
#: could be seen (see :func:`mark_readonly`).
_READONLY = "_flask_conversation_readonly"
#: The attribute :func:`~flask_conversation.conversation_readonly` sets on
#: a view function, so that the request is read-only from its first use of
#: the conversation, also in ``before_request`` functions.
READONLY_VIEW = "_conversation_readonly"
#: Session key of the default namespace token.
NAMESPACE_KEY = "_conversation_ns"
#: What a cid, generated or natural, may look like: safe in URLs and as a key.
CID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``CONVERSATION_*`` configuration, read once per request that
    uses the conversation, so that changes to ``app.config`` apply.
    """

    param: str
    header: str
    timeout: float
    max_count: int
    max_depth: int
    max_size: int
    lock_timeout: float
    initial_state: t.Mapping[str, t.Any]
    exclude: frozenset[str]
    missing_redirect: str | None
    missing_flash_message: str
    missing_flash_category: str

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read the settings from an application's config.

        :param config: the ``app.config`` mapping.
        """
        return cls(
            param=config["CONVERSATION_PARAM"],
            header=config["CONVERSATION_HEADER"],
            timeout=to_seconds(config["CONVERSATION_TIMEOUT"], "CONVERSATION_TIMEOUT"),
            max_count=config["CONVERSATION_MAX_COUNT"],
            max_depth=config["CONVERSATION_MAX_DEPTH"],
            max_size=config["CONVERSATION_MAX_SIZE"],
            lock_timeout=to_seconds(
                config["CONVERSATION_LOCK_TIMEOUT"], "CONVERSATION_LOCK_TIMEOUT"
            ),
            initial_state=config["CONVERSATION_INITIAL_STATE"] or {},
            exclude=frozenset(config["CONVERSATION_EXCLUDE"] or ()),
            missing_redirect=config["CONVERSATION_MISSING_REDIRECT"],
            missing_flash_message=config["CONVERSATION_MISSING_FLASH_MESSAGE"],
            missing_flash_category=config["CONVERSATION_MISSING_FLASH_CATEGORY"],
        )


@dataclasses.dataclass
class _Ended:
    """A conversation ended in this request, kept to decide at commit
    whether it survives one more request.
    """

    cid: str
    conversation: Conversation
    before_redirect: bool


class RequestState:
    """The conversation state of one request.

    :param app: the application handling the request.
    :param scope: the extension instance.
    :param store: the application's store.
    :param readonly: read the conversation without its stack's lock and
        change nothing (``@conversation_readonly``).
    """

    def __init__(
        self,
        app: Flask,
        scope: ConversationScope,
        store: ConversationStore,
        readonly: bool = False,
    ) -> None:
        self.app = app
        self.scope = scope
        self.store = store
        self.readonly = readonly
        self.settings = Settings.from_config(app.config)
        self._namespace: str | None = None
        #: long-running conversations this request works in, by id
        self.active: dict[str, Conversation] = {}
        #: held stack locks, ``root_id -> token``
        self.locks: dict[str, str] = {}
        #: ids to delete at commit (with their descendants), with the reason
        self.deletes: dict[str, str | None] = {}
        self.ended: list[_Ended] = []
        #: the cid the request named that was not live, until first reported
        self.missing: str | None = None
        #: the store's error while resolving, until first reported
        self.error: BusyConversation | ConversationStoreError | None = None
        #: set by ``got_request_exception``: commit nothing
        self.failed = False
        #: the namespace's listing the store returned with a lock, if any
        self._listing: t.Callable[[float], list[ConversationInfo] | None] | None = None
        self.current = self._resolve()

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

    def namespace(self, create: bool = False) -> str | None:
        """The namespace of this request, from ``namespace_loader`` or the
        session token.

        :param create: create the session token if there is none yet.
        """
        if self._namespace is None:
            loader = self.scope._namespace_loader
            if loader is not None:
                ns = loader()
                if ns is not None and not isinstance(ns, str):
                    raise TypeError("namespace_loader must return a str or None.")
                self._namespace = ns or None
            else:
                self._namespace = session.get(NAMESPACE_KEY)
                if self._namespace is None and create:
                    self._namespace = secrets.token_urlsafe(12)
                    session[NAMESPACE_KEY] = self._namespace
        if self._namespace is None and create:
            raise ConversationError(
                "namespace_loader returned no namespace: cannot begin a conversation."
            )
        return self._namespace

    def _resolve(self) -> Conversation:
        cid = read_cid(request, self.settings.param, self.settings.header)
        if cid is None:
            return self._temporary()
        if CID_RE.fullmatch(cid) is None:
            self.missing = cid
            return self._temporary()
        namespace = self.namespace()
        if namespace is None:
            self.missing = cid
            return self._temporary()
        if self.readonly:
            return self._resolve_readonly(namespace, cid)
        try:
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
        self._listing = acquired.listing
        record = acquired.chain[-1]
        if record.ended:
            # The one request an ended conversation survives after a redirect.
            self.deletes[record.id] = None
            return self._temporary(self.store.serializer.loads(record.data))
        return self._adopt(acquired.chain)

    def _resolve_readonly(self, namespace: str, cid: str) -> Conversation:
        # The last committed state, read past the stack's lock: nothing is
        # locked, so nothing may be written back.
        try:
            chain = self.store.load_chain(namespace, cid)
        except ConversationStoreError as e:
            self.error = e
            return self._temporary()
        if chain is None:
            self.missing = cid
            return self._temporary()
        if chain[-1].ended:
            # Read like the request that will consume it, and left for it.
            return self._temporary(self.store.serializer.loads(chain[-1].data))
        return self._adopt(chain)

    def _adopt(self, chain: list[ConversationRecord]) -> Conversation:
        parent: Conversation | None = None
        for record in chain:
            conv = self.active.get(record.id)
            if conv is None:
                conv = self._conversation_class(
                    self,
                    self.store.serializer.loads(record.data),
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
        """Raise, once, the error for a cid that named no live conversation:
        :exc:`NonexistentConversation`, or a redirect with a flashed message
        when ``CONVERSATION_MISSING_REDIRECT`` is set.
        """
        cid, self.missing = self.missing, None
        if cid is None:
            return
        if self.settings.missing_redirect:
            flash(self.settings.missing_flash_message, self.settings.missing_flash_category)
            abort(redirect_response(url_for(self.settings.missing_redirect), is_htmx(request)))
        raise NonexistentConversation(cid)

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
        namespace = self.namespace(create=claim)
        if namespace is None or cid in self.deletes:
            return None
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
        if id is not None and (not isinstance(id, str) or CID_RE.fullmatch(id) is None):
            raise ValueError(f"Invalid conversation id {id!r}: use 1 to 64 of A-Z a-z 0-9 _ . : -")
        if id is not None:
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

        namespace = self.namespace(create=True)
        assert namespace is not None
        new_id = id or secrets.token_urlsafe(16)

        if conv.long_running:
            depth = conv.depth + 1
            if depth > self.settings.max_depth:
                raise ConversationError(
                    f"Cannot nest deeper than CONVERSATION_MAX_DEPTH ({self.settings.max_depth})."
                )
            if depth + 1 > self.settings.max_count:
                raise ConversationError(
                    "Cannot begin another conversation: this stack alone holds"
                    f" CONVERSATION_MAX_COUNT ({self.settings.max_count})."
                )
            child = Conversation(
                self,
                {},
                timeout=conv._timeout if timeout is None else timeout,
                parent=conv,
                description=description,
            )
            conv = child
        else:
            if timeout is not None:
                conv._timeout = timeout
            if description is not None:
                conv._description = description
            conv._parent = None
        conv._id = new_id
        conv._created_at = self.store.clock()
        self.active[new_id] = conv
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
                other._id = None
        self.deletes[cid] = "ended"
        survivor = target
        if target.parent is not None:
            if in_subtree:
                self.current = target.parent
        elif in_subtree:
            if self.current is not target:
                # Ending the whole stack from a child: the request goes on in a
                # temporary conversation that still reads the stack's data.
                survivor = self._temporary(dict(self.current))
                survivor._timeout = target._timeout
                survivor._description = target._description
                survivor._created_at = target._created_at
            self.current = survivor
        self.ended.append(_Ended(cid, survivor, before_redirect))

    def end_all(self) -> None:
        """End every conversation of the namespace; applied at commit."""
        self.check_writable("end the conversations")
        namespace = self.namespace()
        if namespace is None:
            return
        for record in self.store.list_namespace(namespace):
            self.deletes[record.id] = None if record.ended else "cleared"
        for cid, conv in self.active.items():
            self.deletes[cid] = "cleared"
            conv._id = None
        self.active.clear()
        if self.current.nested:
            self.current = self._temporary(dict(self.current))

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

    def conversations(self) -> list[ConversationInfo]:
        """The live long-running conversations of the namespace, most
        recently used first, including this request's uncommitted changes.
        """
        namespace = self.namespace()
        if namespace is None:
            return []
        now = self.store.clock()
        # The listing that came with the lock saves a round trip.
        listed = self._listing(now) if self._listing is not None else None
        if listed is not None:
            infos = {i.id: i for i in listed if i.id not in self.deletes}
        else:
            infos = {
                r.id: ConversationInfo.from_record(r)
                for r in self.store.list_namespace(namespace)
                if not r.ended and r.expires_at > now and r.id not in self.deletes
            }
        for cid, conv in self.active.items():
            infos[cid] = ConversationInfo.from_record(self._record(conv, now, data=""))
        # A child renews its ancestors: at equal times the deepest was used.
        return sorted(infos.values(), key=lambda i: (i.last_access, i.depth), reverse=True)

    # -- committing ------------------------------------------------------------

    def _record(
        self, conv: Conversation, now: float, data: str | None = None
    ) -> ConversationRecord:
        cid = t.cast(str, conv.id)
        root = conv.root
        if data is None:
            data = dump_data(self.store.serializer, conv._data, cid, self.settings.max_size)
        return ConversationRecord(
            id=cid,
            namespace=t.cast(str, self._namespace),
            parent_id=conv.parent.id if conv.parent is not None else None,
            root_id=t.cast(str, root.id),
            depth=conv.depth,
            data=data,
            description=conv._description,
            timeout=conv._timeout,
            created_at=conv._created_at or now,
            last_access=now,
        )

    def commit(self, response: Response) -> None:
        """Write this request's changes in one batch and release its locks,
        then send the signals and set the response header.

        :param response: the response about to be sent; the URL it
            redirects to decides whether an ended conversation survives.
        """
        if self.readonly:
            # Nothing to write, nothing locked: only the header.
            if self.current.long_running:
                response.headers[self.settings.header] = t.cast(str, self.current.id)
            return
        now = self.store.clock()
        batch = CommitBatch(
            saves=[self._record(c, now) for c in self.active.values()],
            deletes=dict(self.deletes),
            unlock=self.locks,
            max_count=self.settings.max_count,
            keep_roots={t.cast(str, c.root.id) for c in self.active.values()},
        )
        survivor = self._redirect_rules(response, batch, now)
        namespace = self._namespace
        destroyed = self.store.commit(namespace, batch) if namespace and batch else []
        self.locks = {}
        for cid, reason in destroyed:
            conversation_destroyed.send(self.app, cid=cid, namespace=namespace, reason=reason)
        propagated = self.current.id if self.current.long_running else survivor
        if propagated is not None:
            response.headers[self.settings.header] = propagated

    def _redirect_rules(self, response: Response, batch: CommitBatch, now: float) -> str | None:
        if not self.ended:
            return None
        param = self.settings.param
        # Location on a 3xx; HX-Redirect and HX-Location on a 2xx (htmx).
        urls = redirect_urls(response)
        carried = {cid for url in urls.values() for cid in url_cids(url, param)}
        stripped = {e.cid for e in self.ended if e.before_redirect} & carried
        if stripped:
            for name, url in urls.items():
                new_url = strip_cids(url, param, stripped)
                if new_url != url:
                    replace_redirect_url(response, name, new_url)
        survivor = None
        for ended in self.ended:
            if ended.before_redirect or ended.cid not in carried:
                continue
            data = dump_data(
                self.store.serializer, dict(ended.conversation), ended.cid, self.settings.max_size
            )
            batch.saves.append(
                ConversationRecord(
                    id=ended.cid,
                    namespace=t.cast(str, self._namespace),
                    parent_id=None,
                    root_id=ended.cid,
                    depth=0,
                    data=data,
                    description=ended.conversation.description,
                    timeout=ended.conversation._timeout,
                    created_at=ended.conversation._created_at or now,
                    last_access=now,
                    ended=True,
                )
            )
            survivor = ended.cid
        return survivor

    def release(self) -> None:
        """Release every lock still held: the request failed or never
        committed. Never raises.
        """
        locks, self.locks = self.locks, {}
        namespace = self._namespace
        if namespace is None:
            return
        for root_id, token in locks.items():
            try:
                self.store.unlock(namespace, root_id, token)
            except Exception:  # noqa: BLE001
                # The lease expires the lock; the response is already sent.
                logger.exception("Could not release the lock of stack %r.", root_id)


# -- access from anywhere in the request --------------------------------------


def _g() -> _AppCtxGlobals:
    # Every use of the conversation and every request's hooks come here:
    # resolving the proxy once is several times cheaper than attribute
    # access through it.
    return g._get_current_object()  # type: ignore[no-any-return]


def get_state() -> RequestState:
    """The current request's :class:`RequestState`, created on first use.

    :raise ContextNotActive: outside of a request.
    """
    if not has_request_context():
        raise ContextNotActive()
    namespace = _g()
    state: RequestState | None = namespace.get(_STATE)
    if state is None:
        from .extension import ConversationScope

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        store = ConversationScope.get_store(app)
        readonly = _READONLY in namespace or _readonly_view(app)
        state = RequestState(app, app.extensions["conversation"], store, readonly)
        setattr(namespace, _STATE, state)
    return state


def _readonly_view(app: Flask) -> bool:
    """Whether the request's view is marked read-only."""
    endpoint = request.endpoint
    view = app.view_functions.get(endpoint) if endpoint is not None else None
    return getattr(view, READONLY_VIEW, False) is True


def mark_readonly() -> None:
    """Make the current request read-only before it first uses the
    conversation; for a view whose marker :func:`get_state` cannot see
    (registered through a wrapper that hides it).

    :raise RuntimeError: the conversation was already resolved with its
        stack's lock, e.g. by a ``before_request`` function.
    """
    state = peek_state()
    if state is None:
        setattr(_g(), _READONLY, True)
    elif not state.readonly:
        raise RuntimeError(
            "@conversation_readonly: the conversation was used with its lock before"
            " the view ran. Decorate the view function registered for the route,"
            " so that the request is read-only from its first use."
        )


def peek_state() -> RequestState | None:
    """The current request's state if the conversation was used, else
    ``None``; never resolves it.
    """
    return _g().get(_STATE) if has_request_context() else None


def current_conversation() -> Conversation:
    """The current conversation; the first use after a request named an
    unknown cid raises the error for it.

    :raise ContextNotActive: outside of a request.
    :raise NonexistentConversation: the request named an unknown cid.
    :raise BusyConversation: its stack stayed locked.
    :raise ConversationStoreError: the store failed.
    """
    state = get_state()
    if state.error is not None:
        error, state.error = state.error, None
        raise error
    if state.missing is not None:
        state.report_missing()
    return state.current


def _within(conv: Conversation, ancestor: Conversation) -> bool:
    """Whether ``ancestor`` is ``conv`` or one of its ancestors."""
    return any(c is ancestor for c in conv.stack)


#: The proxy behind :data:`flask_conversation.conversation`.
conversation_proxy: Conversation = t.cast(Conversation, LocalProxy(current_conversation))


# -- the hooks -----------------------------------------------------------------


def commit_conversation(response: Response) -> Response:
    """``after_request``: commit the request's changes, unless the request
    failed with an unhandled exception.

    :param response: the response.
    """
    state = peek_state()
    if state is None or state.failed:
        return response
    try:
        state.commit(response)
    except ConversationStoreError as e:
        # Raised here, Flask would turn any error into a 500: answer 503.
        app = state.app
        return app.make_response(app.handle_user_exception(e))
    return response


def mark_failed(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
    """``got_request_exception``: nothing of this request is committed.

    :param sender: the application.
    :param exception: the unhandled exception.
    """
    state = peek_state()
    if state is not None:
        state.failed = True


def release_conversation(exc: BaseException | None) -> None:
    """``teardown_request``: always release the request's locks.

    :param exc: the unhandled exception, if any.
    """
    state = _g().pop(_STATE, None)
    if state is not None:
        state.release()
