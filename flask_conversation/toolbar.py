"""A `Flask-DebugToolbar`_ panel showing the conversation of the request:
the current conversation, its stack, its data, how long the request waited
for the stack's lock, and every call it made to the store.

This module needs the optional ``flask-debugtoolbar`` package; the rest of
Flask-Conversation never imports it. Add the panel to the toolbar's list and
initialize the toolbar *before* the extension, so that the toolbar is drawn
after the conversation was committed and the commit is part of the picture:

.. code-block:: python

    from flask_debugtoolbar import DebugToolbarExtension

    app.config["DEBUG_TB_PANELS"] = [
        *DebugToolbarExtension(None)._default_config(app)["DEBUG_TB_PANELS"],
        "flask_conversation.toolbar.ConversationPanel",
    ]
    DebugToolbarExtension(app)
    ConversationScope(app)

.. _Flask-DebugToolbar: https://flask-debugtoolbar.readthedocs.io/
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
import typing as t
from importlib import resources

from flask import current_app
from flask import g
from flask import has_app_context
from flask_debugtoolbar.panels import DebugPanel
from werkzeug import Request
from werkzeug import Response

from .context import peek_state
from .extension import ConversationScope
from .stores.base import ConversationStore

#: The store methods whose calls the panel records. Composite methods
#: (``acquire``, ``commit``, ``load_chain``, ``purge``) appear with the
#: primitive calls they make nested under them.
RECORDED_METHODS = (
    "load",
    "save",
    "delete",
    "list_namespace",
    "lock",
    "unlock",
    "namespaces",
    "load_chain",
    "acquire",
    "commit",
    "purge",
)

_G_KEY = "_flask_conversation_toolbar_calls"
_install_lock = threading.Lock()
#: Set on the wrappers :func:`instrument` installs.
_RECORDING = "conversation_toolbar_recording"


@dataclasses.dataclass
class StoreCall:
    """One call to a store method during the request.

    :param method: the method's name.
    :param args: a short rendering of its arguments.
    :param depth: ``0`` for a call made by the extension, more for a call
        made by another store method.
    :param duration: seconds it took.
    :param nested: how many store calls it made itself.
    """

    method: str
    args: str
    depth: int
    duration: float = 0.0
    nested: int = 0

    @property
    def round_trip(self) -> bool:
        """A call that made no nested store call did its own I/O: with a
        networked store, one round trip.
        """
        return self.nested == 0


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[StoreCall] = []
        self._open: list[StoreCall] = []

    def record(
        self,
        method: str,
        fn: t.Callable[..., t.Any],
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> t.Any:
        call = StoreCall(method, _short_args(args, kwargs), len(self._open))
        if self._open:
            self._open[-1].nested += 1
        self.calls.append(call)
        self._open.append(call)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            call.duration = time.perf_counter() - start
            self._open.pop()


def _short_args(args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> str:
    parts = []
    for arg in [*args, *kwargs.values()]:
        # Records and batches are long: show what identifies them.
        if hasattr(arg, "namespace") and hasattr(arg, "id"):
            parts.append(f"<record {arg.id}>")
        elif hasattr(arg, "saves") and hasattr(arg, "deletes"):
            parts.append(f"<batch saves={len(arg.saves)} deletes={len(arg.deletes)}>")
        else:
            text = repr(arg)
            parts.append(text if len(text) <= 40 else text[:37] + "...")
    return ", ".join(parts)


def instrument(store: ConversationStore) -> None:
    """Wrap the methods of ``store`` (once) so that calls made during a
    request shown by the toolbar are recorded. Calls outside such a request
    go straight through.

    :param store: the application's store.
    """
    with _install_lock:
        # The wrappers are this module's own functions: they mark the store.
        if getattr(store.load, _RECORDING, False):
            return
        for name in RECORDED_METHODS:
            setattr(store, name, _recording(name, getattr(store, name)))


def _recording(name: str, method: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    @functools.wraps(method)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        recorder: _Recorder | None = g.get(_G_KEY) if has_app_context() else None
        if recorder is None:
            return method(*args, **kwargs)
        return recorder.record(name, method, args, kwargs)

    setattr(wrapper, _RECORDING, True)
    return wrapper


def _json(value: t.Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=repr)


@dataclasses.dataclass
class _Level:
    id: str | None
    description: str | None
    timeout: str
    own: str


@dataclasses.dataclass
class _Snapshot:
    used: bool
    id: str | None = None
    long_running: bool = False
    nested: bool = False
    description: str | None = None
    timeout: str = ""
    namespace: str | None = None
    missing: str | None = None
    propagated: str | None = None
    data: str = "{}"
    stack: list[_Level] = dataclasses.field(default_factory=list)


#: The panel's template, shipped with the package.
TEMPLATE = "templates/conversation_panel.html"


@functools.cache
def panel_template() -> str:
    """The source of the panel's template, read once from the package.

    The toolbar renders it in its own template environment, whose loader
    knows only the toolbar's templates.
    """
    return resources.files("flask_conversation").joinpath(TEMPLATE).read_text("utf-8")


class ConversationPanel(DebugPanel):
    """The Flask-DebugToolbar panel of Flask-Conversation. Enable it with
    ``"flask_conversation.toolbar.ConversationPanel"`` in
    ``DEBUG_TB_PANELS``.

    :param jinja_env: the toolbar's template environment.
    :param context: the toolbar's template context.

    .. versionadded:: 0.1
    """

    name = "Conversation"
    has_content = True

    def __init__(self, jinja_env: t.Any, context: dict[str, t.Any] | None = None) -> None:
        super().__init__(jinja_env, context)
        self.calls: list[StoreCall] = []
        self.store_name = ""
        self.snapshot = _Snapshot(used=False)
        self.committed = True

    def process_request(self, request: Request) -> None:
        """Instrument the store and start recording this request's calls.

        :param request: the request.
        """
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if "conversation" not in app.extensions:
            return
        store = ConversationScope.get_store(app)
        self.store_name = type(store).__name__
        instrument(store)
        recorder = _Recorder()
        self.calls = recorder.calls
        setattr(g, _G_KEY, recorder)

    def process_response(self, request: Request, response: Response) -> None:
        """Take the picture of the conversation, without resolving it.

        :param request: the request.
        :param response: the response the toolbar is drawn into.
        """
        state = peek_state()
        if state is None:
            return
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.committed = _commit_runs_first(app, app.extensions["conversation"])
        conv = state.current
        header = current_app.config.get("CONVERSATION_HEADER", "X-Conversation-Id")
        self.snapshot = _Snapshot(
            used=True,
            id=conv.id,
            long_running=conv.long_running,
            nested=conv.nested,
            description=conv.description,
            timeout=str(conv.timeout),
            namespace=state.known_namespace,
            missing=state.missing,
            propagated=response.headers.get(header) or state.cid_to_propagate(),
            data=_json(dict(conv)),
            stack=[
                _Level(c.id, c.description, str(c.timeout), _json(c.own_data)) for c in conv.stack
            ]
            if conv.long_running
            else [],
        )

    @property
    def round_trips(self) -> int:
        """Store calls that did their own I/O (made no nested store call)."""
        return sum(1 for c in self.calls if c.round_trip)

    @property
    def lock_wait(self) -> float:
        """Seconds spent taking stack locks: every ``lock`` call, plus every
        ``acquire`` that takes its lock without calling ``lock`` (a store
        that locks and loads in one round trip; then the loading is
        included).
        """
        total = 0.0
        for i, call in enumerate(self.calls):
            if call.method == "lock":
                total += call.duration
            elif call.method == "acquire":
                inner = self.calls[i + 1 : i + 1 + _subtree_size(self.calls, i)]
                if not any(c.method == "lock" for c in inner):
                    total += call.duration
        return total

    def nav_title(self) -> str:
        return "Conversation"

    def nav_subtitle(self) -> str:
        snap = self.snapshot
        if not snap.used:
            what = "not used"
        elif snap.long_running:
            # The toolbar prints subtitles in small caps: no case-sensitive id.
            what = f"long-running, depth {len(snap.stack) - 1}"
        else:
            what = "temporary"
        return f"{what}, {self.round_trips} round trips"

    def title(self) -> str:
        return "Conversation scope"

    def url(self) -> str:
        return ""

    def content(self) -> str:
        template = self.jinja_env.from_string(panel_template())
        return template.render(
            snap=self.snapshot,
            calls=self.calls,
            round_trips=self.round_trips,
            lock_wait=self.lock_wait,
            store_name=self.store_name,
            committed=self.committed,
        )


def _subtree_size(calls: list[StoreCall], index: int) -> int:
    # Calls are recorded in call order, so a call's nested calls follow it
    # until the next call at its depth or above.
    depth = calls[index].depth
    size = 0
    for call in calls[index + 1 :]:
        if call.depth <= depth:
            break
        size += 1
    return size


def _commit_runs_first(app: t.Any, scope: ConversationScope) -> bool:
    # Flask runs after_request functions last registered first: the commit
    # precedes the toolbar's drawing if it was registered after it.
    funcs = list(app.after_request_funcs.get(None, ()))
    toolbar = [
        i
        for i, f in enumerate(funcs)
        if getattr(f, "__name__", "") == "process_response"
        and type(getattr(f, "__self__", None)).__name__ == "DebugToolbarExtension"
    ]
    # Bound methods compare equal when bound to the same instance.
    commit = scope.commit_conversation
    if commit not in funcs or not toolbar:
        return True
    return funcs.index(commit) > toolbar[0]
