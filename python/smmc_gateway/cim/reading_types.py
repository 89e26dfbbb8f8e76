"""IEC 61968-9 ``ReadingType`` codes (the 18-part code) from OBIS code, unit and period.

The code is ``macroPeriod.aggregate.measuringPeriod.accumulation.flowDirection.
commodity.measurementKind.interharmonicNumerator.interharmonicDenominator.
argumentNumerator.argumentDenominator.tou.cpp.consumptionTier.phases.multiplier.unit.
currency`` (order as in Connexo's ReadingTypeCodeBuilder, whose tests also give e.g.
``0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0`` for 15-minute forward kWh deltas). Enumeration
numbers: the NAESB ESPI / IEC 61968-9 values as listed by the Green Button Alliance
resource server (Apache-2.0; TimeAttributeKind, AccumulationKind, FlowDirectionKind,
MeasurementKind, PhaseCodeKind, UnitSymbolKind, UnitMultiplierKind, DataQualifierKind,
TimePeriodOfInterest). See docs/reading-types.md for the tables and the choices.

Derivation (:func:`reading_type_parts`): an electricity OBIS code (A = 1) with F = 255,
a known quantity C (:data:`QUANTITIES`, per phase by C's range) and a known processing D
(:data:`PROCESSING`) gives a full code; E is the TOU rate for time integrals and demand
(0 = total). Anything else (other media, historical values F != 255, unknown C or D,
harmonics E != 0 on instantaneous values) falls back to a code with only what the OBIS
code and the unit say for sure (commodity, phases and flow from C, kind from the unit,
unit and multiplier) and zeros elsewhere: never an error, and ``obis`` travels beside.
Values are published already multiplied by 10^scaler, so the multiplier comes from the
unit text only (``kWh`` -> 3).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple, NotRequired, TypedDict

from smmc_gateway.cosem.obis import Obis, ObisError


class Reading(TypedDict):
    """One register value: ``ref`` is the IEC 61968-9 ReadingType code
    (:func:`reading_type`), ``obis`` e.g. "1.0.1.8.0.255", ``name`` the
    register's configured name (optional)."""

    ref: str
    obis: str
    unit: str
    timestamp: datetime
    value: float | int | str
    name: NotRequired[str]


# Enumeration values (GBA resource server enums; see the module docstring).
MEASURING_PERIODS: Mapping[int, int] = {  # seconds -> TimeAttributeKind
    60: 3,
    120: 10,
    180: 14,
    300: 6,
    600: 1,
    900: 2,
    1200: 31,
    1800: 5,
    3600: 7,
    86400: 4,
}
PRESENT, PREVIOUS = 15, 16  # TimeAttributeKind present / previous (demand periods)
BULK, CUMULATIVE, DELTA, INDICATING, INSTANTANEOUS = 1, 3, 4, 6, 12  # AccumulationKind
AVERAGE, MAXIMUM, MINIMUM = 2, 8, 9  # aggregate (DataQualifierKind)
BILLING_PERIOD = 8  # macroPeriod (TimePeriodOfInterest)
ELECTRICITY_SECONDARY_METERED = 1  # CommodityKind
KIND = {
    "current": 4,
    "demand": 8,
    "energy": 12,
    "frequency": 15,
    "power": 37,
    "powerFactor": 38,
    "voltage": 54,
}  # MeasurementKind
FLOW = {
    "none": 0,
    "forward": 1,
    "net": 4,
    "q1plusQ2": 5,
    "q3plusQ4": 13,
    "quadrant1": 15,
    "quadrant2": 16,
    "quadrant3": 17,
    "quadrant4": 18,
    "reverse": 19,
    "total": 20,
}
UNITS: Mapping[str, int] = {  # unit text (as the gateway publishes it) -> UnitSymbolKind
    "A": 5,
    "deg": 9,
    "degC": 23,
    "s": 27,
    "V": 29,
    "Hz": 33,
    "W": 38,
    "VA": 61,
    "var": 63,
    "VAh": 71,
    "Wh": 72,
    "varh": 73,
    "count": 111,
    "min": 159,
    "h": 160,
}
UNIT_ALIASES: Mapping[str, str] = {"VAr": "var", "VArh": "varh", "VARh": "varh", "VAR": "var"}
PREFIXES: Mapping[str, int] = {"k": 3, "M": 6, "G": 9, "m": -3}  # UnitMultiplierKind
KIND_OF_UNIT: Mapping[int, str] = {
    72: "energy",
    73: "energy",
    71: "energy",
    38: "power",
    63: "power",
    61: "power",
    29: "voltage",
    5: "current",
    33: "frequency",
}
# Per-phase ranges of OBIS C: base offset -> (PhaseCodeKind of quantities, of voltages)
PHASE_RANGES: Mapping[int, tuple[int, int]] = {
    0: (0, 0),  # C 1..16: total (all phases) or any phase
    20: (128, 129),  # C 21..36: L1 -> A (voltage A-N)
    40: (64, 65),  # C 41..56: L2 -> B (voltage B-N)
    60: (32, 33),  # C 61..76: L3 -> C (voltage C-N)
}
NEUTRAL = 16  # PhaseCodeKind N

#: OBIS C (relative to its phase range) -> (quantity class, flow direction) per IEC
#: 62056-6-1: 1 A+ (QI+QIV), 2 A- (QII+QIII), 3 R+ (QI+QII), 4 R- (QIII+QIV), 5..8 reactive
#: per quadrant, 9/10 S+/S-, 11 current, 12 voltage, 13 power factor, 14 frequency,
#: 15 |A+|+|A-|, 16 A+ - A-.
QUANTITIES: Mapping[int, tuple[str, str]] = {
    1: ("active", "forward"),
    2: ("active", "reverse"),
    3: ("reactive", "q1plusQ2"),
    4: ("reactive", "q3plusQ4"),
    5: ("reactive", "quadrant1"),
    6: ("reactive", "quadrant2"),
    7: ("reactive", "quadrant3"),
    8: ("reactive", "quadrant4"),
    9: ("apparent", "forward"),
    10: ("apparent", "reverse"),
    11: ("current", "none"),
    12: ("voltage", "none"),
    13: ("powerFactor", "none"),
    14: ("frequency", "none"),
    15: ("active", "total"),
    16: ("active", "net"),
}
FLOWING = frozenset({"active", "reactive", "apparent"})

#: OBIS D -> (macroPeriod, aggregate, measuringPeriod, accumulation, kind for energy
#: quantities or None = not an energy processing, uses the capture period).
#: 2 cumulative maximum 1, 3 minimum 1, 4 current average 1, 5 last average 1,
#: 6 maximum 1, 7 instantaneous, 8 time integral 1 (register), 29 time integral 5
#: (over the last capture period).
PROCESSING: Mapping[int, tuple[int, int, int, int, str, bool]] = {
    2: (BILLING_PERIOD, MAXIMUM, 0, CUMULATIVE, "demand", False),
    3: (BILLING_PERIOD, MINIMUM, 0, INDICATING, "demand", False),
    4: (0, AVERAGE, PRESENT, INDICATING, "demand", False),
    5: (0, AVERAGE, PREVIOUS, INDICATING, "demand", False),
    6: (BILLING_PERIOD, MAXIMUM, 0, INDICATING, "demand", False),
    7: (0, 0, 0, INSTANTANEOUS, "power", False),
    8: (0, 0, 0, BULK, "energy", True),
    29: (0, 0, 0, DELTA, "energy", True),
}
TARIFFED = frozenset({2, 3, 4, 5, 6, 8, 29})  # D whose E is a tariff rate (TOU)


class ReadingTypeCode(NamedTuple):
    """The 18 parts, in code order."""

    macro_period: int = 0
    aggregate: int = 0
    measuring_period: int = 0
    accumulation: int = 0
    flow_direction: int = 0
    commodity: int = 0
    measurement_kind: int = 0
    interharmonic_numerator: int = 0
    interharmonic_denominator: int = 0
    argument_numerator: int = 0
    argument_denominator: int = 0
    tou: int = 0
    cpp: int = 0
    consumption_tier: int = 0
    phases: int = 0
    multiplier: int = 0
    unit: int = 0
    currency: int = 0

    @property
    def code(self) -> str:
        return ".".join(str(p) for p in self)


def unit_symbol(unit: str) -> tuple[int, int]:
    """(multiplier, UnitSymbolKind) of a unit text; (0, 0) when not known."""
    text = UNIT_ALIASES.get(unit, unit)
    if text in UNITS:
        return 0, UNITS[text]
    if len(text) > 1 and text[0] in PREFIXES:
        base = UNIT_ALIASES.get(text[1:], text[1:])
        if base in UNITS:
            return PREFIXES[text[0]], UNITS[base]
    return 0, 0


def _phases(c: int) -> tuple[int, int] | None:
    """(relative C, phase code) of an electricity C, or None outside the known ranges."""
    if c == 91:
        return 11, NEUTRAL  # neutral current
    for base, (phase, voltage_phase) in PHASE_RANGES.items():
        rel = c - base
        if rel in QUANTITIES:
            return rel, voltage_phase if QUANTITIES[rel][0] == "voltage" else phase
    return None


def _kind(quantity: str, processing_kind: str) -> int:
    if quantity in FLOWING:
        return KIND[processing_kind]
    return KIND[quantity]


def reading_type_parts(
    obis: str, unit: str, *, measuring_period_s: int | None = None
) -> tuple[ReadingTypeCode, bool]:
    """The code parts of a value of ``obis`` in ``unit`` and whether they were fully
    derived (False: the documented fallback). ``measuring_period_s``: the capture period
    of the profile the value comes from (None for a register read)."""
    multiplier, symbol = unit_symbol(unit)
    try:
        a, _b, c, d, e, f = Obis.parse(obis).groups
    except ObisError:
        kind = KIND.get(KIND_OF_UNIT.get(symbol, ""), 0)
        return ReadingTypeCode(measurement_kind=kind, multiplier=multiplier, unit=symbol), False
    electric = a == 1
    placed = _phases(c) if electric else None
    quantity, flow = QUANTITIES[placed[0]] if placed else ("", "none")
    phases = placed[1] if placed else 0
    processing = PROCESSING.get(d)
    derivable = (
        electric
        and placed is not None
        and processing is not None
        and f == 255
        and (e == 0 or (d in TARIFFED and e <= 63))
    )
    if processing is not None and derivable:
        energy_kind = processing[4]
        if quantity not in FLOWING and energy_kind == "energy":
            derivable = False  # a time integral of a voltage, current ...: not in the table
    if not derivable or processing is None:
        kind = KIND.get(KIND_OF_UNIT.get(symbol, ""), 0)
        if placed is not None and quantity not in FLOWING:
            kind = KIND[quantity]
        return ReadingTypeCode(
            flow_direction=FLOW[flow],
            commodity=ELECTRICITY_SECONDARY_METERED if electric else 0,
            measurement_kind=kind,
            phases=phases,
            multiplier=multiplier,
            unit=symbol,
        ), False
    macro, aggregate, period, accumulation, energy_kind, sampled = processing
    if sampled and measuring_period_s:
        period = MEASURING_PERIODS.get(int(measuring_period_s), 0)
    return ReadingTypeCode(
        macro_period=macro,
        aggregate=aggregate,
        measuring_period=period,
        accumulation=accumulation,
        flow_direction=FLOW[flow],
        commodity=ELECTRICITY_SECONDARY_METERED,
        measurement_kind=_kind(quantity, energy_kind),
        tou=e if d in TARIFFED else 0,
        phases=phases,
        multiplier=multiplier,
        unit=symbol,
    ), True


@functools.lru_cache(maxsize=4096)
def reading_type(obis: str, unit: str, *, measuring_period_s: int | None = None) -> str:
    """The 18-part ReadingType code of a value of ``obis`` in ``unit`` (never raises;
    memoised: every read of a fleet asks for the same few codes)."""
    return reading_type_parts(obis, unit, measuring_period_s=measuring_period_s)[0].code
