"""A request's conversation objects are freed as soon as the request ends,
on every store: none of them is left in a reference cycle for the garbage
collector, whose collections would cost every later request.

Not covered: an error answered by the HTTP exception itself (a 404 for an
unknown cid without an error handler). Flask returns the exception as the
response, and its traceback holds the frame that returned it: a cycle of
Flask's, which holds whatever those frames hold.
"""

from __future__ import annotations

import contextlib
import gc
import typing as t

import pytest

from flask_conversation.testing import ConversationClient


@contextlib.contextmanager
def cyclic_garbage() -> t.Iterator[list[str]]:
    """The types of the package's objects that the block left in
    reference cycles.
    """
    found: list[str] = []
    gc.collect()
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.disable()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(
            type(o).__qualname__
            for o in gc.garbage
            if type(o).__module__.startswith("flask_conversation")
        )
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
        if enabled:
            gc.enable()


STEPS: list[tuple[str, dict[str, t.Any] | None]] = [
    ("/show", None),
    ("/begin", {}),
    ("/set", {"hotel": "h-1"}),
    ("/incr", None),
    ("/show", None),
    ("/begin", {"nested": True}),
    ("/incr", None),
    ("/end", {}),
    ("/end", {"root": True}),
]


@pytest.mark.parametrize(("path", "body"), STEPS, ids=[f"{p}{b or ''}" for p, b in STEPS])
def test_no_request_leaves_a_cycle(
    api: ConversationClient, path: str, body: dict[str, t.Any] | None
) -> None:
    # Walk the flow up to this step, then look at this step alone.
    for earlier, earlier_body in STEPS[: STEPS.index((path, body))]:
        assert api.post(earlier, json=earlier_body).status_code == 200
    with cyclic_garbage() as found:
        rv = api.post(path, json=body)
    assert rv.status_code == 200
    assert found == []


def test_a_failed_request_leaves_no_cycle(api: ConversationClient) -> None:
    from flask_conversation import conversation

    @api.application.post("/fail")
    def fail() -> str:
        conversation["n"] = 1
        raise RuntimeError("the view failed")

    api.application.config["PROPAGATE_EXCEPTIONS"] = False
    api.post("/begin", json={})
    with cyclic_garbage() as found:
        rv = api.post("/fail")
    assert rv.status_code == 500
    assert found == []
