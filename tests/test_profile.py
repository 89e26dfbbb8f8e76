"""Bulk profile-buffer decoding: rows for Python and MeterReadings JSON."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core

PERIOD = 900
START = dt.datetime(2026, 11, 27, 0, 0)


def cosem(t: dt.datetime, deviation: int = -60, status: int = 0) -> bytes:
    return struct.pack(
        ">HBBBBBBBhB",
        t.year,
        t.month,
        t.day,
        t.isoweekday(),
        t.hour,
        t.minute,
        t.second,
        0,
        deviation,
        status,
    )


def length(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else b"\x82" + n.to_bytes(2, "big")


def idis_rows(n: int) -> list[tuple[dt.datetime, int, list[int]]]:
    return [
        (
            START + dt.timedelta(seconds=PERIOD * i),
            (0x80 if i % 5 == 1 else 0) | (0x20 if i % 7 == 3 else 0),
            [1000 * k + 13 * i for k in range(4)],
        )
        for i in range(n)
    ]


def array_buffer(
    rows: list[tuple[dt.datetime, int, list[int]]],
    *,
    compressed: bool = False,
    deviation: int = -60,
) -> bytes:
    out = b"\x01" + length(len(rows))
    for i, (t, status, regs) in enumerate(rows):
        clock = b"\x00" if compressed and i > 0 else b"\x09\x0c" + cosem(t, deviation)
        out += b"\x02\x06" + clock + b"\x11" + bytes([status])
        out += b"".join(b"\x06" + r.to_bytes(4, "big") for r in regs)
    return out


def compact_buffer(rows: list[tuple[dt.datetime, int, list[int]]]) -> bytes:
    desc = b"\x02\x06\x09\x11\x06\x06\x06\x06"
    contents = b"".join(
        b"\x0c" + cosem(t) + bytes([status]) + b"".join(r.to_bytes(4, "big") for r in regs)
        for t, status, regs in rows
    )
    return b"\x13" + desc + length(len(contents)) + contents


def expected_rows(
    rows: list[tuple[dt.datetime, int, list[int]]], offset_minutes: int = 60
) -> list[tuple[Any, ...]]:
    tz = dt.timezone(dt.timedelta(minutes=offset_minutes))
    return [(t.replace(tzinfo=tz), status, *regs) for t, status, regs in rows]


def test_array_of_structures_to_rows() -> None:
    rows = idis_rows(50)
    got = _core.decode_profile_buffer(array_buffer(rows))
    assert got == expected_rows(rows)
    assert all(
        isinstance(r[0], dt.datetime) and r[0].utcoffset() == dt.timedelta(hours=1) for r in got
    )


def test_rows_leave_the_garbage_collector_as_they_found_it() -> None:
    """Building rows pauses Python's cyclic GC; it must come back on, also after an error."""
    buf = array_buffer(idis_rows(5))
    bad_utf8 = bytes([0x01, 0x01, 0x02, 0x01, 0x0C, 0x01, 0xFF])  # utf8-string b"\xff"
    assert gc.isenabled()
    assert len(_core.decode_profile_buffer(buf)) == 5
    assert gc.isenabled()
    with pytest.raises(_core.ProfileError, match="utf8-string"):
        _core.decode_profile_buffer(bad_utf8)
    assert gc.isenabled()
    gc.disable()
    try:
        assert len(_core.decode_profile_buffer(buf)) == 5
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_compact_array_gives_same_rows() -> None:
    rows = idis_rows(20)
    assert _core.decode_profile_buffer(compact_buffer(rows)) == expected_rows(rows)


def test_null_clock_is_derived_from_capture_period() -> None:
    rows = idis_rows(10)
    buf = array_buffer(rows, compressed=True)
    assert _core.decode_profile_buffer(buf, capture_period=PERIOD) == expected_rows(rows)
    with pytest.raises(_core.ProfileError) as e:
        _core.decode_profile_buffer(buf)
    assert (e.value.layer, e.value.field, e.value.offset) == (
        "profile buffer",
        "clock",
        2 + 38,
    )  # entry 1 starts after a 38-byte entry


def test_null_clock_derivation_crosses_midnight_and_month() -> None:
    start = dt.datetime(2026, 11, 30, 23, 30)
    buf = b"\x01\x03" + b"".join(
        b"\x02\x02"
        + (b"\x09\x0c" + cosem(start, deviation=-0x8000) if i == 0 else b"\x00")
        + b"\x12\x00\x01"
        for i in range(3)
    )
    got = _core.decode_profile_buffer(buf, capture_period=1800)
    assert [r[0] for r in got] == [
        start,
        dt.datetime(2026, 12, 1, 0, 0),
        dt.datetime(2026, 12, 1, 0, 30),
    ]
    assert got[0][0].tzinfo is None


def test_other_value_types() -> None:
    buf = (
        b"\x01\x01\x02\x08"
        + b"\x03\x01"  # boolean
        + b"\x0a\x02hi"  # visible-string
        + b"\x09\x02\xab\xcd"  # octet-string (not a date-time)
        + b"\x18"
        + struct.pack(">d", 2.5)
        + b"\x05\xff\xff\xff\xfe"  # double-long -2
        + b"\x15"
        + (2**64 - 1).to_bytes(8, "big")
        + b"\x02\x02\x11\x01\x11\x02"  # nested structure
        + b"\x00"
    )
    assert _core.decode_profile_buffer(buf) == [
        (True, "hi", b"\xab\xcd", 2.5, -2, 2**64 - 1, (1, 2), None)
    ]


@pytest.mark.parametrize(
    ("buf", "field", "offset"),
    [
        (b"\x02\x00", "buffer type tag", 0),
        (b"\x01\x01\x11\x00", "buffer entry tag", 2),
        (b"\x01\x01\x02\x01\x06\x00\x00", "double-long-unsigned", 5),
        (b"\x01\x01\x02\x01\x07", "data type tag", 4),
        (b"\x01\x00\x00", "buffer", 2),
    ],
)
def test_errors_name_field_and_offset(buf: bytes, field: str, offset: int) -> None:
    with pytest.raises(_core.ProfileError) as e:
        _core.decode_profile_buffer(buf)
    assert (e.value.field, e.value.offset) == (field, offset)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.one_of(st.none(), st.integers(0, 10**6)))
def test_random_bytes_rows_or_profile_error(data: bytes, period: int | None) -> None:
    with contextlib.suppress(_core.DlmsError):
        _core.decode_profile_buffer(data, period)


# ------------------------------------------------------------------ JSON

# IDIS status bit -> reading quality (the documented mapping of rust/src/profile/json.rs)
QUALITY = {
    0x80: "1.2.32",
    0x20: "1.4.9",
    0x08: "1.4.11",
    0x04: "1.10.0",
    0x02: "1.1.8",
    0x01: "1.1.0",
}


def columns(scaler: int) -> list[_core.ColumnSpec]:
    return [
        _core.ColumnSpec(2 + k, f"rt-{k}", obis=f"1.0.{k + 1}.8.0.255", unit="kWh", scaler=scaler)
        for k in range(4)
    ]


def expected_json(
    rows: list[tuple[dt.datetime, int, list[int]]], scaler: int, offset_minutes: int
) -> list[Any]:
    blocks = []
    for k in range(4):
        readings = []
        for t, status, regs in rows:
            utc = t - dt.timedelta(minutes=offset_minutes)
            r: dict[str, Any] = {
                "timeStamp": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "value": Decimal(regs[k]).scaleb(scaler),
            }
            if status:
                r["ReadingQualities"] = [{"ref": q} for bit, q in QUALITY.items() if status & bit]
            readings.append(r)
        blocks.append(
            {
                "ReadingType": {"ref": f"rt-{k}", "obis": f"1.0.{k + 1}.8.0.255", "unit": "kWh"},
                "IntervalReadings": readings,
            }
        )
    return blocks


@pytest.mark.parametrize("scaler", [-3, -2, 0, 2])
def test_json_matches_independent_computation(scaler: int) -> None:
    rows = idis_rows(30)
    out = _core.profile_to_json(
        array_buffer(rows), clock_column=0, columns=columns(scaler), status_column=1
    )
    assert isinstance(out, bytes)
    got = json.loads(out, parse_float=Decimal)
    want = expected_json(rows, scaler, 60)
    # exact decimals: compare as Decimal (ints parse as int when scaler >= 0)
    for gb, wb in zip(got, want, strict=True):
        assert gb["ReadingType"] == wb["ReadingType"]
        for g, w in zip(gb["IntervalReadings"], wb["IntervalReadings"], strict=True):
            assert Decimal(g["value"]) == w["value"]
            assert {**g, "value": None} == {**w, "value": None}


def test_json_text_is_exact_decimal() -> None:
    rows = [(START, 0, [12345, 5, 100, 0])]
    out = _core.profile_to_json(
        array_buffer(rows), clock_column=0, columns=columns(-2), status_column=1
    )
    text = out.decode()
    assert '"value":123.45' in text and '"value":0.05' in text and '"value":1.00' in text
    assert '"timeStamp":"2026-11-26T23:00:00Z"' in text
    assert "ReadingQualities" not in text


def test_json_from_compressed_and_compact_buffers() -> None:
    rows = idis_rows(12)
    want = expected_json(rows, -3, 60)
    for buf, period in (
        (array_buffer(rows, compressed=True), PERIOD),
        (compact_buffer(rows), None),
    ):
        out = _core.profile_to_json(
            buf, clock_column=0, columns=columns(-3), status_column=1, capture_period=period
        )
        assert json.loads(out, parse_float=Decimal) == want


def test_json_local_time_without_deviation() -> None:
    rows = idis_rows(2)
    buf = array_buffer(rows, deviation=-0x8000)
    got = json.loads(_core.profile_to_json(buf, clock_column=0, columns=columns(0)[:1]))
    assert [r["timeStamp"] for r in got[0]["IntervalReadings"]] == [
        "2026-11-27T00:00:00",
        "2026-11-27T00:15:00",
    ]


def test_json_escapes_strings() -> None:
    buf = array_buffer(idis_rows(1))
    spec = _core.ColumnSpec(2, 'a"b\\c\n', obis="", unit="m³")
    got = json.loads(_core.profile_to_json(buf, clock_column=0, columns=[spec]))
    assert got[0]["ReadingType"] == {"ref": 'a"b\\c\n', "obis": "", "unit": "m³"}


def test_json_errors() -> None:
    buf = array_buffer(idis_rows(3), compressed=True)
    with pytest.raises(_core.ProfileError, match="clock"):
        _core.profile_to_json(buf, clock_column=0, columns=columns(0))
    with pytest.raises(_core.ProfileError, match="clock"):
        _core.profile_to_json(array_buffer(idis_rows(3)), clock_column=1, columns=columns(0))
    with pytest.raises(_core.ProfileError, match="value"):
        _core.profile_to_json(
            array_buffer(idis_rows(3)), clock_column=0, columns=[_core.ColumnSpec(9, "x")]
        )


def test_irregular_clocks_and_deviation_changes() -> None:
    # gaps vary, the deviation changes (DST end), one clock has hundredths, one is not specified
    stamps = [
        (dt.datetime(2026, 10, 25, 1, 0), -120, 0),
        (dt.datetime(2026, 10, 25, 1, 15), -120, 0),
        (dt.datetime(2026, 10, 25, 1, 30), -120, 0),
        (dt.datetime(2026, 10, 25, 2, 0), -60, 0),
        (dt.datetime(2026, 10, 25, 2, 15), -60, 0),
        (dt.datetime(2026, 10, 25, 2, 30), -60, 50),
        (dt.datetime(2026, 10, 25, 2, 45), -60, 50),
        (dt.datetime(2027, 1, 1, 0, 0), -0x8000, 0xFF),
        (dt.datetime(2027, 1, 1, 0, 15), -0x8000, 0xFF),
    ]
    buf = b"\x01" + bytes([len(stamps)])
    want = []
    for t, dev, hundredths in stamps:
        raw = bytearray(cosem(t, dev))
        raw[8] = hundredths
        buf += b"\x02\x01\x09\x0c" + bytes(raw)
        micro = 0 if hundredths == 0xFF else hundredths * 10_000
        tz = None if dev == -0x8000 else dt.timezone(dt.timedelta(minutes=-dev))
        want.append((t.replace(microsecond=micro, tzinfo=tz),))
    got = _core.decode_profile_buffer(buf)
    assert got == want
    assert [r[0].utcoffset() for r in got] == [w[0].utcoffset() for w in want]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 255),
            st.integers(-(2**31), 2**31 - 1),
            st.integers(0, 2**64 - 1),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(-6, 4),
    st.sampled_from([-120, -60, 0, 330, -0x8000]),
)
def test_generated_profiles_rows_and_json(
    rows: list[tuple[int, int, int]], scaler: int, deviation: int
) -> None:
    start = dt.datetime(2026, 3, 28, 22, 0)
    buf = b"\x01" + length(len(rows))
    for i, (status, a, b) in enumerate(rows):
        clock = (
            b"\x09\x0c" + cosem(start + dt.timedelta(hours=i), deviation) if i % 3 == 0 else b"\x00"
        )
        buf += b"\x02\x04" + clock + b"\x11" + bytes([status])
        buf += b"\x05" + a.to_bytes(4, "big", signed=True) + b"\x15" + b.to_bytes(8, "big")
    tz = None if deviation == -0x8000 else dt.timezone(dt.timedelta(minutes=-deviation))
    stamps = [(start + dt.timedelta(hours=i)).replace(tzinfo=tz) for i in range(len(rows))]
    got = _core.decode_profile_buffer(buf, capture_period=3600)
    assert got == [(t, s, a, b) for t, (s, a, b) in zip(stamps, rows, strict=True)]

    cols = [_core.ColumnSpec(2, "a", scaler=scaler), _core.ColumnSpec(3, "b", scaler=scaler)]
    out = json.loads(
        _core.profile_to_json(
            buf, clock_column=0, columns=cols, status_column=1, capture_period=3600
        ),
        parse_float=Decimal,
    )
    for k, block in enumerate(out):
        readings = block["IntervalReadings"]
        assert len(readings) == len(rows)
        for t, (status, a, b), r in zip(stamps, rows, readings, strict=True):
            assert Decimal(r["value"]) == Decimal((a, b)[k]).scaleb(scaler)
            if tz is None:
                assert r["timeStamp"] == t.strftime("%Y-%m-%dT%H:%M:%S")
            else:
                assert r["timeStamp"] == t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            refs = [q["ref"] for q in r.get("ReadingQualities", [])]
            expected = [q for bit, q in QUALITY.items() if status & bit]
            if status and not expected:
                expected = ["1.1.0"]  # only reserved bits set
            assert refs == expected
