"""IEC 61968-9 ReadingType codes from OBIS code, unit and capture period
(smmc_gateway.cim.reading_types): the published worked examples, the energy registers,
interval data, instantaneous values, demand, and a fallback that never fails."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smmc_gateway.cim import reading_types as rt
from smmc_gateway.cim.reading_types import reading_type, reading_type_parts, unit_symbol
from uplink_helpers import validator

CODE = re.compile(r"-?\d+(\.-?\d+){17}")


def _schema_pattern() -> re.Pattern[str]:
    """The ref pattern of docs/schemas/meter-readings.schema.json (readings)."""
    schema = validator("meter-readings").schema
    items = schema["properties"]["MeterReading"]["items"]["properties"]["Readings"]["items"]
    return re.compile(items["properties"]["ReadingType"]["properties"]["ref"]["pattern"])


@pytest.mark.parametrize(
    ("obis", "unit", "period", "code"),
    [
        # worked examples of Connexo's ReadingTypeCodeBuilder tests (public)
        ("1.0.1.29.0.255", "kWh", 900, "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"),  # 15-min fwd Δ
        ("1.0.2.29.0.255", "kWh", 3600, "0.0.7.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0"),  # 1-h reverse Δ
        ("1.0.1.8.0.255", "kWh", None, "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"),  # fwd bulk kWh
    ],
)
def test_the_published_worked_examples(obis: str, unit: str, period: int | None, code: str) -> None:
    assert reading_type(obis, unit, measuring_period_s=period) == code


@pytest.mark.parametrize(
    ("obis", "unit", "period", "code"),
    [
        ("1.0.1.8.0.255", "Wh", None, "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # A+
        ("1.0.2.8.0.255", "Wh", None, "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # A-
        ("1.0.3.8.0.255", "varh", None, "0.0.0.1.5.1.12.0.0.0.0.0.0.0.0.0.73.0"),  # R+ QI+QII
        ("1.0.4.8.0.255", "varh", None, "0.0.0.1.13.1.12.0.0.0.0.0.0.0.0.0.73.0"),  # R- QIII+QIV
        ("1.0.5.8.0.255", "varh", None, "0.0.0.1.15.1.12.0.0.0.0.0.0.0.0.0.73.0"),  # R QI
        ("1.0.9.8.0.255", "VAh", None, "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.71.0"),  # S+
        ("1.0.1.8.2.255", "Wh", None, "0.0.0.1.1.1.12.0.0.0.0.2.0.0.0.0.72.0"),  # A+ rate 2
        ("1.0.1.8.0.255", "Wh", 900, "0.0.2.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # sampled 15 min
        ("1.0.1.8.0.255", "Wh", 1800, "0.0.5.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # sampled 30 min
        ("1.0.1.8.0.255", "Wh", 7200, "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # 2 h: no code
        ("1.0.1.7.0.255", "W", None, "0.0.0.12.1.1.37.0.0.0.0.0.0.0.0.0.38.0"),  # P+ now
        ("1.0.21.7.0.255", "W", None, "0.0.0.12.1.1.37.0.0.0.0.0.0.0.128.0.38.0"),  # P+ L1
        ("1.0.32.7.0.255", "V", 900, "0.0.0.12.0.1.54.0.0.0.0.0.0.0.129.0.29.0"),  # V L1-N
        ("1.0.52.7.0.255", "V", None, "0.0.0.12.0.1.54.0.0.0.0.0.0.0.65.0.29.0"),  # V L2-N
        ("1.0.72.7.0.255", "V", None, "0.0.0.12.0.1.54.0.0.0.0.0.0.0.33.0.29.0"),  # V L3-N
        ("1.0.71.7.0.255", "A", None, "0.0.0.12.0.1.4.0.0.0.0.0.0.0.32.0.5.0"),  # I L3
        ("1.0.91.7.0.255", "A", None, "0.0.0.12.0.1.4.0.0.0.0.0.0.0.16.0.5.0"),  # I neutral
        ("1.0.14.7.0.255", "Hz", None, "0.0.0.12.0.1.15.0.0.0.0.0.0.0.0.0.33.0"),  # frequency
        ("1.0.1.4.0.255", "W", None, "0.2.15.6.1.1.8.0.0.0.0.0.0.0.0.0.38.0"),  # demand now
        ("1.0.1.5.0.255", "W", None, "0.2.16.6.1.1.8.0.0.0.0.0.0.0.0.0.38.0"),  # last demand
        ("1.0.1.6.0.255", "kW", None, "8.8.0.6.1.1.8.0.0.0.0.0.0.0.0.3.38.0"),  # max demand
        ("1.0.1.6.1.255", "W", None, "8.8.0.6.1.1.8.0.0.0.0.1.0.0.0.0.38.0"),  # max, rate 1
        ("1.0.1.2.0.255", "W", None, "8.8.0.3.1.1.8.0.0.0.0.0.0.0.0.0.38.0"),  # cumulative max
        ("1.0.32.5.0.255", "V", None, "0.2.16.6.0.1.54.0.0.0.0.0.0.0.129.0.29.0"),  # V L1 average
    ],
)
def test_derived_codes(obis: str, unit: str, period: int | None, code: str) -> None:
    parts, derived = reading_type_parts(obis, unit, measuring_period_s=period)
    assert derived and parts.code == code


@pytest.mark.parametrize(
    ("obis", "unit", "code"),
    [
        ("1.0.1.8.0.3", "Wh", "0.0.0.0.1.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # a past billing period
        ("1.0.1.9.0.255", "kWh", "0.0.0.0.1.1.12.0.0.0.0.0.0.0.0.3.72.0"),  # D not in the table
        ("1.0.32.7.3.255", "V", "0.0.0.0.0.1.54.0.0.0.0.0.0.0.129.0.29.0"),  # a harmonic (E != 0)
        ("1.0.32.8.0.255", "Vh", "0.0.0.0.0.1.54.0.0.0.0.0.0.0.129.0.0.0"),  # no integral of V
        ("1.0.128.8.0.255", "Wh", "0.0.0.0.0.1.12.0.0.0.0.0.0.0.0.0.72.0"),  # manufacturer C
        ("7.0.3.8.0.255", "m3", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"),  # gas: not electricity
        ("0.0.96.1.0.255", "", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"),  # not a measurement
        ("not-an-obis", "W", "0.0.0.0.0.0.37.0.0.0.0.0.0.0.0.0.38.0"),  # garbage in: a code
        ("", "", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"),
    ],
)
def test_fallback_is_a_well_formed_code_with_only_what_is_certain(
    obis: str, unit: str, code: str
) -> None:
    parts, derived = reading_type_parts(obis, unit)
    assert not derived and parts.code == code


def test_units_and_multipliers() -> None:
    assert unit_symbol("Wh") == (0, 72) and unit_symbol("kWh") == (3, 72)
    assert unit_symbol("MWh") == (6, 72) and unit_symbol("kvarh") == (3, 73)
    assert unit_symbol("kVArh") == (3, 73) and unit_symbol("mA") == (-3, 5)
    assert unit_symbol("min") == (0, 159) and unit_symbol("mo") == (0, 0)
    assert unit_symbol("unit-99") == (0, 0) and unit_symbol("") == (0, 0)


def test_derived_codes_are_distinct_per_obis() -> None:
    """The data store keys interval rows by ref: two different OBIS codes of the tables
    (every C, D, phase and tariff 0..4), each in its natural unit, never share a code."""
    units = {
        "active": "Wh",
        "reactive": "varh",
        "apparent": "VAh",
        "current": "A",
        "voltage": "V",
        "powerFactor": "",
        "frequency": "Hz",
    }
    power = {"Wh": "W", "varh": "var", "VAh": "VA"}
    seen: dict[str, str] = {}
    for base, rel, d, e in itertools.product(
        (0, 20, 40, 60), rt.QUANTITIES, rt.PROCESSING, range(5)
    ):
        quantity = rt.QUANTITIES[rel][0]
        unit = units[quantity]
        if d != 8 and d != 29:
            unit = power.get(unit, unit)
        obis = f"1.0.{base + rel}.{d}.{e}.255"
        parts, derived = reading_type_parts(obis, unit, measuring_period_s=900)
        if derived:
            assert parts.code not in seen, (obis, seen.get(parts.code))
            seen[parts.code] = obis
    assert len(seen) > 500


@given(
    a=st.integers(0, 255),
    b=st.integers(0, 255),
    c=st.integers(0, 255),
    d=st.integers(0, 255),
    e=st.integers(0, 255),
    f=st.integers(0, 255),
    unit=st.sampled_from(
        ["Wh", "kWh", "varh", "W", "V", "A", "Hz", "", "count", "unit-7", "kVAh", "%"]
    ),
    period=st.sampled_from([None, 0, 60, 900, 3600, 7200, 86400]),
)
def test_any_obis_any_unit_gives_a_code_the_schema_accepts(
    a: int, b: int, c: int, d: int, e: int, f: int, unit: str, period: int | None
) -> None:
    code = reading_type(f"{a}.{b}.{c}.{d}.{e}.{f}", unit, measuring_period_s=period)
    assert CODE.fullmatch(code) and _schema_pattern().fullmatch(code)
    parts = code.split(".")
    assert parts[5] == ("1" if a == 1 else "0")  # commodity: electricity or not claimed


def test_a_reading_kept_for_the_bulk_export_before_the_codes_gets_its_code() -> None:
    """bulk_pending rows written by an older gateway carry the register name as ref: they
    are exported with their code, the old ref kept as the name; new rows pass unchanged."""
    from smmc_gateway.headend.bulk_export import _kept_reading

    old = _kept_reading(
        {
            "ref": "active_energy_import",
            "obis": "1.0.1.8.0.255",
            "unit": "Wh",
            "timestamp": "2026-11-01T00:00:00+00:00",
            "value": 5,
        }
    )
    assert old["ref"] == "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"
    assert old["name"] == "active_energy_import" and old["timestamp"].tzinfo is not None
    new = _kept_reading(
        {
            "ref": old["ref"],
            "obis": "1.0.1.8.0.255",
            "unit": "Wh",
            "timestamp": "2026-11-01T00:00:00+00:00",
            "value": 5,
        }
    )
    assert new["ref"] == old["ref"] and "name" not in new


def test_interval_blocks_kept_for_the_bulk_export_before_the_codes_get_theirs() -> None:
    from smmc_gateway.headend.bulk_export import _kept_blocks

    old = (
        b'[{"ReadingType":{"ref":"obis:1.0.1.8.0.255","obis":"1.0.1.8.0.255","unit":"Wh"},'
        b'"IntervalReadings":[{"timeStamp":"2026-11-01T00:15:00Z","value":1},'
        b'{"timeStamp":"2026-11-01T00:30:00Z","value":2}]}]'
    )
    (block,) = json.loads(_kept_blocks(old))
    assert block["ReadingType"]["ref"] == "0.0.2.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"  # 15 min
    assert [iv["value"] for iv in block["IntervalReadings"]] == [1, 2]
    new = old.replace(b"obis:1.0.1.8.0.255", b"0.0.2.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0")
    assert _kept_blocks(new) is new  # blocks with codes pass untouched, never re-rendered


def test_codes_are_memoised_per_obis_unit_and_period() -> None:
    """Every read of a fleet asks for the same few codes: computed once, and the
    memo keeps codes apart by OBIS, unit and measuring period."""
    reading_type.cache_clear()
    first = reading_type("1.0.1.8.0.255", "Wh")
    assert reading_type("1.0.1.8.0.255", "Wh") == first
    assert reading_type.cache_info().hits == 1
    assert reading_type("1.0.1.8.0.255", "kWh") != first  # the multiplier differs
    sampled = [reading_type("1.0.1.29.0.255", "kWh", measuring_period_s=p) for p in (900, 3600)]
    assert sampled[0] != sampled[1]
    for obis, unit, period in [("1.0.1.8.0.255", "Wh", None), ("1.0.1.29.0.255", "kWh", 900)]:
        assert (
            reading_type(obis, unit, measuring_period_s=period)
            == reading_type_parts(obis, unit, measuring_period_s=period)[0].code
        )
