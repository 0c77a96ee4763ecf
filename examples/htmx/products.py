"""What the shop sells, and the delivery slots it offers."""

from __future__ import annotations

import dataclasses
from datetime import date
from datetime import timedelta


@dataclasses.dataclass(frozen=True)
class Product:
    """One thing to buy.

    :param id: the product number.
    :param name: what it is called.
    :param price: the price in cents.
    """

    id: int
    name: str
    price: int


PRODUCTS = {
    p.id: p
    for p in [
        Product(1, "Apple", 60),
        Product(2, "Pear", 75),
        Product(3, "Sourdough bread", 420),
        Product(4, "Mountain cheese", 690),
        Product(5, "Green tea", 350),
    ]
}

#: Delivery windows of a day.
WINDOWS = ["08:00-12:00", "12:00-16:00", "16:00-20:00"]


def delivery_days(today: date | None = None) -> list[str]:
    """The next three days, as ISO dates.

    :param today: the day to count from.
    """
    start = today or date.today()
    return [(start + timedelta(days=n)).isoformat() for n in (1, 2, 3)]


def money(cents: int) -> str:
    """``cents`` as euros, e.g. ``4.20 €``.

    :param cents: an amount in cents.
    """
    return f"{cents // 100}.{cents % 100:02d} €"
