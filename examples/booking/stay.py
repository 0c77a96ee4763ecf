"""Checking the dates and guests a user enters for a booking."""

from __future__ import annotations

import typing as t
from datetime import date

#: The longest stay the site takes, in nights.
MAX_NIGHTS = 30
MAX_GUESTS = 6


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def validate_stay(
    form: t.Mapping[str, str], today: date
) -> tuple[dict[str, t.Any], dict[str, str]]:
    """Check a stay: arrival, departure and number of guests.

    :param form: the submitted ``check_in``, ``check_out`` and ``guests``.
    :param today: the first day that can be booked.
    :return: the clean values (ISO dates, guests as an int) and the errors
        by field name; the values are only complete when there are no
        errors.
    """
    errors: dict[str, str] = {}
    clean: dict[str, t.Any] = {}

    check_in = _parse_date(form.get("check_in", ""))
    check_out = _parse_date(form.get("check_out", ""))
    if check_in is None:
        errors["check_in"] = "Enter the arrival date."
    elif check_in < today:
        errors["check_in"] = "The arrival date is in the past."
    if check_out is None:
        errors["check_out"] = "Enter the departure date."
    elif check_in is not None and check_out <= check_in:
        errors["check_out"] = "The departure must be after the arrival."
    elif check_in is not None and (check_out - check_in).days > MAX_NIGHTS:
        errors["check_out"] = f"Stays are at most {MAX_NIGHTS} nights."
    if check_in is not None and check_out is not None and not errors:
        clean["check_in"] = check_in.isoformat()
        clean["check_out"] = check_out.isoformat()
        clean["nights"] = (check_out - check_in).days

    guests = form.get("guests", "")
    if not guests.isdigit() or not 1 <= int(guests) <= MAX_GUESTS:
        errors["guests"] = f"Enter a number of guests from 1 to {MAX_GUESTS}."
    else:
        clean["guests"] = int(guests)
    return clean, errors


#: Breakfast, per guest and night, in euros.
BREAKFAST_PRICE = 15


def total_price(nights: int, guests: int, room_price: int, breakfast: bool) -> int:
    """What the stay costs in euros.

    :param nights: length of the stay.
    :param guests: how many people stay.
    :param room_price: price of the room per night.
    :param breakfast: whether breakfast is included.
    """
    extra = BREAKFAST_PRICE * guests if breakfast else 0
    return nights * (room_price + extra)
