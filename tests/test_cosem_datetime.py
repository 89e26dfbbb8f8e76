"""COSEM date-time pack/unpack and the deviation sign (UTC = local + deviation)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core
from smmc_gateway.cosem.datetime import (
    UNSPECIFIED,
    CosemDate,
    CosemDateTime,
    CosemTime,
    DateTimeError,
    from_utc,
    pack_datetime,
    to_utc,
    unpack_datetime,
    with_deviation,
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
    with pytest.raises(DateTimeError, match="11 bytes: expected exactly 12 bytes"):
        unpack_datetime(bytes(11))


def test_deviation_out_of_range_on_pack() -> None:
    with pytest.raises(DateTimeError, match="deviation"):
        pack_datetime(datetime(2026, 1, 1), deviation=800)


# Vectors written by the pure-Python packer this module had before the core became
# the one codec (a property test compared the two on 3000 random tuples first):
# (fields, bytes) with every kind of 'not specified', the 0xFD/0xFE specials,
# deviations at both ends of the range, clock status and hundredths.
OLD_PACKER_VECTORS = [
    ((2026, 3, 10, 2, 12, 30, 5, 25, None, 0), "07ea030a020c1e0519800000"),
    ((2026, 9, 6, 7, 23, 59, 59, 99, 240, 128), "07ea090607173b3b6300f080"),
    ((2027, 4, 4, 7, 0, 0, 0, 0, 180, None), "07eb0404070000000000b4ff"),
    ((1999, 12, 31, 5, 23, 0, 0, 1, -60, 9), "07cf0c1f0517000001ffc409"),
    ((2024, 2, 29, 4, 6, 7, 8, 0, 720, None), "07e8021d040607080002d0ff"),
    ((2026, 1, 1, 4, 0, 0, 0, 0, -720, 1), "07ea01010400000000fd3001"),
    ((None, 3, 254, 7, 2, 0, 0, 0, None, None), "ffff03fe07020000008000ff"),
    ((None,) * 10, "ffffffffffffffffff8000ff"),
    ((2026, 253, 253, None, 12, 0, None, None, 0, None), "07eafdfdff0c00ffff0000ff"),
    ((2026, 12, 254, None, 23, None, None, None, 240, 0), "07ea0cfeff17ffffff00f000"),
    ((None, 1, 1, None, 0, 0, 0, None, None, None), "ffff0101ff000000ff8000ff"),
]


@pytest.mark.parametrize(("fields", "hex_"), OLD_PACKER_VECTORS)
def test_core_codec_matches_the_old_packer(fields: tuple[int | None, ...], hex_: str) -> None:
    data = bytes.fromhex(hex_)
    assert _core.encode_datetime_fields(*fields) == data
    assert _core.decode_datetime_fields(data) == fields
    assert CosemDateTime(*fields).to_bytes() == data
    assert unpack_datetime(data) == CosemDateTime(*fields)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.one_of(st.none(), st.integers(-720, 720)),
    st.one_of(st.none(), st.integers(0, 255)),
)
def test_pack_is_the_layout(value: datetime, deviation: int | None, status: int | None) -> None:
    """The layout written out by hand, against the core's encoder behind pack_datetime."""
    data = pack_datetime(value, deviation=deviation, clock_status=status)
    dev = 0x8000 if deviation is None else deviation & 0xFFFF
    expected = (
        value.year.to_bytes(2, "big")
        + bytes([value.month, value.day, value.isoweekday(), value.hour, value.minute])
        + bytes([value.second, value.microsecond // 10_000])
        + dev.to_bytes(2, "big")
        + bytes([0xFF if status is None else status])
    )
    assert data == expected
    assert unpack_datetime(data).to_datetime() == value.replace(
        microsecond=value.microsecond // 10_000 * 10_000,
        tzinfo=None if deviation is None else timezone(timedelta(minutes=-deviation)),
    )


@pytest.mark.parametrize(
    ("fields", "field", "offset"),
    [
        ((2026, 13, 1, None, 0, 0, 0, 0, 0, 0), "month", 2),
        ((2026, 2, 30, None, 0, 0, 0, 0, 0, 0), "day", 3),
        ((2026, 1, 1, 8, 0, 0, 0, 0, 0, 0), "day of week", 4),
        ((2026, 1, 1, 4, 24, 0, 0, 0, 0, 0), "hour", 5),
        ((2026, 1, 1, 4, 0, 0, 0, 100, 0, 0), "hundredths", 8),
        ((2026, 1, 1, 4, 0, 0, 0, 0, -721, 0), "deviation", 9),
        ((2026, 1, 1, 4, 0, 0, 0, 0, 0, 256), "clock_status", 11),
        ((0xFFFF, 1, 1, 4, 0, 0, 0, 0, 0, 0), "year", 0),
    ],
)
def test_encode_names_the_bad_field(
    fields: tuple[int | None, ...], field: str, offset: int
) -> None:
    with pytest.raises(DateTimeError) as info:
        CosemDateTime(*fields).to_bytes()
    assert (info.value.field, info.value.offset) == (field, offset)


def test_a_day_that_does_not_exist_is_refused_on_decode() -> None:
    with pytest.raises(DateTimeError) as info:
        unpack_datetime(bytes.fromhex("07ea021e040c000000000000"))  # 2026-02-30
    assert (info.value.field, info.value.offset) == ("day", 3)


def test_unspecified_and_with_deviation() -> None:
    assert UNSPECIFIED.hex() == "ffffffffffffffffff8000ff"
    data = from_utc(datetime(2026, 7, 1, 3, 15, tzinfo=UTC), deviation=240, clock_status=0x80)
    assert with_deviation(data, None).hex() == data[:9].hex() + "800080"
    assert with_deviation(data, -60)[9:11] == (-60).to_bytes(2, "big", signed=True)


@pytest.mark.parametrize(
    ("fields", "hex_"),
    [
        ((2026, 12, 25, None), "07ea0c19ff"),
        ((None, 9, 18, None), "ffff0912ff"),
        ((2026, 3, 0xFE, 7), "07ea03fe07"),
        ((None, None, None, None), "ffffffffff"),
    ],
)
def test_date_is_the_first_five_date_time_bytes(fields: tuple[int | None, ...], hex_: str) -> None:
    assert CosemDate(*fields).to_bytes().hex() == hex_
    assert CosemDate.from_bytes(bytes.fromhex(hex_)) == CosemDate(*fields)
    # the same fields inside a date-time encode to the same five bytes
    full = CosemDateTime(*fields, 0, 0, 0, 0, None, None).to_bytes()
    assert full[:5].hex() == hex_


@pytest.mark.parametrize(
    ("fields", "hex_"),
    [((6, 30, 0, 0), "061e0000"), ((23, 59, None, None), "173bffff"), ((None,) * 4, "ffffffff")],
)
def test_time_is_the_four_hour_to_hundredths_bytes(
    fields: tuple[int | None, ...], hex_: str
) -> None:
    assert CosemTime(*fields).to_bytes().hex() == hex_
    assert CosemTime.from_bytes(bytes.fromhex(hex_)) == CosemTime(*fields)


def test_date_and_time_errors_name_the_field() -> None:
    with pytest.raises(DateTimeError) as info:
        CosemDate(2026, 2, 30, None).to_bytes()
    assert (info.value.field, info.value.offset) == ("day", 3)
    with pytest.raises(DateTimeError) as info:
        CosemTime.from_bytes(bytes.fromhex("0c3c0000"))
    assert (info.value.field, info.value.offset) == ("minute", 1)
    with pytest.raises(DateTimeError) as info:
        CosemDate.from_bytes(b"\x07\xea\x01")
    assert info.value.field == "length"


def test_clock_status_bits_are_the_cores() -> None:
    from smmc_gateway.ops.config_clock import STATUS_BITS
    from smmc_gateway.simulator.objects.clock import STATUS_DST_ACTIVE

    assert dict(_core.clock_status_bits()) == {
        0x01: "invalid-value",
        0x02: "doubtful-value",
        0x04: "different-clock-base",
        0x08: "invalid-clock-status",
        0x80: "daylight-saving-active",
    }
    assert STATUS_DST_ACTIVE == 0x80
    assert STATUS_BITS == {"invalid": 0x01, "doubtful": 0x02, "invalid_status": 0x08, "dst": 0x80}


def test_cli_names_clock_status_bits_as_the_core_does() -> None:
    from smmc_gateway.cli.meter_ops import _status_text

    assert _status_text(0x82) == " (doubtful value, daylight saving active)"
    assert _status_text(0x0D) == " (invalid value, different clock base, invalid clock status)"
    assert _status_text(0x00) == " (ok)"
