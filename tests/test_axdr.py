"""A-XDR typed JSON (decode/encode) and COSEM date-times (decode_datetime/encode_datetime)."""

from __future__ import annotations

import datetime as dt
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core

UTC1 = dt.timezone(dt.timedelta(hours=1))

# ------------------------------------------------------------------ fixed vectors


@pytest.mark.parametrize(
    ("hexdata", "tree"),
    [
        ("00", {"type": "null-data", "value": None}),
        ("0301", {"type": "boolean", "value": True}),
        ("0f80", {"type": "integer", "value": -128}),
        ("1001f4", {"type": "long", "value": 500}),
        ("11ff", {"type": "unsigned", "value": 255}),
        ("121234", {"type": "long-unsigned", "value": 0x1234}),
        ("05fffffffe", {"type": "double-long", "value": -2}),
        ("0600bc614e", {"type": "double-long-unsigned", "value": 12345678}),
        ("14ffffffffffffffff", {"type": "long64", "value": -1}),
        ("15ffffffffffffffff", {"type": "long64-unsigned", "value": 2**64 - 1}),
        ("1603", {"type": "enum", "value": 3}),
        ("0d12", {"type": "bcd", "value": 0x12}),
        ("173fc00000", {"type": "float32", "value": 1.5}),
        ("18400c000000000000", {"type": "float64", "value": 3.5}),
        ("0903010203", {"type": "octet-string", "value": "010203"}),
        ("0a03414243", {"type": "visible-string", "value": "ABC"}),
        ("0c02c3a9", {"type": "utf8-string", "value": "é"}),
        ("0408a5", {"type": "bit-string", "value": "a5"}),
        ("0403a0", {"type": "bit-string", "value": "a0", "bits": 3}),
        ("1a07ea0b1b05", {"type": "date", "value": "07ea0b1b05"}),
        ("1b0c0f0000", {"type": "time", "value": "0c0f0000"}),
        ("ff", {"type": "dont-care", "value": None}),
        (
            "0202110109020102",
            {
                "type": "structure",
                "value": [
                    {"type": "unsigned", "value": 1},
                    {"type": "octet-string", "value": "0102"},
                ],
            },
        ),
        (
            # compact-array of 2 structures {long-unsigned, unsigned}: contents 00 01 02 00 03 04
            "1302021211" + "06" + "000102000304",
            {
                "type": "compact-array",
                "description": ["structure", ["long-unsigned", "unsigned"]],
                "value": [
                    {
                        "type": "structure",
                        "value": [
                            {"type": "long-unsigned", "value": 1},
                            {"type": "unsigned", "value": 2},
                        ],
                    },
                    {
                        "type": "structure",
                        "value": [
                            {"type": "long-unsigned", "value": 3},
                            {"type": "unsigned", "value": 4},
                        ],
                    },
                ],
            },
        ),
        (
            "13010002120400050006",
            {
                "type": "compact-array",
                "description": ["array", 2, "long-unsigned"],
                "value": [
                    {
                        "type": "array",
                        "value": [
                            {"type": "long-unsigned", "value": 5},
                            {"type": "long-unsigned", "value": 6},
                        ],
                    }
                ],
            },
        ),
    ],
)
def test_vectors_both_ways(hexdata: str, tree: dict[str, Any]) -> None:
    assert _core.decode(bytes.fromhex(hexdata)) == tree
    assert _core.encode(tree).hex() == hexdata


def test_datetime_key_on_valid_12_byte_octet_string() -> None:
    raw = bytes.fromhex("07ea0b1b050c0f00ffffc400")  # 2026-11-27 12:15 deviation -60
    tree = _core.decode(b"\x09\x0c" + raw)
    assert tree == {
        "type": "octet-string",
        "value": raw.hex(),
        "datetime": "2026-11-27T12:15:00+01:00",
    }
    assert _core.encode(tree) == b"\x09\x0c" + raw  # "datetime" is ignored on input
    naive = bytes.fromhex("07ea0b1b050c0f0032800000")  # hundredths 50, deviation not specified
    assert _core.decode(b"\x19" + naive)["datetime"] == "2026-11-27T12:15:00.50"
    not_a_date = bytes(12)
    assert "datetime" not in _core.decode(b"\x09\x0c" + not_a_date)


# ------------------------------------------------------------------ errors


def test_encode_errors_name_the_path() -> None:
    tree = {
        "type": "structure",
        "value": [
            {"type": "unsigned", "value": 1},
            {"type": "unsigned", "value": 2},
            {"type": "structure", "value": [{"type": "long-unsigned", "value": 70000}]},
        ],
    }
    with pytest.raises(
        _core.AxdrError, match=r"^value\[2\]\.value\[0\]: long-unsigned out of range 70000$"
    ) as e:
        _core.encode(tree)
    assert e.value.field == "value[2].value[0]"
    with pytest.raises(_core.AxdrError, match=r"value: unknown type \"word\""):
        _core.encode({"type": "word", "value": 1})
    with pytest.raises(_core.AxdrError, match=r"value\[0\]: integer expects an integer, got bool"):
        _core.encode({"type": "array", "value": [{"type": "integer", "value": True}]})
    with pytest.raises(_core.AxdrError, match="not hex"):
        _core.encode({"type": "octet-string", "value": "zz"})
    with pytest.raises(_core.AxdrError, match="exactly 12 bytes"):
        _core.encode({"type": "date-time", "value": "00"})
    with pytest.raises(
        _core.AxdrError, match=r"value\[0\]: does not match the compact-array description"
    ):
        _core.encode(
            {
                "type": "compact-array",
                "description": "unsigned",
                "value": [{"type": "long", "value": 1}],
            }
        )
    with pytest.raises(_core.AxdrError, match="float32 out of range"):
        _core.encode({"type": "float32", "value": 1e300})
    with pytest.raises(_core.AxdrError, match='missing key "value"'):
        _core.encode({"type": "unsigned"})


def test_decode_errors_name_field_and_offset() -> None:
    with pytest.raises(_core.AxdrError) as e:
        _core.decode(bytes.fromhex("0202110110ff"))
    assert (e.value.layer, e.value.field, e.value.offset) == ("A-XDR", "long", 5)
    with pytest.raises(_core.AxdrError, match="trailing"):
        _core.decode(b"\x11\x01\x00")


# ------------------------------------------------------------------ hypothesis round trips


def _simple() -> st.SearchStrategy[dict[str, Any]]:
    def t(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return values.map(lambda v: {"type": name, "value": v})

    hexs = st.binary(max_size=24).map(bytes.hex)
    return st.one_of(
        st.just({"type": "null-data", "value": None}),
        st.just({"type": "dont-care", "value": None}),
        t("boolean", st.booleans()),
        t("integer", st.integers(-128, 127)),
        t("bcd", st.integers(-128, 127)),
        t("long", st.integers(-(2**15), 2**15 - 1)),
        t("unsigned", st.integers(0, 255)),
        t("enum", st.integers(0, 255)),
        t("long-unsigned", st.integers(0, 2**16 - 1)),
        t("double-long", st.integers(-(2**31), 2**31 - 1)),
        t("double-long-unsigned", st.integers(0, 2**32 - 1)),
        t("long64", st.integers(-(2**63), 2**63 - 1)),
        t("long64-unsigned", st.integers(0, 2**64 - 1)),
        t("float32", st.floats(width=32, allow_nan=False)),
        t("float64", st.floats(allow_nan=False)),
        t("octet-string", hexs),
        t("visible-string", st.text(st.characters(max_codepoint=255), max_size=12)),
        t("utf8-string", st.text(max_size=12)),
        t("bit-string", hexs),
        t("date-time", st.binary(min_size=12, max_size=12).map(bytes.hex)),
        t("date", st.binary(min_size=5, max_size=5).map(bytes.hex)),
        t("time", st.binary(min_size=4, max_size=4).map(bytes.hex)),
    )


trees = st.recursive(
    _simple(),
    lambda children: st.one_of(
        st.lists(children, max_size=5).map(lambda v: {"type": "array", "value": v}),
        st.lists(children, max_size=5).map(lambda v: {"type": "structure", "value": v}),
    ),
    max_leaves=25,
)


def _strip_datetime(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strip_datetime(v) for k, v in x.items() if k != "datetime"}
    if isinstance(x, list):
        return [_strip_datetime(v) for v in x]
    return x


@settings(max_examples=300, deadline=None)
@given(trees)
def test_decode_encode_round_trip(tree: dict[str, Any]) -> None:
    raw = _core.encode(tree)
    back = _core.decode(raw)
    assert _strip_datetime(back) == tree
    assert _core.encode(back) == raw


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**16 - 1), st.integers(-128, 127)), max_size=20))
def test_compact_array_round_trip(rows: list[tuple[int, int]]) -> None:
    tree = {
        "type": "compact-array",
        "description": ["structure", ["long-unsigned", "integer"]],
        "value": [
            {
                "type": "structure",
                "value": [{"type": "long-unsigned", "value": a}, {"type": "integer", "value": b}],
            }
            for a, b in rows
        ],
    }
    raw = _core.encode(tree)
    assert len(raw) >= 3 * len(rows)
    assert _core.decode(raw) == tree


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise(data: bytes) -> None:
    try:
        tree = _core.decode(data)
    except _core.AxdrError:
        return
    # Liberal reception: a non-canonical input (boolean 0x02, a long-form length) decodes
    # to the value it means; what must hold is that the value survives a round trip.
    assert _core.decode(_core.encode(tree)) == tree


# ------------------------------------------------------------------ date-times


def test_decode_datetime_aware_and_naive() -> None:
    aware = _core.decode_datetime(bytes.fromhex("07ea0b1b050c0f00ffffc400"))
    assert aware == dt.datetime(2026, 11, 27, 12, 15, tzinfo=UTC1)
    assert aware is not None and aware.utcoffset() == dt.timedelta(hours=1)
    naive = _core.decode_datetime(bytes.fromhex("07ea0b1b050c0f0132800000"))
    assert naive == dt.datetime(2026, 11, 27, 12, 15, 1, 500_000)
    assert naive is not None and naive.tzinfo is None
    # deviation +300: local time is UTC-5
    west = _core.decode_datetime(struct.pack(">HBBBBBBBhB", 2026, 1, 2, 5, 3, 4, 5, 0, 300, 0))
    assert west is not None and west.utcoffset() == dt.timedelta(hours=-5)


@pytest.mark.parametrize(
    "raw",
    [
        "ffffffffffffffffff8000ff",  # nothing specified
        "ffff0b1bff0c0f00ff8000ff",  # year not specified
        "07eaff1bff0c0f00ff8000ff",  # month not specified
        "07ea0bfeff0c0f00ff8000ff",  # last day of month
        "07ea0b1bffff0f00ff8000ff",  # hour not specified
        "07eafe1bff0c0f00ff8000ff",  # DST begin month
    ],
)
def test_not_specified_is_none(raw: str) -> None:
    assert _core.decode_datetime(bytes.fromhex(raw)) is None


@pytest.mark.parametrize(
    ("raw", "field", "offset"),
    [
        ("07ea0d1b050c0f00ffffc400", "date-time month", 2),
        ("07ea021e050c0f00ffffc400", "date-time day of month", 3),
        ("07ea0b1b080c0f00ffffc400", "date-time day of week", 4),
        ("07ea0b1b05180f00ffffc400", "date-time hour", 5),
        ("07ea0b1b050c3c00ffffc400", "date-time minute", 6),
        ("07ea0b1b050c0f3cffffc400", "date-time second", 7),
        ("07ea0b1b050c0f0064ffc400", "date-time hundredths", 8),
        ("07ea0b1b050c0f00ff02d100", "date-time deviation", 9),
    ],
)
def test_invalid_datetime_names_field(raw: str, field: str, offset: int) -> None:
    with pytest.raises(_core.AxdrError) as e:
        _core.decode_datetime(bytes.fromhex(raw))
    assert (e.value.field, e.value.offset) == (field, offset)


def test_decode_datetime_length() -> None:
    with pytest.raises(_core.AxdrError, match="12 bytes"):
        _core.decode_datetime(b"\x07\xea")


def test_encode_datetime() -> None:
    raw = _core.encode_datetime(dt.datetime(2026, 11, 27, 12, 15, tzinfo=UTC1))
    assert raw == struct.pack(">HBBBBBBBhB", 2026, 11, 27, 5, 12, 15, 0, 0, -60, 0xFF)
    raw = _core.encode_datetime(dt.datetime(2026, 3, 29, 1, 2, 3, 450_000), clock_status=0x80)
    assert raw == struct.pack(">HBBBBBBBhB", 2026, 3, 29, 7, 1, 2, 3, 45, -0x8000, 0x80)
    raw = _core.encode_datetime(dt.datetime(2026, 3, 29, 1, 2, 3), deviation=-120)
    assert raw[9:11] == b"\xff\x88"
    with pytest.raises(_core.AxdrError, match="whole number of minutes"):
        _core.encode_datetime(dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=30))))


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.one_of(st.none(), st.integers(-720, 720)),
)
def test_datetime_round_trip(value: dt.datetime, offset_minutes: int | None) -> None:
    value = value.replace(microsecond=value.microsecond // 10_000 * 10_000)
    if offset_minutes is not None:
        value = value.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset_minutes)))
    raw = _core.encode_datetime(value)
    back = _core.decode_datetime(raw)
    assert back == value
    assert back is not None and back.utcoffset() == value.utcoffset()
    assert raw[4] == value.isoweekday()


VECTORS = json.loads((Path(__file__).parent / "vectors" / "axdr" / "datetimes.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=[v["note"] for v in VECTORS])
def test_datetime_vectors(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    if "error" in vector:
        with pytest.raises(_core.AxdrError) as e:
            _core.decode_datetime(raw)
        assert e.value.field == vector["error"]
        return
    tree = _core.decode(b"\x09\x0c" + raw)
    assert tree.get("datetime") == vector["iso"]
    value = _core.decode_datetime(raw)
    assert (value is None) == (vector["iso"] is None)
    if value is not None:
        assert value.isoformat().startswith(vector["iso"][:19])
