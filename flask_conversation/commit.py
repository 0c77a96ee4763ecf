"""The end of a request: one request's changes written in one batch, the
response headers that follow from them, and the locks released always.

The extension's ``after_request`` method calls :func:`commit_state` (unless
the request failed), then :func:`finish_headers`; its ``teardown_request``
method calls :func:`release_state`.
"""

from __future__ import annotations

import typing as t

from .caching import mark_private
from .redirects import redirect_survivors
from .serialization import dump_data
from .signals import conversation_destroyed
from .snapshots import survivor_of
from .stores.records import CommitBatch

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Response

    from .state import RequestState


def commit_state(state: RequestState, response: Response) -> None:
    """Write the request's changes in one batch and release its locks, then
    send the signals and set the response header.

    :param state: the request's state.
    :param response: the response about to be sent; the URL it redirects
        to decides whether an ended conversation survives.
    :raise ConversationStoreError: the store failed; nothing was written.
    :raise ConversationTooLarge: a conversation is over
        ``CONVERSATION_MAX_SIZE``; nothing was written.
    """
    settings = state.settings
    if state.readonly:
        # Nothing to write, nothing locked: only the headers.
        state.tokens.save(response)
        if state.current.long_running:
            response.headers[settings.header] = t.cast(str, state.current.id)
        return
    store = state.store
    now = store.clock()
    batch = CommitBatch(
        saves=[state.record(c, now) for c in state.active.values()],
        deletes=dict(state.deletes),
        unlock=state.locks,
        max_count=settings.max_count,
        keep_roots={t.cast(str, c.root.id) for c in state.active.values()},
        clear=state.clear,
        held=state.held,
    )
    survivor = None
    namespace = state.known_namespace
    for ended in redirect_survivors(response, state.ended, settings.param):
        data = dump_data(store.serializer, dict(ended.conversation), ended.cid, settings.max_size)
        batch.saves.append(
            survivor_of(ended.cid, ended.conversation, t.cast(str, namespace), now, data)
        )
        survivor = ended.cid
    destroyed = []
    with state.failures.reporting("committing"):
        if namespace and batch:
            destroyed = store.commit(namespace, batch)
    state.locks = {}
    rotation = state.tokens.rotation()
    if rotation is not None:
        with state.failures.reporting("moving the namespace"):
            store.move_namespace(*rotation, settings.lock_timeout)
    state.tokens.save(response)
    for cid, reason in destroyed:
        conversation_destroyed.send(state.app, cid=cid, namespace=namespace, reason=reason)
    propagated = state.current.id if state.current.long_running else survivor
    if propagated is not None:
        response.headers[settings.header] = propagated


def finish_headers(state: RequestState, response: Response) -> None:
    """Headers every response of a request that used the conversation gets,
    committed or not.

    On a response refused by a limit, the cid the request named: nothing
    changed, so the client goes on working in it. Then keep shared caches
    from serving the response to someone else (see
    :func:`~.caching.mark_private`) when it may depend on who asks: the
    request named a cid (even one whose conversation was missing or ended:
    whether it is found depends on who asks) or looked up its namespace.

    :param state: the request's state.
    :param response: the response about to be sent.
    """
    header = state.settings.header
    if state.refused and state.named_live is not None:
        response.headers[header] = state.named_live
    if state.cid_source is not None or state.known_namespace is not None:
        mark_private(response, header, state.cid_source)


def release_state(state: RequestState) -> None:
    """Release every lock the request still holds (it failed or never
    committed), then close the state. Never raises.

    :param state: the request's state.
    """
    locks, state.locks = state.locks, {}
    namespace = state.known_namespace
    if namespace is not None:
        for root_id, token in locks.items():
            try:
                state.store.unlock(namespace, root_id, token)
            except Exception as e:  # noqa: BLE001
                # The lease expires the lock; the response is already sent.
                state.failures.log(e, f"releasing the lock of stack {root_id!r}")
    state.close()
