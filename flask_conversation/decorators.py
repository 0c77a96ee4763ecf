"""View decorators that demarcate conversations. Each works on sync and
async views.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing as t

from flask import current_app
from flask import request
from flask import url_for
from werkzeug.exceptions import NotFound

from .cid import check_cid
from .cid import is_valid_cid
from .config import Settings
from .config import Timeout
from .context import current_conversation
from .context import get_state
from .context import mark_readonly
from .context import READONLY_VIEW
from .errors import MISSING_CID_CAUSES
from .errors import NoConversation
from .redirects import is_htmx
from .redirects import redirect_response

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

logger = logging.getLogger("flask_conversation")

#: How much of a malformed natural id the 404 page shows.
_SHOWN = 70


def _wrap(
    view: F,
    before: t.Callable[[dict[str, t.Any]], t.Any] | None = None,
    after: t.Callable[[], None] | None = None,
) -> F:
    # ``before`` may return a response that replaces the view's.
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if before is not None:
                early = before(kwargs)
                if early is not None:
                    return early
            rv = await view(*args, **kwargs)
            if after is not None:
                after()
            return rv

        return t.cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if before is not None:
            early = before(kwargs)
            if early is not None:
                return early
        rv = view(*args, **kwargs)
        if after is not None:
            after()
        return rv

    return t.cast(F, wrapper)


def begin_conversation(
    join: bool = False,
    nested: bool = False,
    id: str | t.Callable[..., str] | None = None,
    description: str | t.Callable[..., str] | None = None,
    timeout: Timeout | None = None,
) -> t.Callable[[F], F]:
    """Begin a long-running conversation before the view runs, so that the
    view already sees it. The arguments are those of
    :meth:`~flask_conversation.Conversation.begin`.

    .. code-block:: python

        @app.post("/hotels/<int:hotel_id>/book")
        @begin_conversation(id=lambda hotel_id: f"booking-{hotel_id}", join=True)
        def book(hotel_id):
            ...

    :param join: see :meth:`~flask_conversation.Conversation.begin`.
    :param nested: see :meth:`~flask_conversation.Conversation.begin`.
    :param id: a natural id, or a callable receiving the view's keyword
        arguments and returning one; a returned id that is malformed (a
        hostile URL segment) answers 404.
    :param description: text shown in listings, or a callable receiving
        the view's keyword arguments and returning it.
    :param timeout: see :meth:`~flask_conversation.Conversation.begin`.
    """

    if isinstance(id, str):
        check_cid(id)

    def before(kwargs: dict[str, t.Any]) -> None:
        cid = id(**kwargs) if callable(id) else id
        if cid is not None and not is_valid_cid(cid):
            # Built from the URL: no conversation can have that id. The page
            # shows a bounded part of it (escaped by werkzeug), never all.
            shown = repr(cid[:_SHOWN])
            if len(cid) > _SHOWN:
                shown += f"... ({len(cid)} characters)"
            raise NotFound(f"No conversation can have the id {shown}.")
        current_conversation().begin(
            join=join,
            nested=nested,
            id=cid,
            description=description(**kwargs) if callable(description) else description,
            timeout=timeout,
        )

    def decorator(view: F) -> F:
        return _wrap(view, before=before)

    return decorator


def end_conversation(root: bool = False, before_redirect: bool = False) -> t.Callable[[F], F]:
    """End the long-running conversation after the view returns normally
    (not if it raises). A no-op when no long-running conversation is active,
    so a repeated submit without a cid is harmless; a request that still
    names an ended cid is answered like any unknown cid.

    :param root: end the whole stack.
    :param before_redirect: destroy it at the end of this request and take
        its cid out of the redirect the view returned.
    """

    def before(kwargs: dict[str, t.Any]) -> None:
        current_conversation()  # an unknown cid is reported before the view

    def after() -> None:
        conv = current_conversation()
        if conv.long_running:
            conv.end(root=root, before_redirect=before_redirect)

    def decorator(view: F) -> F:
        return _wrap(view, before=before, after=after)

    return decorator


@t.overload
def conversation_required(view: F) -> F: ...


@t.overload
def conversation_required(
    view: None = None, *, redirect_to: str | None = None
) -> t.Callable[[F], F]: ...


def conversation_required(
    view: F | None = None, *, redirect_to: str | None = None
) -> F | t.Callable[[F], F]:
    """Require a long-running conversation: without one, raise
    :exc:`~flask_conversation.NoConversation` (400), or redirect to the
    endpoint ``redirect_to``. Use it bare or with arguments.

    :param view: the view, when used without arguments.
    :param redirect_to: an endpoint to redirect to instead of the error;
        an htmx request gets ``200`` with ``HX-Redirect`` there instead of a
        302 that htmx would swap into the page.
    """

    def before(kwargs: dict[str, t.Any]) -> t.Any:
        if current_conversation().long_running:
            return None
        state = get_state()
        if not state.named_cid:
            _log_missing_cid(state.settings)
        if redirect_to is not None:
            return redirect_response(url_for(redirect_to), is_htmx(request))
        raise NoConversation()

    def decorator(view: F) -> F:
        return _wrap(view, before=before)

    if view is not None:
        return decorator(view)
    return decorator


def _log_missing_cid(settings: Settings) -> None:
    # Most often a forgotten cid rather than a user arriving from outside:
    # say so where a developer looks (a warning in debug mode), and keep it
    # out of production logs unless asked for.
    level = logging.WARNING if current_app.debug else logging.INFO
    logger.log(
        level,
        "%s %s reached the @conversation_required view %r without a cid (no %r"
        " query parameter, form field or %s header). The usual causes: %s.",
        request.method,
        request.path,
        request.endpoint,
        settings.param,
        settings.header,
        MISSING_CID_CAUSES,
    )


def conversation_readonly(view: F) -> F:
    """Read the conversation the request names without taking its stack's
    lock: the view never waits for another request of the stack and never
    gets :exc:`~flask_conversation.BusyConversation`. It sees the last
    committed state, renews nothing and writes nothing; a change,
    :meth:`~flask_conversation.Conversation.begin`,
    :meth:`~flask_conversation.Conversation.end` or
    :meth:`~flask_conversation.Conversation.reset` raises
    :exc:`~flask_conversation.ConversationStateError`. An unknown cid is
    answered as anywhere else (404, or ``CONVERSATION_MISSING_REDIRECT``).

    For polling, autosave indicators and validation requests, which would
    otherwise queue behind a slow request of the same stack.

    .. code-block:: python

        @app.get("/cart/badge")
        @conversation_readonly
        def badge():
            return str(len(conversation.get("items", [])))

    :param view: the view function, sync or async.

    .. versionadded:: 0.1
    """

    def before(kwargs: dict[str, t.Any]) -> None:
        mark_readonly()
        current_conversation()  # an unknown cid is reported before the view

    wrapper = _wrap(view, before=before)
    # Seen when the request first uses the conversation, even before the
    # view runs (a before_request function), and kept by functools.wraps
    # in decorators applied on top.
    setattr(wrapper, READONLY_VIEW, True)
    return wrapper
