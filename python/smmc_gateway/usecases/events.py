"""Use case 7 (events and alarms) — event logs read by range, alarm pushes decoded.

Event logs are Profile generic (class 7) objects whose rows are (clock, event code):
0.0.99.98.0.255 standard, .1 fraud, .2 disconnector/limiter, .4 power quality; the
power failure log 1.0.99.97.0.255 holds (clock, duration s) of long power failures.
:func:`read_log` reads one log by range from the last published row on (a
:class:`LogMark`: timestamp and how many rows at that very second were already
published, so two events logged in the same second are never lost or repeated) and
returns :class:`MeterEvent` s with named types.

Event names and codes: :mod:`smmc_gateway.cim.event_types` is the one table. An IDIS
event code gets its name from ``IDIS_EVENT_NAMES`` there (``smmc.meter.<name>``; an unknown
code keeps its number: ``smmc.meter.<log>.<code>``) and every name its IEC 61968-9
EndDeviceEventType code (docs/event-codes.md).

Alarm pushes: :func:`alarm_bits` finds the alarm register in a data-notification from
the alarm Push setup (0.4.25.9.0.255: push id, device id, alarm register 0.0.97.98.0.255)
and :data:`ALARM_BITS` names its bits (the simulator's map: IDIS alarm descriptors differ
per profile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.cim.event_types import IDIS_EVENT_NAMES, meter_event_name
from smmc_gateway.dlms.session import ClientSession, DataAccessError

# log key (model OBIS name) -> short log name used in event types
LOGS: dict[str, str] = {
    "event_log_standard": "standard",
    "event_log_fraud": "fraud",
    "event_log_disconnect": "disconnector",
    "event_log_power_quality": "powerQuality",
    "power_failure_log": "powerFailure",
}

EVENT_NAMES = IDIS_EVENT_NAMES  # IDIS event code -> name (kept for callers of this module)

# Standard-log codes that are the customer's doing (use case 4): their own event name, and
# where the customer acted (the simulator's numbering, marked (sim) there).
CUSTOMER_CODES: dict[int, tuple[str, str]] = {
    70: ("smmc.customer.optOut", "opted out on the in-home display"),
    71: ("smmc.customer.optOut", "opted out at the meter's local interface"),
}

# Alarm register bits of the simulator's alarm push -> (event name, reason).
ALARM_BITS: dict[int, tuple[str, str]] = {
    0: ("smmc.alarm.outage", "powerDown"),
    1: ("smmc.alarm.restoration", "powerUp"),
    2: ("smmc.alarm.limiterTrip", "limiterThresholdExceeded"),
    3: ("smmc.alarm.disconnected", "disconnected"),
    4: ("smmc.alarm.firmware", "firmwareActivated"),
    5: ("smmc.alarm.tamper", "tamper"),
    6: ("smmc.customer.optOut", "customerOptOut"),
    # M-Bus (HAN devices, use case 4), DSMR alarm register 1 numbering
    **{16 + n: ("smmc.alarm.mbusCommunicationError", f"mbusChannel{n + 1}") for n in range(4)},
    **{24 + n: ("smmc.alarm.mbusDeviceDiscovered", f"mbusChannel{n + 1}") for n in range(4)},
}
ALARM_PUSH_ID = "0004190900ff"  # logical name of the alarm Push setup 0.4.25.9.0.255


@dataclass(frozen=True)
class LogMark:
    """Where publishing stopped in one log: the newest row's time and how many rows at
    that second were published."""

    stamp: datetime | None = None
    count: int = 0


@dataclass(frozen=True)
class MeterEvent:
    log: str
    code: int | None
    name: str
    """The event name (its IEC 61968-9 code: :func:`smmc_gateway.cim.event_type`)."""
    at: datetime
    details: str


def event_type(log: str, code: int) -> str:
    """The event name of IDIS code ``code`` in ``log``."""
    if log == "standard" and code in CUSTOMER_CODES:
        return CUSTOMER_CODES[code][0]
    return meter_event_name(log, code)


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _rows_after(rows: Sequence[tuple[Any, ...]], mark: LogMark
                ) -> tuple[list[tuple[datetime, Any]], LogMark]:
    """Rows not yet published (sorted by time) and the new mark."""
    stamped = sorted(((t, r[1] if len(r) > 1 else None) for r in rows
                      if (t := _aware(r[0])) is not None), key=lambda x: x[0])
    out: list[tuple[datetime, Any]] = []
    skip = mark.count
    for t, v in stamped:
        if mark.stamp is not None and t < mark.stamp:
            continue
        if mark.stamp is not None and t == mark.stamp and skip > 0:
            skip -= 1
            continue
        out.append((t, v))
    if not out:
        return out, mark
    newest = out[-1][0]
    same = sum(1 for t, _ in out if t == newest)
    if newest == mark.stamp:
        same += mark.count
    return out, LogMark(newest, same)


class LogMissing(Exception):
    """The meter has no such log (the GET was refused); the others are still read."""


async def read_log(session: ClientSession, key: str, obis: str, mark: LogMark, now: datetime,
                   first_read_s: float = 86400.0) -> tuple[list[MeterEvent], LogMark]:
    """New rows of one log as events, and the mark to store once they are published."""
    log = LOGS.get(key, key)
    start = mark.stamp if mark.stamp is not None else now - timedelta(seconds=first_read_s)
    try:
        rows = await session.read_profile(obis, start=start, end=now + timedelta(seconds=60),
                                          capture_period=0)
    except DataAccessError as exc:
        if exc.result in ("object-undefined", "object-unavailable", "read-write-denied",
                          "object-class-inconsistent"):
            raise LogMissing(f"{log} log {obis}: {exc.result}") from exc
        raise
    fresh, new_mark = _rows_after(rows, mark)
    events: list[MeterEvent] = []
    for at, value in fresh:
        if log == "powerFailure":
            events.append(MeterEvent(log, None, "smmc.meter.longPowerFailure", at,
                                     f"long power failure of {value} s ended ({obis})"))
            continue
        code = int(value) if isinstance(value, int) else -1
        what = CUSTOMER_CODES.get(code, ("", ""))[1] if log == "standard" else ""
        events.append(MeterEvent(log, code, event_type(log, code), at,
                                 f"{log} event log {obis}: code {code}"
                                 + (f" (the customer {what})" if what else "")))
    return events, new_mark


def alarm_bits(body: Mapping[str, Any]) -> int | None:
    """The alarm register value in an alarm push body (a structure whose first element is
    the alarm Push setup's logical name), else None."""
    items = body.get("value") if body.get("type") == "structure" else None
    if not isinstance(items, list) or not items:
        return None
    first = items[0]
    if not (isinstance(first, dict) and first.get("type") == "octet-string"
            and str(first.get("value", "")).lower() == ALARM_PUSH_ID):
        return None
    for item in reversed(items):
        if isinstance(item, dict) and isinstance(item.get("value"), int) \
                and not isinstance(item.get("value"), bool):
            return int(item["value"])
    return None


def named_alarms(bits: int, previous: int) -> list[tuple[str, str, int]]:
    """(event name, reason, bit) for the bits newly set since ``previous``; when none is
    new (the meter does not clear its register), every set bit, reason suffixed
    ``Repeated``."""
    new = bits & ~previous
    chosen = new if new else bits
    out: list[tuple[str, str, int]] = []
    for bit in range(32):
        if chosen & (1 << bit):
            kind, reason = ALARM_BITS.get(bit, (f"smmc.alarm.bit{bit}", f"alarmBit{bit}"))
            out.append((kind, reason if new else f"{reason}Repeated", bit))
    return out
