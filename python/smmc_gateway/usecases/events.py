"""Use case 7 (events and alarms) — event logs read by range, alarm pushes decoded, both
as the meter's device model says (:mod:`smmc_gateway.models`, docs/models.md).

Event logs are Profile generic (class 7) objects whose rows are (clock, event code):
0.0.99.98.0.255 standard, .1 fraud, .2 disconnector/limiter, .4 power quality (the
model's ``obis`` map may move them); the power failure log 1.0.99.97.0.255 holds
(clock, duration s) of long power failures. :func:`read_log` reads one log by range from
the last published row on (a :class:`LogMark`: timestamp and how many rows at that very
second were already published, so two events logged in the same second are never lost or
repeated) and returns :class:`MeterEvent` s named by the model's code table for that log
(``event_codes`` and ``event_logs.<log>.codes``). A code the model does not name is
published all the same, as an unknown event keeping its raw number
(``smmc.meter.<log>.<code>``, a family with its own IEC 61968-9 code).

Alarm pushes: :func:`alarm_values` finds the model's push layout a data-notification
follows (by its push id, element 0, when the layout starts with it; else by its length)
and reads each alarm register at its position; :func:`named_alarms` names the bits from
the register's bit map (a bit without a name: ``smmc.alarm.bit<n>``, never dropped).
Without a model the functions use :func:`~smmc_gateway.models.catalog.base_model`, the
simulator's conventions.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smmc_gateway.cim.event_types import IDIS_EVENT_NAMES
from smmc_gateway.cosem.values import text_of
from smmc_gateway.dlms.session import ClientSession, DataAccessError
from smmc_gateway.models.catalog import base_model
from smmc_gateway.models.spec import AlarmRegister, EventCode, EventLog
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.usecases.meter_clock import MeterClock

# log key (model OBIS name) -> short log name used in event types
LOGS: dict[str, str] = {
    "event_log_standard": "standard",
    "event_log_fraud": "fraud",
    "event_log_disconnect": "disconnector",
    "event_log_power_quality": "powerQuality",
    "power_failure_log": "powerFailure",
}

EVENT_NAMES = IDIS_EVENT_NAMES  # IDIS event code -> name (kept for callers of this module)


def _model(model: ModelConfig | None) -> ModelConfig:
    return model if model is not None else base_model()


def event_log(model: ModelConfig | None, log: str) -> EventLog | None:
    """The model's code table of event log ``log`` (short name), if it has one."""
    for table in _model(model).event_logs:
        if table.log == log:
            return table
    return None


def event_code(log: str, code: int, model: ModelConfig | None = None) -> EventCode | None:
    """What the model says of ``code`` in ``log``; None for a code it does not name."""
    table = event_log(model, log)
    return table.codes.get(code) if table is not None else None


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


def event_type(log: str, code: int, model: ModelConfig | None = None) -> str:
    """The event name of code ``code`` in ``log`` per ``model``; an unknown code keeps its
    number (``smmc.meter.<log>.<code>``)."""
    found = event_code(log, code, model)
    return found.name if found is not None else f"smmc.meter.{log}.{code}"


def _stamped(rows: Sequence[tuple[Any, ...]], clock: MeterClock) -> list[tuple[datetime, Any]]:
    """(UTC stamp, code) of the rows with a date-time, in the log's order: a stamp without
    deviation is read with the model's clock conventions (the row before it tells the two
    passes of a repeated hour apart)."""
    out: list[tuple[datetime, Any]] = []
    after: datetime | None = None
    for r in rows:
        if not r or not isinstance(r[0], datetime):
            continue
        after = clock.stamp_to_utc(r[0], after)
        out.append((after, r[1] if len(r) > 1 else None))
    return out


def _rows_after(
    rows: Sequence[tuple[Any, ...]], mark: LogMark, clock: MeterClock | None = None
) -> tuple[list[tuple[datetime, Any]], LogMark]:
    """Rows not yet published (sorted by time) and the new mark."""
    stamped = sorted(_stamped(rows, clock or MeterClock()), key=lambda x: x[0])
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


async def read_log(
    session: ClientSession,
    key: str,
    obis: str,
    mark: LogMark,
    now: datetime,
    first_read_s: float = 86400.0,
    model: ModelConfig | None = None,
) -> tuple[list[MeterEvent], LogMark]:
    """New rows of one log as events (named per ``model``), and the mark to store once
    they are published."""
    log = LOGS.get(key, key)
    clock = MeterClock(model.clock, model.name) if model is not None else MeterClock()
    start = mark.stamp if mark.stamp is not None else now - timedelta(seconds=first_read_s)
    try:
        rows = await session.read_profile(
            obis,
            start=clock.range_bound(start),
            end=clock.range_bound(now + timedelta(seconds=60)),
            capture_period=0,
        )
    except DataAccessError as exc:
        if exc.result in (
            "object-undefined",
            "object-unavailable",
            "read-write-denied",
            "object-class-inconsistent",
        ):
            raise LogMissing(f"{log} log {obis}: {exc.result}") from exc
        raise
    fresh, new_mark = _rows_after(rows, mark, clock)
    events: list[MeterEvent] = []
    name_of = _model(model).name
    for at, value in fresh:
        if log == "powerFailure":
            events.append(
                MeterEvent(
                    log,
                    None,
                    "smmc.meter.longPowerFailure",
                    at,
                    f"long power failure of {value} s ended ({obis})",
                )
            )
            continue
        code = int(value) if isinstance(value, int) and not isinstance(value, bool) else -1
        known = event_code(log, code, model)
        if known is not None:
            extra = f" ({known.details})" if known.details else ""
        elif code == -1:
            extra = f" (the row's code is not a number: {value!r})"
        else:
            extra = f" (a code model {name_of!r} does not name)"
        events.append(
            MeterEvent(
                log,
                code,
                event_type(log, code, model),
                at,
                f"{log} event log {obis}: code {code}{extra}",
            )
        )
    return events, new_mark


def _integer(item: object) -> int | None:
    if isinstance(item, dict):
        value = item.get("value")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def alarm_values(
    body: Mapping[str, Any],
    model: ModelConfig | None = None,
    attribute: tuple[int, str, int] | None = None,
) -> list[tuple[AlarmRegister, int]] | None:
    """(alarm register, its value) of each alarm register the push carries, when the
    data-notification ``body`` follows one of the model's push layouts holding an alarm
    register, or when the event-notification's ``attribute`` is the value of one of the
    model's alarm registers (class 1, attribute 2); else None (not an alarm push)."""
    if attribute is not None:
        class_id, obis, attr = attribute
        value = _integer(body)
        match = [reg for reg in _model(model).alarms if reg.obis == obis]
        if class_id != 1 or attr != 2 or value is None or not match:
            return None
        return [(match[0], value)]
    items = body.get("value") if body.get("type") == "structure" else None
    if not isinstance(items, list) or not items:
        return None
    m = _model(model)
    first = items[0]
    sent_id = (
        str(first.get("value", "")).lower()
        if isinstance(first, dict) and first.get("type") == "octet-string"
        else None
    )
    for push in m.pushes:
        regs = [(reg, pos) for reg in m.alarms if (pos := push.position_of(reg.obis)) is not None]
        if not regs:
            continue
        if push.carries_push_id():
            if sent_id != push.push_id_hex:
                continue
        elif len(items) != push.objects[-1].position + 1:
            continue
        found = [
            (reg, value)
            for reg, pos in regs
            if pos < len(items) and (value := _integer(items[pos])) is not None
        ]
        if found:
            return found
    return None


def alarm_bits(body: Mapping[str, Any], model: ModelConfig | None = None) -> int | None:
    """The value of the first alarm register in an alarm push body, else None."""
    found = alarm_values(body, model)
    return found[0][1] if found else None


HAN_ALARMS = frozenset({"smmc.alarm.mbusCommunicationError", "smmc.alarm.mbusDeviceDiscovered"})
"""Alarm names that say the meter's M-Bus (HAN) devices changed (use case 4)."""


def han_alarm(body: Mapping[str, Any], model: ModelConfig | None = None) -> bool:
    """Whether an alarm push has a bit set that the model names as an M-Bus alarm."""
    return any(
        reg.named(bit).name in HAN_ALARMS
        for reg, bits in alarm_values(body, model) or ()
        for bit in range(32)
        if bits >> bit & 1
    )


def named_alarms(
    bits: int, previous: int, register: AlarmRegister | None = None
) -> list[tuple[str, str, int]]:
    """(event name, reason, bit) for the bits newly set since ``previous``, named by the
    register's bit map (default: the base model's alarm register 1); when none is new (the
    meter does not clear its register), every set bit, reason suffixed ``Repeated``."""
    reg = register if register is not None else base_model().alarms[0]
    new = bits & ~previous
    chosen = new if new else bits
    out: list[tuple[str, str, int]] = []
    for bit in range(32):
        if chosen & (1 << bit):
            named = reg.named(bit)
            out.append((named.name, named.reason if new else f"{named.reason}Repeated", bit))
    return out


def decode_alarms(
    body: Mapping[str, Any],
    model: ModelConfig | None,
    seen: MutableMapping[str, int],
    meter_id: str,
    attribute: tuple[int, str, int] | None = None,
) -> list[tuple[str, str, str]]:
    """(event name, reason, details) of an alarm push per ``model``; ``seen`` keeps each
    meter's last value of each register (``meter/register_n``) so that bits already
    reported are not reported again while the meter keeps them set. An event-notification
    whose attribute the model names (``notifications``) is that event, its value in the
    details. Empty for other pushes."""
    out: list[tuple[str, str, str]] = []
    if attribute is not None:
        for spec in _model(model).notifications:
            if spec.matches(attribute):
                class_id, obis, attr = attribute
                where = f"event-notification {class_id}/{obis}/{attr}"
                return [(spec.name, spec.reason, f"{where}: {text_of(body)}")]
    for reg, bits in alarm_values(body, model, attribute) or ():
        key = f"{meter_id}/{reg.key}"
        previous = seen.get(key, 0)
        seen[key] = bits
        out.extend(
            (name, reason, f"alarm {reg.key} {reg.obis} 0x{bits:08x}: bit {bit}")
            for name, reason, bit in named_alarms(bits, previous, reg)
        )
    return out


__all__ = [
    "LOGS",
    "LogMark",
    "LogMissing",
    "MeterEvent",
    "alarm_bits",
    "alarm_values",
    "decode_alarms",
    "event_code",
    "event_log",
    "event_type",
    "han_alarm",
    "named_alarms",
    "read_log",
]
