"""The hotel catalogue of the booking example.

A real site would query a database; a fixed tuple keeps the example about
conversations.
"""

from __future__ import annotations

import dataclasses
import typing as t

from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError


@dataclasses.dataclass(frozen=True)
class Room:
    """A kind of room that a hotel offers.

    :param id: short identifier used in forms.
    :param name: what guests see.
    :param sleeps: how many guests it takes at most.
    :param price: price per night in euros.
    """

    id: str
    name: str
    sleeps: int
    price: int


@dataclasses.dataclass(frozen=True)
class Hotel:
    """A hotel that can be booked.

    :param id: the number in its URL.
    :param name: the hotel's name.
    :param city: where it is.
    :param stars: its rating, 1 to 5.
    :param summary: one paragraph for its page.
    :param rooms: the rooms it offers.
    """

    id: int
    name: str
    city: str
    stars: int
    summary: str
    rooms: tuple[Room, ...]

    @property
    def price_from(self) -> int:
        """The lowest price per night."""
        return min(room.price for room in self.rooms)

    def room(self, room_id: str | None) -> Room | None:
        """The room with this id, or ``None``.

        :param room_id: a room id from a form.
        """
        return next((r for r in self.rooms if r.id == room_id), None)


HOTELS: tuple[Hotel, ...] = (
    Hotel(
        1,
        "Harbour View",
        "Lisbon",
        4,
        "Tiled rooms over the river, a roof terrace and breakfast until noon.",
        (
            Room("standard", "Standard double", 2, 110),
            Room("river", "River view double", 2, 145),
            Room("family", "Family suite", 4, 210),
        ),
    ),
    Hotel(
        2,
        "Alpine Lodge",
        "Innsbruck",
        3,
        "Wooden chalet rooms ten minutes from the cable car, with a sauna.",
        (
            Room("standard", "Standard double", 2, 95),
            Room("balcony", "Double with balcony", 2, 120),
            Room("loft", "Loft for four", 4, 180),
        ),
    ),
    Hotel(
        3,
        "Canal House",
        "Amsterdam",
        4,
        "A 17th-century merchant's house on a quiet canal, bicycles included.",
        (
            Room("cosy", "Cosy single", 1, 90),
            Room("canal", "Canal-side double", 2, 165),
            Room("attic", "Attic suite", 3, 230),
        ),
    ),
    Hotel(
        4,
        "Old Town Inn",
        "Kraków",
        3,
        "Family-run rooms a short walk from the main square.",
        (
            Room("standard", "Standard double", 2, 70),
            Room("triple", "Triple room", 3, 95),
        ),
    ),
    Hotel(
        5,
        "Seaside Rooms",
        "Porto",
        2,
        "Simple, bright rooms by the beach at Foz, with a surfboard rack.",
        (
            Room("standard", "Standard double", 2, 65),
            Room("sea", "Sea view double", 2, 85),
        ),
    ),
)

#: Bed layouts offered when a room is chosen.
BEDS: t.Mapping[str, str] = {"double": "One double bed", "twin": "Two single beds"}


def search(query: str) -> list[Hotel]:
    """Hotels whose name or city contains ``query`` (case-insensitive);
    every hotel for an empty query.

    :param query: what the user typed.
    """
    needle = query.strip().casefold()
    return [h for h in HOTELS if needle in h.name.casefold() or needle in h.city.casefold()]


def get_hotel(hotel_id: int) -> Hotel | None:
    """The hotel with this id, or ``None``.

    :param hotel_id: the hotel's number.
    """
    return next((h for h in HOTELS if h.id == hotel_id), None)


class HotelConverter(BaseConverter):
    """URL converter ``<hotel:hotel>``: the view receives the
    :class:`Hotel`, and an unknown id is a 404 before the view (and its
    decorators) run.
    """

    regex = r"\d+"

    def to_python(self, value: str) -> Hotel:
        """Look the hotel up.

        :param value: the id in the URL.
        """
        hotel = get_hotel(int(value))
        if hotel is None:
            raise ValidationError()
        return hotel

    def to_url(self, value: Hotel | int) -> str:
        """The id for a URL.

        :param value: a hotel or its id.
        """
        return str(value.id if isinstance(value, Hotel) else value)
