"""Clock (class 8): the meter's own time, with drift, time zone and adjustments.

The meter time is kept in UTC: ``meter_time(now) = base + (now - reference) *
(1 + drift_ppm / 1e6)``; setting it moves ``base``/``reference``. Attribute 2
shows it as local time (local = UTC - time_zone minutes, the Blue Book sign).
When daylight_savings_enabled, local time moves by daylight_savings_deviation
between daylight_savings_begin (in standard local time) and _end (in summer
local time); the status bit 0x80 is then set and the date-time's deviation
includes the shift. Rules may use wildcards: year 0xFFFF, day 0xFE/0xFD
(last / second last day of month), and a day of week meaning the last such
weekday on or before a 0xFE/0xFD day, or the first on or after a given day.
Southern-hemisphere rules (begin later in the year than end) work too.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.cosem.datetime import from_utc, to_utc, unpack_datetime
from smmc_gateway.cosem.values import (
    TypedValue,
    as_bool,
    as_datetime_bytes,
    as_int,
    as_structure,
    boolean,
    enum,
    integer,
    long,
    octet_string,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

TimeSetHook = Callable[[datetime, datetime, datetime], None]
"""Called with (now, old meter time, new meter time) whenever the time is set."""

SHIFT_LIMIT_SECONDS = 900


STATUS_DST_ACTIVE = 0x80


@functools.lru_cache(maxsize=256)
def resolve_dst_rule(rule: bytes, year: int) -> datetime | None:
    """The naive local instant a (possibly wildcarded) DST rule means in ``year``."""
    fields = unpack_datetime(rule)
    if fields.month is None or fields.month > 12 or fields.day is None:
        return None
    if fields.year is not None and fields.year != year:
        return None
    last = calendar.monthrange(year, fields.month)[1]
    special = fields.day in (0xFD, 0xFE)
    day = {0xFE: last, 0xFD: last - 1}.get(fields.day, fields.day)
    if day > last:
        return None
    if fields.weekday is not None:
        weekday = datetime(year, fields.month, day).isoweekday()
        if special:
            day -= (weekday - fields.weekday) % 7
        else:
            day += (fields.weekday - weekday) % 7
            if day > last:
                return None
    return datetime(
        year, fields.month, day, fields.hour or 0, fields.minute or 0, fields.second or 0
    )


def _nearest(value: datetime, step_seconds: int) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    seconds = (value - epoch).total_seconds()
    return epoch + timedelta(seconds=round(seconds / step_seconds) * step_seconds)


class Clock(CosemObject):
    class_id = 8
    writable = frozenset({2, 3, 5, 6, 7, 8})
    methods = frozenset({1, 2, 3, 4, 5, 6})

    def __init__(
        self,
        now: datetime,
        *,
        offset_seconds: float = 0.0,
        drift_ppm: float = 0.0,
        time_zone: int = 0,
        on_time_set: TimeSetHook | None = None,
        measuring_period: int = 900,
    ) -> None:
        super().__init__("0.0.1.0.0.255")
        self.reference = now
        self.base = now + timedelta(seconds=offset_seconds)
        self.drift_ppm = drift_ppm
        self.time_zone = time_zone
        self.status = 0x00
        # last Sunday of March 02:00 / of October 03:00, any year
        self.dst_begin = bytes.fromhex("ffff03fe07020000008000ff")
        self.dst_end = bytes.fromhex("ffff0afe07030000008000ff")
        self.dst_deviation = 60
        self.dst_enabled = False
        self.clock_base = 1  # internal crystal
        self.on_time_set = on_time_set
        self.measuring_period = measuring_period
        self.preset: tuple[datetime, datetime, datetime] | None = None

    # ---------------------------------------------------------------- time model
    def meter_time(self, now: datetime) -> datetime:
        elapsed = (now - self.reference).total_seconds()
        return self.base + timedelta(seconds=elapsed * (1.0 + self.drift_ppm * 1e-6))

    def real_time_of(self, meter_time: datetime) -> datetime:
        """The real instant at which the meter clock shows ``meter_time``."""
        meter_elapsed = (meter_time - self.base).total_seconds()
        return self.reference + timedelta(seconds=meter_elapsed / (1.0 + self.drift_ppm * 1e-6))

    def set_meter_time(self, now: datetime, value: datetime) -> None:
        old = self.meter_time(now)
        self.reference = now
        self.base = value.astimezone(UTC)
        if self.on_time_set is not None:
            self.on_time_set(now, old, self.base)

    def dst_active(self, meter_time: datetime) -> bool:
        if not self.dst_enabled:
            return False
        standard = (meter_time - timedelta(minutes=self.time_zone)).replace(tzinfo=None)
        begin = resolve_dst_rule(self.dst_begin, standard.year)
        end = resolve_dst_rule(self.dst_end, standard.year)
        if begin is None or end is None:
            return False
        end -= timedelta(minutes=self.dst_deviation)  # end is given in summer time
        if begin <= end:
            return begin <= standard < end
        return standard >= begin or standard < end

    def deviation_at(self, meter_time: datetime) -> int:
        """Minutes from local time to UTC at ``meter_time``, DST included."""
        shift = self.dst_deviation if self.dst_active(meter_time) else 0
        return self.time_zone - shift

    def local(self, meter_time: datetime) -> datetime:
        """The naive local wall-clock time at ``meter_time`` (UTC)."""
        local = meter_time - timedelta(minutes=self.deviation_at(meter_time))
        return local.replace(tzinfo=None)

    def local_bytes(self, meter_time: datetime) -> bytes:
        dst = self.dst_active(meter_time)
        status = self.status | (STATUS_DST_ACTIVE if dst else 0)
        return from_utc(meter_time, deviation=self.deviation_at(meter_time), clock_status=status)

    # ---------------------------------------------------------------- services
    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        values: dict[int, TypedValue] = {
            2: octet_string(self.local_bytes(self.meter_time(now))),
            3: long(self.time_zone),
            4: unsigned(
                self.status | (STATUS_DST_ACTIVE if self.dst_active(self.meter_time(now)) else 0)
            ),
            5: octet_string(self.dst_begin),
            6: octet_string(self.dst_end),
            7: integer(self.dst_deviation),
            8: boolean(self.dst_enabled),
            9: enum(self.clock_base),
        }
        return values[attribute_id]

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 2:
            default = self.deviation_at(self.meter_time(now))
            new = to_utc(as_datetime_bytes(value), default_deviation=default)
            if new is None:
                return "other-reason"
            self.set_meter_time(now, new)
        elif attribute_id == 3:
            tz = as_int(value, "long")
            if not -720 <= tz <= 720:
                return "other-reason"
            self.time_zone = tz
        elif attribute_id in (5, 6):
            data = as_datetime_bytes(value)
            if attribute_id == 5:
                self.dst_begin = data
            else:
                self.dst_end = data
        elif attribute_id == 7:
            dev = as_int(value, "integer")
            if not -120 <= dev <= 120:
                return "other-reason"
            self.dst_deviation = dev
        elif attribute_id == 8:
            self.dst_enabled = as_bool(value)
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        current = self.meter_time(now)
        if method_id in (1, 2, 3):
            if parameters is not None:
                as_int(parameters, "integer")
            step = {1: 900, 2: self.measuring_period, 3: 60}[method_id]
            self.set_meter_time(now, _nearest(current, step))
        elif method_id == 4:
            if self.preset is None:
                return ("other-reason", None)
            preset, start, end = self.preset
            if not start <= current <= end:
                return ("other-reason", None)
            self.set_meter_time(now, preset)
            self.preset = None
        elif method_id == 5:
            if parameters is None:
                return ("type-unmatched", None)
            items = [as_datetime_bytes(v) for v in as_structure(parameters, 3)]
            times = [to_utc(b, default_deviation=self.time_zone) for b in items]
            if any(t is None for t in times):
                return ("other-reason", None)
            preset, start, end = (t for t in times if t is not None)
            self.preset = (preset, start, end)
        elif method_id == 6:
            if parameters is None:
                return ("type-unmatched", None)
            shift = as_int(parameters, "long")
            if not -SHIFT_LIMIT_SECONDS <= shift <= SHIFT_LIMIT_SECONDS:
                return ("other-reason", None)
            self.set_meter_time(now, current + timedelta(seconds=shift))
        return ("success", None)
