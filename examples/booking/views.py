"""The pages of the booking site.

A booking is one long-running conversation: **Book** begins it, the dates
and the room live in it, **Confirm** and **Cancel** end it. Choosing a room
is a nested conversation, so a half-made choice never touches the booking
until it is finished. Every link and form inside a booking carries its cid,
which is what lets two tabs book two hotels at once.
"""

from __future__ import annotations

import secrets
import typing as t
from datetime import date
from datetime import timedelta

from flask import abort
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from flask_conversation import begin_conversation
from flask_conversation import conversation
from flask_conversation import conversation_required
from flask_conversation import end_conversation
from flask_conversation import url_for_cid

from .hotels import BEDS
from .hotels import get_hotel
from .hotels import Hotel
from .hotels import search
from .stay import total_price
from .stay import validate_stay

bp = Blueprint("booking", __name__)

#: Inside a booking, the way out when the page is opened without one.
required = conversation_required(redirect_to="booking.index")


def booked_hotel() -> Hotel:
    """The hotel of the current booking; read through the chain, so it
    works in the nested room choice too.
    """
    hotel = get_hotel(conversation.get("hotel_id", -1))
    if hotel is None:
        abort(404)
    return hotel


@bp.after_request
def no_store(response: Response) -> Response:
    """Booking pages must not come from the browser's cache: the back
    button then asks the server, which knows whether the booking still
    exists.

    :param response: the page.
    """
    if request.path.startswith("/booking"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index() -> str:
    """Search hotels by name or city."""
    query = request.args.get("q", "")
    return render_template("search.html", query=query, hotels=search(query))


@bp.get("/hotels/<hotel:hotel>")
def hotel(hotel: Hotel) -> str:
    """One hotel, with its rooms and the **Book** button.

    :param hotel: the hotel in the URL.
    """
    return render_template("hotel.html", hotel=hotel)


@bp.post("/hotels/<hotel:hotel>/book")
@begin_conversation(description="Hotel booking")
def book(hotel: Hotel) -> Response:
    """Begin a booking of ``hotel``. The form carries no cid, so every
    click on **Book** begins a new booking, in its own conversation.

    :param hotel: the hotel in the URL.
    """
    conversation.description = f"Booking: {hotel.name}"
    conversation["hotel_id"] = hotel.id
    return redirect(url_for_cid("booking.dates"))


@bp.route("/booking/dates", methods=["GET", "POST"])
@required
def dates() -> str | Response | tuple[str, int]:
    """Arrival, departure and guests. Invalid input is shown again with
    its errors and nothing is kept in the booking until it is valid.
    """
    hotel = booked_hotel()
    tomorrow = date.today() + timedelta(days=1)
    form = {
        "check_in": conversation.get("check_in", tomorrow.isoformat()),
        "check_out": conversation.get("check_out", (tomorrow + timedelta(days=2)).isoformat()),
        "guests": str(conversation.get("guests", 2)),
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key in form}
        clean, errors = validate_stay(form, today=date.today())
        if not errors:
            conversation.update(clean)
            room = hotel.room(conversation.get("room", {}).get("id"))
            if room is not None and room.sleeps < clean["guests"]:
                # A room chosen earlier may not fit the new number of guests.
                del conversation["room"]
                flash(f"The {room.name} does not sleep {clean['guests']}: choose again.")
            return redirect(url_for_cid("booking.review"))
    page = render_template("dates.html", hotel=hotel, form=form, errors=errors)
    return (page, 422) if errors else page


@bp.get("/booking")
@required
def review() -> str | Response:
    """The booking so far, with the ways to go on."""
    if conversation.nested:
        return redirect(url_for_cid("booking.rooms"))
    if "check_in" not in conversation:
        return redirect(url_for_cid("booking.dates"))
    hotel = booked_hotel()
    room = hotel.room(_room_id())
    total = _total() if room is not None else None
    return render_template("review.html", hotel=hotel, room=room, beds=BEDS, total=total)


def _total() -> int:
    room = conversation["room"]
    return total_price(
        conversation["nights"], conversation["guests"], room["price"], room["breakfast"]
    )


def _room_id() -> str | None:
    room: dict[str, t.Any] | None = conversation.get("room")
    return room["id"] if room else None


@bp.post("/booking/room")
@required
@begin_conversation(nested=True, description="Choosing a room")
def choose_room() -> Response:
    """Begin the nested room choice on top of the booking."""
    return redirect(url_for_cid("booking.rooms"))


@bp.route("/booking/rooms", methods=["GET", "POST"])
@required
def rooms() -> str | Response:
    """First step of the room choice: which room. The pick is kept in the
    nested conversation only.
    """
    if not conversation.nested:
        return redirect(url_for_cid("booking.review"))
    hotel = booked_hotel()
    error = None
    if request.method == "POST":
        room = hotel.room(request.form.get("room"))
        if room is None:
            error = "Choose one of the rooms."
        elif room.sleeps < conversation["guests"]:
            error = f"The {room.name} sleeps {room.sleeps}, not {conversation['guests']}."
        else:
            conversation["room_id"] = room.id
            return redirect(url_for_cid("booking.extras"))
    selected = conversation.get("room_id") or _room_id()
    return render_template("rooms.html", hotel=hotel, selected=selected, error=error)


@bp.route("/booking/rooms/extras", methods=["GET", "POST"])
@required
def extras() -> str | Response:
    """Second step of the room choice: bed and breakfast. Finishing it
    ends the nested conversation and hands the choice to the booking.
    """
    if not conversation.nested or "room_id" not in conversation:
        return redirect(url_for_cid("booking.rooms"))
    hotel = booked_hotel()
    room = hotel.room(conversation["room_id"])
    assert room is not None
    if request.method == "POST":
        bed = request.form.get("bed", "double")
        choice = {
            "id": room.id,
            "name": room.name,
            "price": room.price,
            "bed": bed if bed in BEDS else "double",
            "breakfast": request.form.get("breakfast") == "yes",
        }
        conversation.end()
        # From here on ``conversation`` is the booking again.
        conversation["room"] = choice
        return redirect(url_for_cid("booking.review"))
    previous = conversation.get("room") or {}
    return render_template("extras.html", hotel=hotel, room=room, beds=BEDS, previous=previous)


@bp.post("/booking/rooms/leave")
@required
def leave_rooms() -> Response:
    """Give up the room choice and go back to the booking unchanged."""
    if conversation.nested:
        conversation.end()
    return redirect(url_for_cid("booking.review"))


@bp.post("/booking/confirm")
@end_conversation()
def confirm() -> Response:
    """Confirm the booking. The conversation ends after this view, yet the
    confirmation page that the redirect leads to still reads it once.
    """
    if not conversation.long_running:
        return redirect(url_for("booking.index"))
    if conversation.nested:
        # A stale form of the room choice: finish or leave that first.
        abort(redirect(url_for_cid("booking.rooms")))
    if "room" not in conversation:
        flash("Choose a room before you confirm.")
        # Raising keeps the booking open: @end_conversation only ends it
        # when the view returns.
        abort(redirect(url_for_cid("booking.review")))
    conversation["total"] = _total()
    conversation["reference"] = "SL-" + secrets.token_hex(3).upper()
    return redirect(url_for_cid("booking.confirmation"))


@bp.get("/booking/confirmation")
def confirmation() -> str | Response:
    """The confirmed booking. This works exactly once, right after
    **Confirm**: reloading it names a finished conversation.
    """
    if "reference" not in conversation:
        return redirect(url_for("booking.index"))
    hotel = booked_hotel()
    return render_template("confirmation.html", hotel=hotel, booking=dict(conversation), beds=BEDS)


@bp.post("/booking/cancel")
@end_conversation(root=True, before_redirect=True)
def cancel() -> Response:
    """Cancel the whole booking, room choice included."""
    if conversation.long_running:
        flash(f"{conversation.root.description} was cancelled.")
    return redirect(url_for("booking.index"))


@bp.get("/booking/resume")
@required
def resume() -> Response:
    """Open a booking from the sidebar at the step where it was left."""
    if conversation.nested:
        return redirect(url_for_cid("booking.rooms"))
    return redirect(url_for_cid("booking.review"))
