"""The pages and fragments of the shop.

A cart is one long-running conversation, begun by the first **Add**. The
page never reloads while you shop: htmx swaps fragments, and the
extension's page script (``conversation_script()`` in ``base.html``) sends
the tab's cid with every htmx request and follows the cid a response names.
Choosing a delivery slot is a nested conversation in a modal that returns
to the cart; the badge polls with ``@conversation_readonly`` so that it never
waits for a slow request of the cart; checking out ends the conversation and
sends the browser to its receipt with ``HX-Redirect``.
"""

from __future__ import annotations

import secrets
import time
import typing as t

from flask import abort
from flask import Blueprint
from flask import current_app
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from flask_conversation import begin_conversation
from flask_conversation import Conversation
from flask_conversation import conversation
from flask_conversation import conversation_readonly
from flask_conversation import conversation_required
from flask_conversation import url_for_cid

from .products import delivery_days
from .products import money
from .products import PRODUCTS
from .products import WINDOWS

bp = Blueprint("shop", __name__)


@bp.app_context_processor
def helpers() -> dict[str, t.Any]:
    return {"money": money}


def cart_view(error: str | None = None) -> dict[str, t.Any]:
    """What the cart fragment shows, read through the stack: the same from
    the nested delivery conversation as from the cart itself.

    :param error: a message to show above the cart.
    """
    items: dict[str, int] = conversation.get("items", {})
    lines = [
        {"product": PRODUCTS[int(pid)], "quantity": n, "amount": PRODUCTS[int(pid)].price * n}
        for pid, n in items.items()
    ]
    return {
        "lines": lines,
        "count": sum(items.values()),
        "total": sum(line["amount"] for line in lines),
        "delivery": conversation.get("delivery"),
        "note": conversation.get("note", ""),
        "error": error,
    }


def cart_fragment(error: str | None = None, close_modal: bool = False) -> Response:
    """The cart fragment. It tells the badge to update, and puts the cart's
    cid in the address bar, so that reloading the page keeps the cart.

    :param error: a message to show above the cart.
    :param close_modal: also empty the modal (an out-of-band swap).
    """
    rv = make_response(render_template("_cart.html", close_modal=close_modal, **cart_view(error)))
    rv.headers["HX-Trigger"] = "cart-changed"
    if conversation.long_running:
        rv.headers["HX-Replace-Url"] = url_for("shop.index", cid=conversation.root.id)
    return rv


def open_cart() -> Conversation:
    """The cart of this tab, begun by its first **Add**: the root of the
    stack, also while the delivery modal is open.
    """
    conversation.begin(join=True, description="Cart")
    return conversation.root


@bp.get("/")
def index() -> str:
    """The shop: products, the cart of the tab (if the address names one)."""
    return render_template("shop.html", products=PRODUCTS.values(), **cart_view())


@bp.get("/cart")
def cart() -> Response:
    """The cart fragment."""
    return cart_fragment()


@bp.post("/cart/items")
def add() -> Response:
    """Add one of a product; the first one begins the cart."""
    product = PRODUCTS.get(request.form.get("product", type=int) or 0)
    if product is None:
        abort(404)
    items = open_cart().setdefault("items", {})
    key = str(product.id)
    items[key] = items.get(key, 0) + 1
    return cart_fragment()


@bp.post("/cart/items/<int:product_id>/remove")
@conversation_required
def remove(product_id: int) -> Response:
    """Remove one of a product.

    :param product_id: the product.
    """
    items = conversation.root.get("items", {})
    key = str(product_id)
    if key in items:
        items[key] -= 1
        if not items[key]:
            del items[key]
    return cart_fragment()


def check_note(note: str) -> None:
    """Stands for a call to a slow service (a card printer's API, say): it
    takes ``SLOW_SAVE_SECONDS``.

    :param note: the gift note.
    """
    time.sleep(current_app.config["SLOW_SAVE_SECONDS"])


@bp.post("/cart/note")
@conversation_required
def save_note() -> str:
    """Save the gift note, after a slow check that holds the cart's stack
    all the while: other requests of the cart wait, the badge does not.
    """
    cart = conversation.root
    note = request.form.get("note", "")[:200]
    check_note(note)
    cart["note"] = note
    return render_template("_note.html", note=note, saved=True)


@bp.get("/cart/badge")
@conversation_readonly
def badge() -> str:
    """The number of items, for the badge that polls: read-only, so that it
    answers at once while another request of the cart runs.
    """
    return str(sum(conversation.get("items", {}).values()))


@bp.post("/delivery")
@conversation_required
@begin_conversation(nested=True, description="Delivery slot")
def delivery() -> str:
    """Open the modal: a nested conversation, so that a half-made choice
    never touches the cart.
    """
    return render_template("_delivery.html", step="day", days=delivery_days())


@bp.post("/delivery/day")
@conversation_required
def delivery_day() -> str:
    """Step 1: the day."""
    day = request.form.get("day")
    if day not in delivery_days():
        return render_template(
            "_delivery.html", step="day", days=delivery_days(), error="Pick a day."
        )
    conversation["day"] = day
    return render_template("_delivery.html", step="window", day=day, windows=WINDOWS)


@bp.post("/delivery/done")
@conversation_required
def delivery_done() -> Response | str:
    """Step 2: the time window. Ends the nested conversation and hands the
    slot to the cart.
    """
    window = request.form.get("window")
    if not conversation.nested or "day" not in conversation:
        abort(400)
    if window not in WINDOWS:
        return render_template(
            "_delivery.html",
            step="window",
            day=conversation["day"],
            windows=WINDOWS,
            error="Pick a time.",
        )
    slot = {"day": conversation["day"], "window": window}
    conversation.end()
    conversation["delivery"] = slot
    return cart_fragment(close_modal=True)


@bp.post("/delivery/cancel")
@conversation_required
def delivery_cancel() -> Response:
    """Close the modal without touching the cart."""
    if conversation.nested:
        conversation.end()
    return cart_fragment(close_modal=True)


@bp.post("/checkout")
@conversation_required
def checkout() -> Response:
    """End the cart and send the browser to the receipt, which reads the
    ended cart once.
    """
    if not conversation.get("items"):
        return cart_fragment(error="Your cart is empty.")
    if conversation.get("delivery") is None:
        return cart_fragment(error="Choose a delivery slot first.")
    conversation.root["reference"] = "CS-" + secrets.token_hex(3).upper()
    conversation.end(root=True)
    return Response(status=200, headers={"HX-Redirect": url_for_cid("shop.receipt")})


@bp.get("/receipt")
def receipt() -> Response:
    """The receipt: readable by the one request after the checkout."""
    if "reference" not in conversation:
        return redirect(url_for("shop.index"))
    rv = make_response(
        render_template("receipt.html", reference=conversation["reference"], **cart_view())
    )
    # Never from the browser's cache: back and reload ask the server.
    rv.headers["Cache-Control"] = "no-store"
    return rv
