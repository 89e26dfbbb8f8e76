"""COSEM date-time (Blue Book 4.1.6.1): the 12-byte octet-string, in pure Python.

Layout: year u16 BE (0xFFFF = not specified), month (0xFD/0xFE = DST end/begin,
0xFF), day of month (0xFD/0xFE = 2nd last/last day, 0xFF), day of week
(1 = Monday .. 7, 0xFF), hour, minute, second, hundredths (0xFF each = not
specified), deviation i16 BE in minutes *from local time to UTC* (UTC = local
+ deviation, so UTC+1 is -60; 0x8000 = not specified), clock status (0xFF = not
specified). The same sign convention is used by the Rust core (``_core.pyi``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

NOT_SPECIFIED = 0xFF
DEVIATION_NOT_SPECIFIED = -0x8000


class DateTimeError(ValueError):
    """Bytes that are not a COSEM date-time; names the field and byte offset."""

    def __init__(self, field: str, offset: int, message: str) -> None:
        super().__init__(f"cosem date-time: {field} at byte {offset}: {message}")
        self.field = field
        self.offset = offset


@dataclass(frozen=True)
class CosemDateTime:
    """The decoded fields; ``None`` where the field is 'not specified'."""

    year: int | None
    month: int | None
    day: int | None
    weekday: int | None
    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None
    deviation: int | None
    clock_status: int | None

    def to_datetime(self) -> datetime | None:
        """A ``datetime`` (aware when the deviation is specified) or ``None``
        when any of year..second is a wildcard or a special value."""
        fields = (self.year, self.month, self.day, self.hour, self.minute)
        if any(f is None for f in fields):
            return None
        assert self.year is not None and self.month is not None and self.day is not None
        assert self.hour is not None and self.minute is not None
        if self.month > 12 or self.day > 31:
            return None
        try:
            naive = datetime(
                self.year,
                self.month,
                self.day,
                self.hour,
                self.minute,
                self.second or 0,
                (self.hundredths or 0) * 10_000,
            )
        except ValueError:
            return None
        if self.deviation is None:
            return naive
        return naive.replace(tzinfo=timezone(timedelta(minutes=-self.deviation)))


def pack_datetime(
    value: datetime, *, deviation: int | None = None, clock_status: int | None = 0
) -> bytes:
    """A ``datetime`` to 12 bytes. The fields are ``value``'s own wall-clock
    fields. An aware value's UTC offset gives the deviation unless ``deviation``
    is passed; a naive value without ``deviation`` has it 'not specified'.
    ``clock_status=None`` writes 0xFF (not specified)."""
    if deviation is None and value.utcoffset() is not None:
        offset = value.utcoffset()
        assert offset is not None
        deviation = -int(offset.total_seconds() // 60)
    if deviation is not None and not -720 <= deviation <= 720:
        raise DateTimeError("deviation", 9, f"{deviation} minutes, allowed -720..720")
    if not 0 <= value.year <= 0xFFFE:
        raise DateTimeError("year", 0, f"{value.year} does not fit")
    dev = DEVIATION_NOT_SPECIFIED if deviation is None else deviation
    status = NOT_SPECIFIED if clock_status is None else clock_status
    if not 0 <= status <= 0xFF:
        raise DateTimeError("clock_status", 11, f"{status}, allowed 0..255")
    return struct.pack(
        ">HBBBBBBBhB",
        value.year,
        value.month,
        value.day,
        value.isoweekday(),
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 10_000,
        dev,
        status,
    )


def _field(
    value: int, lo: int, hi: int, special: tuple[int, ...], name: str, at: int
) -> int | None:
    if value == NOT_SPECIFIED:
        return None
    if lo <= value <= hi or value in special:
        return value
    raise DateTimeError(name, at, f"{value} outside {lo}..{hi}")


def unpack_datetime(data: bytes) -> CosemDateTime:
    """12 bytes to their fields, validating each range."""
    if len(data) != 12:
        raise DateTimeError("length", 0, f"{len(data)} bytes, expected 12")
    year, month, day, wday, hour, minute, second, hund, dev, status = struct.unpack(
        ">HBBBBBBBhB", data
    )
    if dev != DEVIATION_NOT_SPECIFIED and not -720 <= dev <= 720:
        raise DateTimeError("deviation", 9, f"{dev} minutes outside -720..720")
    return CosemDateTime(
        year=None if year == 0xFFFF else year,
        month=_field(month, 1, 12, (0xFD, 0xFE), "month", 2),
        day=_field(day, 1, 31, (0xFD, 0xFE), "day", 3),
        weekday=_field(wday, 1, 7, (), "day of week", 4),
        hour=_field(hour, 0, 23, (), "hour", 5),
        minute=_field(minute, 0, 59, (), "minute", 6),
        second=_field(second, 0, 59, (), "second", 7),
        hundredths=_field(hund, 0, 99, (), "hundredths", 8),
        deviation=None if dev == DEVIATION_NOT_SPECIFIED else dev,
        clock_status=None if status == NOT_SPECIFIED else status,
    )


def to_utc(data: bytes, *, default_deviation: int = 0) -> datetime | None:
    """12 bytes to an aware UTC ``datetime``; a naive value is read with
    ``default_deviation`` (the meter's own time zone). ``None`` for wildcards."""
    value = unpack_datetime(data).to_datetime()
    if value is None:
        return None
    if value.tzinfo is None:
        value = value + timedelta(minutes=default_deviation)
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def from_utc(value: datetime, *, deviation: int, clock_status: int = 0) -> bytes:
    """An aware UTC instant to 12 bytes in local time for ``deviation``
    (local = UTC - deviation)."""
    local = value.astimezone(UTC).replace(tzinfo=None) - timedelta(minutes=deviation)
    return pack_datetime(local, deviation=deviation, clock_status=clock_status)
