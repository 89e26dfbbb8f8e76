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

A clock made with ``zone`` (an IANA name, e.g. "America/Santiago") follows that
zone of the tz database instead (Python's ``zoneinfo``, with the rule changes
of past years): the deviation and the DST bit are the zone's at each instant,
attribute 3 is its standard offset, attributes 5 and 6 the begin (in standard
time) and end (in summer time) of the current local year, 7 the DST shift, 8
true when the zone has summer time that year. Writing any of attributes 3, 5,
6, 7 or 8 programs the meter with rules: it then follows the attributes (the
zone's current-year values where nothing else was written), like a meter whose
DST table was replaced. A clock with ``deviation_specified=False`` writes
0x8000 (not specified) in the deviation of its date-times (some vendors' meters
do) and reads a written time without a deviation as its own local time.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from smmc_gateway.cosem.datetime import (
    CLOCK_STATUS_BITS,
    UNSPECIFIED,
    CosemDateTime,
    from_utc,
    pack_datetime,
    to_utc,
    unpack_datetime,
    with_deviation,
)
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


STATUS_DST_ACTIVE = CLOCK_STATUS_BITS["daylight-saving-active"]


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


def _minutes(delta: timedelta | None) -> int:
    return int((delta or timedelta()).total_seconds() // 60)


def zone_deviation(zone: ZoneInfo, instant: datetime) -> int:
    """The Blue Book deviation (minutes from local time to UTC) of ``zone`` at ``instant``."""
    return -_minutes(instant.astimezone(zone).utcoffset())


def zone_standard_deviation(zone: ZoneInfo, instant: datetime) -> int:
    """The deviation of ``zone``'s standard (winter) time at ``instant``."""
    local = instant.astimezone(zone)
    return -(_minutes(local.utcoffset()) - _minutes(local.dst()))


@functools.lru_cache(maxsize=64)
def zone_transitions(zone: ZoneInfo, year: int) -> tuple[datetime | None, datetime | None, int]:
    """(begin, end, shift minutes) of summer time in ``zone``'s local ``year``: the UTC
    instants the DST flag turns on and off (None when it does not that year)."""
    begin: datetime | None = None
    end: datetime | None = None
    shift = 0

    def dst(at: datetime) -> bool:
        return bool(at.astimezone(zone).dst())

    t = datetime(year, 1, 1, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    while t < stop:
        if dst(t) != dst(t + day):
            lo, hi = t, t + day  # dst(lo) != dst(hi): bisect to the minute
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= lo:
                    mid = lo + timedelta(minutes=1)
                if dst(mid) == dst(lo):
                    lo = mid
                else:
                    hi = mid
            if dst(hi):
                begin = hi
                shift = _minutes(hi.astimezone(zone).dst())
            else:
                end = hi
        t += day
    return begin, end, shift


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
        zone: str | None = None,
        deviation_specified: bool = True,
    ) -> None:
        super().__init__("0.0.1.0.0.255")
        self.reference = now
        self.base = now + timedelta(seconds=offset_seconds)
        self.drift_ppm = drift_ppm
        self.zone = ZoneInfo(zone) if zone else None
        self.deviation_specified = deviation_specified
        if self.zone is not None:
            time_zone = zone_standard_deviation(self.zone, self.base)
        self.time_zone = time_zone
        self.status = 0x00
        # last Sunday of March 02:00 / of October 03:00, any year
        # last Sunday of March 02:00 / of October 03:00, every year
        self.dst_begin = CosemDateTime(None, 3, 0xFE, 7, 2, 0, 0, 0, None, None).to_bytes()
        self.dst_end = CosemDateTime(None, 10, 0xFE, 7, 3, 0, 0, 0, None, None).to_bytes()
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
        if self.zone is not None:
            return bool(meter_time.astimezone(self.zone).dst())
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
        if self.zone is not None:
            return zone_deviation(self.zone, meter_time)
        shift = self.dst_deviation if self.dst_active(meter_time) else 0
        return self.time_zone - shift

    def local(self, meter_time: datetime) -> datetime:
        """The naive local wall-clock time at ``meter_time`` (UTC)."""
        local = meter_time - timedelta(minutes=self.deviation_at(meter_time))
        return local.replace(tzinfo=None)

    def local_bytes(self, meter_time: datetime) -> bytes:
        dst = self.dst_active(meter_time)
        status = self.status | (STATUS_DST_ACTIVE if dst else 0)
        data = from_utc(meter_time, deviation=self.deviation_at(meter_time), clock_status=status)
        if not self.deviation_specified:
            data = with_deviation(data, None)
        return data

    def utc_of(self, data: bytes, now: datetime) -> datetime | None:
        """The UTC instant a written date-time means: its own deviation when it has
        one, else this meter's local time (in a zone: the DST bit, when given, picks
        the first or second of a repeated hour)."""
        instant = self.zone_instant(data)
        if instant is not None:
            return instant
        return to_utc(data, default_deviation=self.deviation_at(self.meter_time(now)))

    def zone_instant(self, data: bytes) -> datetime | None:
        """The instant of a date-time without deviation in this clock's zone (the DST
        bit picks the pass of a repeated hour); None when the clock has no zone or the
        date-time carries its deviation (read it with that)."""
        fields = unpack_datetime(data)
        if fields.deviation is not None or self.zone is None:
            return None
        local = fields.to_datetime()
        if local is None:
            return None
        candidates = [local.replace(tzinfo=self.zone, fold=f).astimezone(UTC) for f in (0, 1)]
        if fields.clock_status is not None and candidates[0] != candidates[1]:
            summer = bool(fields.clock_status & STATUS_DST_ACTIVE)
            return next((c for c in candidates if self.dst_active(c) == summer), candidates[0])
        return candidates[0]

    def _zone_rules(self, now: datetime) -> tuple[bytes, bytes, int, bool]:
        """Attributes 5..8 of a clock in a zone: the current local year's transitions."""
        assert self.zone is not None
        current = self.meter_time(now)
        begin, end, shift = zone_transitions(self.zone, current.astimezone(self.zone).year)

        def rule(at: datetime | None, deviation: int) -> bytes:
            if at is None:
                return UNSPECIFIED
            local = (at - timedelta(minutes=deviation)).replace(tzinfo=None)
            return pack_datetime(local, deviation=None, clock_status=None)

        standard = self.time_zone
        return (rule(begin, standard), rule(end, standard - shift), shift or 60, begin is not None)

    def _to_rules(self, now: datetime) -> None:
        """A zone clock being programmed: from now on it follows attributes 3, 5..8."""
        if self.zone is None:
            return
        self.dst_begin, self.dst_end, self.dst_deviation, self.dst_enabled = self._zone_rules(now)
        self.zone = None

    # ---------------------------------------------------------------- services
    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        begin, end, shift, enabled = (
            self._zone_rules(now)
            if self.zone is not None
            else (self.dst_begin, self.dst_end, self.dst_deviation, self.dst_enabled)
        )
        values: dict[int, TypedValue] = {
            2: octet_string(self.local_bytes(self.meter_time(now))),
            3: long(self.time_zone),
            4: unsigned(
                self.status | (STATUS_DST_ACTIVE if self.dst_active(self.meter_time(now)) else 0)
            ),
            5: octet_string(begin),
            6: octet_string(end),
            7: integer(shift),
            8: boolean(enabled),
            9: enum(self.clock_base),
        }
        return values[attribute_id]

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 2:
            new = self.utc_of(as_datetime_bytes(value), now)
            if new is None:
                return "other-reason"
            self.set_meter_time(now, new)
            return "success"
        zone, saved = (
            self.zone,
            (self.dst_begin, self.dst_end, self.dst_deviation, self.dst_enabled),
        )
        self._to_rules(now)
        result = "other-reason"
        try:
            result = self._write_rule(attribute_id, value)
        finally:
            if result != "success":  # a refused write leaves a zone clock as it was
                self.zone = zone
                self.dst_begin, self.dst_end, self.dst_deviation, self.dst_enabled = saved
        return result

    def _write_rule(self, attribute_id: int, value: TypedValue) -> str:
        if attribute_id == 3:
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
