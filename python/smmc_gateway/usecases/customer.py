"""Use cases 4 and 8, the customer side: what the meter shows the customer (consumer
message, prices, DR events) and whether it feeds the in-home display.

Objects (each named by the meter model's OBIS table, defaults in
``ops/config_model.py DEFAULT_OBIS``):

* ``consumer_message`` 0.0.96.13.0.255 and ``consumer_message_code`` 0.0.96.13.1.255
  (Data, octet-string): the text (UTF-8, at most :data:`MAX_TEXT_BYTES`, the DSMR limit)
  and a short code (printable ASCII, at most :data:`MAX_CODE`) the display shows;
* ``charge`` 0.0.19.20.0.255 (Charge, class 113): the price per kWh of each tariff, a
  charge table row per tariff whose index is the tariff number in ASCII ("1", "2"...,
  what the active tariff 0.0.96.14.0.255 holds); ``charge_per_unit`` is a long
  (-32768..32767) scaled by ``price_scale``, the commodity is the active energy import
  register 1.0.1.8.0.255 (Wh) with ``commodity_scale`` -3 (the price is per kWh). No
  currency is written: the Charge has none (an Account, class 111, would);
* ``customer_interface`` 0.0.96.50.0.255 (Data, boolean): whether the meter feeds its
  customer interface (the consumer information push to the display). No standard object
  switches it; the default is an object in the manufacturer-specific range of abstract
  objects (C = 96, D = 50..96) and a model names its meter's own.

A DR event shown to the customer is the consumer message (text and code announcing the
level and the window) and, when a power level is given, the Limiter's emergency profile
(:mod:`~smmc_gateway.usecases.limiter`). Everything written is read back; a difference
raises :class:`CustomerNotConfirmed` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from smmc_gateway.cosem.datetime import from_utc, to_utc
from smmc_gateway.cosem.objects import Charge, Clock, Data
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.dlms.session import ClientSession
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.usecases import limiter as limiter_uc

MAX_TEXT_BYTES = 1024
MAX_CODE = 8
CHARGE_CLASS = Charge.class_id
IMPORT_ENERGY = "1.0.1.8.0.255"
COMMODITY_SCALE = -3  # the register counts Wh, the price is per kWh
_LONG = (-32768, 32767)
_SCALES = range(-4, 5)


class CustomerNotConfirmed(RuntimeError):
    """What the meter holds after the write differs from what was written."""


@dataclass(frozen=True)
class ConsumerMessage:
    text: str
    code: str


def _octets(value: TypedValue) -> bytes:
    payload = value.get("value")
    return bytes.fromhex(payload) if isinstance(payload, str) else b""


async def read_message(session: ClientSession, text_obis: str, code_obis: str) -> ConsumerMessage:
    text = _octets(await session.get(*Data(text_obis).value)).decode("utf-8", "replace")
    code = _octets(await session.get(*Data(code_obis).value)).decode("ascii", "replace")
    return ConsumerMessage(text, code)


async def write_message(
    session: ClientSession, message: ConsumerMessage, *, text_obis: str, code_obis: str
) -> ConsumerMessage:
    """Write text and code, read both back, confirm."""
    await session.set(
        *Data(text_obis).value, {"type": "octet-string", "value": message.text.encode().hex()}
    )
    await session.set(
        *Data(code_obis).value,
        {"type": "octet-string", "value": message.code.encode("ascii").hex()},
    )
    back = await read_message(session, text_obis, code_obis)
    if back != message:
        raise CustomerNotConfirmed(
            f"consumer message read back as {back.text!r} / code "
            f"{back.code!r}, written {message.text!r} / "
            f"{message.code!r}"
        )
    return back


# -- prices ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Price:
    tier: int  # the tariff number (the charge table index, in ASCII)
    price: Decimal  # per kWh

    def describe(self) -> dict[str, object]:
        return {"priceTier": self.tier, "price": str(self.price)}


def price_scale(prices: Sequence[Price]) -> tuple[int, list[int]] | str:
    """The most precise ``price_scale`` at which every price is a whole long; or a
    sentence saying which price cannot be held exactly."""
    for scale in _SCALES:
        units = [p.price.scaleb(-scale) for p in prices]
        if all(u == u.to_integral_value() and _LONG[0] <= u <= _LONG[1] for u in units):
            return scale, [int(u) for u in units]
    worst = max(prices, key=lambda p: len(p.price.as_tuple().digits))
    return (
        f"price {worst.price} (tier {worst.tier}) cannot be held exactly by the meter's "
        f"Charge table (a whole number -32768..32767 times one power of ten 10^-4..10^4 "
        f"shared by all tiers); round it, or send fewer digits"
    )


def parse_price(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def unit_charge(prices: Sequence[Price], scale: int, units: Sequence[int]) -> TypedValue:
    return {
        "type": "structure",
        "value": [
            {
                "type": "structure",
                "value": [
                    {"type": "integer", "value": COMMODITY_SCALE},
                    {"type": "integer", "value": scale},
                ],
            },
            {
                "type": "structure",
                "value": [
                    {"type": "long-unsigned", "value": 3},
                    {
                        "type": "octet-string",
                        "value": bytes(int(g) for g in IMPORT_ENERGY.split(".")).hex(),
                    },
                    {"type": "integer", "value": 2},
                ],
            },
            {
                "type": "array",
                "value": [
                    {
                        "type": "structure",
                        "value": [
                            {"type": "octet-string", "value": str(p.tier).encode().hex()},
                            {"type": "long", "value": u},
                        ],
                    }
                    for p, u in zip(prices, units, strict=True)
                ],
            },
        ],
    }


def read_unit_charge(value: TypedValue) -> list[Price]:
    """The prices of a unit_charge value (tiers whose index is not a number are skipped)."""
    items = value.get("value")
    if not isinstance(items, list) or len(items) != 3:
        raise CustomerNotConfirmed(f"unit_charge is not a structure of 3: {value!r}"[:200])
    scale = int(items[0]["value"][1]["value"])
    out: list[Price] = []
    for row in items[2]["value"] or []:
        index = bytes.fromhex(row["value"][0]["value"]).decode("ascii", "replace")
        if index.isdigit():
            out.append(Price(int(index), Decimal(int(row["value"][1]["value"])).scaleb(scale)))
    return out


@dataclass(frozen=True)
class PriceState:
    active: list[Price]
    passive: list[Price]
    activation: datetime | None
    active_tariff: int | None


async def write_prices(
    session: ClientSession,
    prices: Sequence[Price],
    *,
    start: datetime | None,
    charge_obis: str,
    tariff_obis: str,
    clock_obis: str,
) -> PriceState:
    """The prices as the passive unit charge, activated now (method 2) or at ``start``
    (attribute 7, the meter's local time); read back and confirmed."""
    scaled = price_scale(prices)
    if isinstance(scaled, str):
        raise CustomerNotConfirmed(scaled)
    scale, units = scaled
    charge = Charge(charge_obis)
    await session.set(*charge.unit_charge_passive, unit_charge(prices, scale, units))
    deviation = int((await session.get(*Clock(clock_obis).time_zone))["value"])
    if start is None:
        await session.action(*charge.activate_passive_unit_charge, {"type": "integer", "value": 0})
    else:
        stamp = from_utc(start.astimezone(UTC), deviation=deviation)
        await session.set(
            *charge.unit_charge_activation_time, {"type": "octet-string", "value": stamp.hex()}
        )
    active = read_unit_charge(await session.get(*charge.unit_charge_active))
    passive = read_unit_charge(await session.get(*charge.unit_charge_passive))
    raw_at = await session.get(*charge.unit_charge_activation_time)
    activation = to_utc(bytes.fromhex(str(raw_at["value"])), default_deviation=deviation)
    tariff = (await session.get(*Data(tariff_obis).value)).get("value")
    state = PriceState(
        active,
        passive,
        activation,
        tariff if isinstance(tariff, int) and not isinstance(tariff, bool) else None,
    )
    wanted = sorted(prices, key=lambda p: p.tier)
    held = sorted(passive if start is not None else active, key=lambda p: p.tier)
    wrong = (
        []
        if held == wanted
        else [f"{'passive' if start else 'active'} prices read back {[p.describe() for p in held]}"]
    )
    if start is not None and (activation is None or abs((activation - start).total_seconds()) > 1):
        wrong.append(f"unit_charge_activation_time read back {activation}, written {start}")
    if wrong:
        raise CustomerNotConfirmed("; ".join(wrong))
    return state


# -- the customer interface ------------------------------------------------------------
async def set_interface(session: ClientSession, enabled: bool, obis: str) -> bool:
    await session.set(*Data(obis).value, {"type": "boolean", "value": enabled})
    back = (await session.get(*Data(obis).value)).get("value")
    if back is not enabled:
        raise CustomerNotConfirmed(
            f"customer interface {obis} read back {back!r}, written {enabled}"
        )
    return bool(back)


# -- DR events shown to the customer ----------------------------------------------------
@dataclass(frozen=True)
class DrEvent:
    start: datetime
    end: datetime
    level: int
    text: str | None = None  # None: a default announcement
    code: str | None = None  # None: "DR" and the level
    threshold_w: int | None = None  # with it, the emergency profile is written too
    profile_id: int = 1

    def message(self) -> ConsumerMessage:
        span = f"{_hm(self.start)}-{_hm(self.end)} UTC"
        text = (
            self.text
            if self.text is not None
            else (
                f"Demand response event level {self.level}: {self.start.date().isoformat()} "
                f"{span}" + (f", power limited to {self.threshold_w} W" if self.threshold_w else "")
            )
        )
        return ConsumerMessage(text, self.code if self.code is not None else f"DR{self.level}")


def _hm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


@dataclass(frozen=True)
class DrShown:
    message: ConsumerMessage
    emergency: limiter_uc.EmergencyState | None


async def show_dr_event(
    session: ClientSession,
    event: DrEvent,
    *,
    text_obis: str,
    code_obis: str,
    limiter_obis: str,
    clock_obis: str,
    model: ModelConfig | None = None,
) -> DrShown:
    """The announcement (read back) and, with a power level, the emergency profile
    (read back by :func:`limiter.schedule_emergency`; the threshold in the unit and scaler
    of ``model``'s limiter)."""
    emergency = None
    if event.threshold_w is not None:
        emergency = await limiter_uc.schedule_emergency(
            session,
            limiter_obis,
            profile_id=event.profile_id,
            start=event.start,
            duration_s=int((event.end - event.start).total_seconds()),
            threshold_w=event.threshold_w,
            clock_obis=clock_obis,
            model=model,
        )
    shown = await write_message(session, event.message(), text_obis=text_obis, code_obis=code_obis)
    return DrShown(shown, emergency)
