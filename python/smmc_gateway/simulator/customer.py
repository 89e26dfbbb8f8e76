"""The customer's side of the simulated meter (use cases 4 and 8): what the in-home
display shows, the customer interface push that feeds it, and the customer's opt-out.

Objects (in the meter's object model, see layout.py):

* consumer message text 0.0.96.13.0.255 and code 0.0.96.13.1.255 (Data, octet-string,
  writable): shown on the display as they are;
* the active tariff 0.0.96.14.0.255 (Data, set by the activity calendar's scripts) and
  the Charge 0.0.19.20.0.255 (class 113, objects/charge.py): the display shows the price
  of the charge-table row whose index is the active tariff number in ASCII ("1", "2" ...);
* the customer interface switch 0.0.96.50.0.255 (Data, boolean, writable): no standard
  object turns a consumer information push on or off, so this simulator uses one in the
  manufacturer-specific range of abstract objects (C = 96, D = 50..96); a gateway model
  names the real meter's object with ``[models.NAME.obis] customer_interface``.

While the switch is on, the meter pushes the consumer information to its local port every
``period_s`` (IDIS pushes the consumer information interface to client SAP 103) and the
display shows the latest; while it is off the display keeps what it last got and marks it
stale, and an opt-out made on the display cannot reach the meter (the display talks to
the meter over the same interface). An opt-out at the meter's own local interface always
registers. A registered opt-out appends event 70 (display) or 71 (local interface) to the
standard event log and raises alarm bit 6 (both this simulator's own numbering).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from smmc_gateway.cosem.obis import Obis

CONSUMER_MESSAGE = Obis(0, 0, 96, 13, 0, 255)
CONSUMER_CODE = Obis(0, 0, 96, 13, 1, 255)
CUSTOMER_INTERFACE = Obis(0, 0, 96, 50, 0, 255)
SOURCES = ("ihd", "local")


@dataclass(frozen=True)
class DisplayView:
    """One consumer information push as the display shows it."""

    at: datetime
    text: str
    code: str
    tariff: int | None
    price: str | None  # the active tariff's price, e.g. "150.25" (no currency: the meter
    #                    knows none)
    emergency: bool  # a DR emergency profile is active now


@dataclass
class CustomerDisplay:
    """The in-home display: the last consumer information push it received."""

    period_s: float = 10.0
    view: DisplayView | None = None
    pushes: int = 0
    stale: bool = False

    def due(self, now: datetime) -> bool:
        return self.view is None or now - self.view.at >= timedelta(seconds=self.period_s)

    def receive(self, view: DisplayView) -> None:
        self.view = view
        self.pushes += 1
        self.stale = False


def price_text(per_unit: int, price_scale: int) -> str:
    """``per_unit`` x 10^``price_scale`` as a decimal string (15025, -2 -> "150.25")."""
    if price_scale >= 0:
        return str(per_unit * 10**price_scale)
    digits = -price_scale
    sign, value = ("-" if per_unit < 0 else ""), abs(per_unit)
    whole, frac = divmod(value, 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"
