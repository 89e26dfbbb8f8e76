"""COSEM date-time, date and time (Blue Book 4.1.6.1): typed views over the core's codecs.

The 12-byte layout and its validation live once, in the Rust core
(``_core.decode_datetime_fields`` / ``_core.encode_datetime_fields``):
year u16 BE (0xFFFF = not specified), month (0xFD/0xFE = DST end/begin,
0xFF), day of month (0xFD/0xFE = 2nd last/last day, 0xFF), day of week
(1 = Monday .. 7, 0xFF), hour, minute, second, hundredths (0xFF each = not
specified), deviation i16 BE in minutes *from local time to UTC* (UTC = local
+ deviation, so UTC+1 is -60; 0x8000 = not specified), clock status (0xFF = not
specified). A date is the first 5 of those bytes, a time the 4 from hour to
hundredths (``_core.decode_date_fields``, ``_core.decode_time_fields`` and their
encoders). This module only turns those fields into Python values
(:class:`CosemDateTime`, ``datetime``) and back, and names errors by field.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

from smmc_gateway import _core

NOT_SPECIFIED = 0xFF
CLOCK_STATUS_BITS: dict[str, int] = {name: bit for bit, name in _core.clock_status_bits()}
"""The clock status bits by their Blue Book names (``daylight-saving-active``: 0x80)."""

# The core's field names ("date-time month", ...) as this module has always named them.
_FIELD_NAMES = {
    "date-time": "length",
    "date-time year": "year",
    "date-time month": "month",
    "date-time day of month": "day",
    "date-time day of week": "day of week",
    "date-time hour": "hour",
    "date-time minute": "minute",
    "date-time second": "second",
    "date-time hundredths": "hundredths",
    "date-time deviation": "deviation",
    "date-time clock status": "clock_status",
    # the bare date (5 bytes) and time (4 bytes)
    "date": "length",
    "date year": "year",
    "date month": "month",
    "date day of month": "day",
    "date day of week": "day of week",
    "time": "length",
    "time hour": "hour",
    "time minute": "minute",
    "time second": "second",
    "time hundredths": "hundredths",
}


class DateTimeError(ValueError):
    """Bytes (or fields) that are not a COSEM date-time; names the field and byte offset."""

    def __init__(self, field: str, offset: int, message: str) -> None:
        super().__init__(f"cosem date-time: {field} at byte {offset}: {message}")
        self.field = field
        self.offset = offset

    @classmethod
    def from_core(cls, exc: _core.DlmsError) -> DateTimeError:
        field = _FIELD_NAMES.get(exc.field, exc.field)
        return cls(field, exc.offset, str(exc))


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

    @classmethod
    def from_bytes(cls, data: bytes) -> CosemDateTime:
        """12 bytes to their fields, each validated by the core."""
        try:
            return cls(*_core.decode_datetime_fields(data))
        except _core.DlmsError as exc:
            raise DateTimeError.from_core(exc) from exc

    def to_bytes(self) -> bytes:
        """The 12 bytes (the core's encoder, validating as a decode does)."""
        try:
            return _core.encode_datetime_fields(*astuple(self))
        except _core.DlmsError as exc:
            raise DateTimeError.from_core(exc) from exc

    def to_datetime(self) -> datetime | None:
        """A ``datetime`` (aware when the deviation is specified) or ``None``
        when any of year..minute is a wildcard or a special value."""
        year, month, day, hour, minute = self.year, self.month, self.day, self.hour, self.minute
        if year is None or month is None or day is None or hour is None or minute is None:
            return None
        if month > 12 or day > 31:
            return None
        try:
            naive = datetime(
                year, month, day, hour, minute, self.second or 0, (self.hundredths or 0) * 10_000
            )
        except ValueError:  # year 0: outside Python's datetime
            return None
        if self.deviation is None:
            return naive
        return naive.replace(tzinfo=timezone(timedelta(minutes=-self.deviation)))


@dataclass(frozen=True)
class CosemDate:
    """A COSEM date (5 bytes); ``None`` where the field is 'not specified'."""

    year: int | None
    month: int | None
    day: int | None
    weekday: int | None

    @classmethod
    def from_bytes(cls, data: bytes) -> CosemDate:
        try:
            return cls(*_core.decode_date_fields(data))
        except _core.DlmsError as exc:
            raise DateTimeError.from_core(exc) from exc

    def to_bytes(self) -> bytes:
        try:
            return _core.encode_date_fields(*astuple(self))
        except _core.DlmsError as exc:
            raise DateTimeError.from_core(exc) from exc


@dataclass(frozen=True)
class CosemTime:
    """A COSEM time (4 bytes); ``None`` where the field is 'not specified'."""

    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None

    @classmethod
    def from_bytes(cls, data: bytes) -> CosemTime:
        try:
            return cls(*_core.decode_time_fields(data))
        except _core.DlmsError as exc:
            raise DateTimeError.from_core(exc) from exc

    def to_bytes(self) -> bytes:
        try:
            return _core.encode_time_fields(*astuple(self))
        except _core.DlmsError as exc:
            raise DateTimeError.from_core(exc) from exc


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
    return CosemDateTime(
        value.year,
        value.month,
        value.day,
        value.isoweekday(),
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 10_000,
        deviation,
        clock_status,
    ).to_bytes()


def unpack_datetime(data: bytes) -> CosemDateTime:
    """12 bytes to their fields, validating each range."""
    return CosemDateTime.from_bytes(data)


def with_deviation(data: bytes, deviation: int | None) -> bytes:
    """``data`` with its deviation replaced (``None``: not specified)."""
    return replace(unpack_datetime(data), deviation=deviation).to_bytes()


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


# Every field 'not specified' (deviation 0x8000): the core's encoding of no date-time.
UNSPECIFIED = CosemDateTime(*(None,) * 10).to_bytes()
