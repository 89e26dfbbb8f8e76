"""COSEM date-time pack/unpack and the deviation sign (UTC = local + deviation)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from smmc_gateway.cosem.datetime import (
    DateTimeError,
    from_utc,
    pack_datetime,
    to_utc,
    unpack_datetime,
)


def test_pack_naive_has_unspecified_deviation() -> None:
    data = pack_datetime(datetime(2026, 3, 10, 12, 30, 5, 250000))
    # 2026 = 0x07ea, Tuesday = 2, deviation 0x8000, status 0
    assert data.hex() == "07ea030a020c1e0519800000"


def test_aware_value_deviation_sign() -> None:
    cet = timezone(timedelta(hours=1))
    data = pack_datetime(datetime(2026, 1, 5, 10, 0, tzinfo=cet))
    fields = unpack_datetime(data)
    assert fields.deviation == -60  # UTC+1 is -60 (local + deviation = UTC)
    assert to_utc(data) == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    chile = timezone(timedelta(hours=-4))
    data = pack_datetime(datetime(2026, 1, 5, 10, 0, tzinfo=chile))
    assert unpack_datetime(data).deviation == 240
    assert to_utc(data) == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


def test_from_utc_round_trip() -> None:
    instant = datetime(2026, 7, 1, 3, 15, tzinfo=UTC)
    data = from_utc(instant, deviation=240, clock_status=0x20)
    fields = unpack_datetime(data)
    assert (fields.day, fields.hour, fields.clock_status) == (30, 23, 0x20)
    assert to_utc(data) == instant


def test_naive_read_with_default_deviation() -> None:
    data = pack_datetime(datetime(2026, 1, 1, 0, 0))
    assert to_utc(data, default_deviation=240) == datetime(2026, 1, 1, 4, 0, tzinfo=UTC)


def test_wildcards_are_none() -> None:
    fields = unpack_datetime(bytes.fromhex("ffff03fe07020000008000ff"))
    assert fields.year is None and fields.day == 0xFE and fields.deviation is None
    assert fields.to_datetime() is None


@pytest.mark.parametrize(
    ("hex_", "field", "offset"),
    [
        ("07ea0d0a020c000000000000", "month", 2),
        ("07ea030a020c3c0000000000", "minute", 6),
        ("07ea030a090c000000000000", "day of week", 4),
        ("07ea030a020c000000030000", "deviation", 9),
    ],
)
def test_bad_fields_name_field_and_offset(hex_: str, field: str, offset: int) -> None:
    with pytest.raises(DateTimeError) as info:
        unpack_datetime(bytes.fromhex(hex_))
    assert info.value.field == field and info.value.offset == offset


def test_bad_length() -> None:
    with pytest.raises(DateTimeError, match="11 bytes, expected 12"):
        unpack_datetime(bytes(11))


def test_deviation_out_of_range_on_pack() -> None:
    with pytest.raises(DateTimeError, match="deviation"):
        pack_datetime(datetime(2026, 1, 1), deviation=800)
