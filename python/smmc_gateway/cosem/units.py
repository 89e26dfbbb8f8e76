"""The unit enumeration of a COSEM scaler_unit (DLMS UA Blue Book, IEC 62056-6-2):
one table, code -> the unit's ASCII name (as the gateway publishes it in readings and
as device models and the limiter name it) and its symbol (as the technician's CLI
prints it).

Codes 1..57 and 254/255 are listed; another code is shown as ``unit-N`` / ``unit N``
(published, never dropped). The ASCII names are the ones ``cim.reading_types`` maps to
IEC 61968-9 unit symbols (``W``, ``Wh``, ``var``, ``degC``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple


class Unit(NamedTuple):
    code: int
    name: str
    """ASCII, as published (``degC``, ``m3``)."""
    symbol: str
    """As printed for a person (``°C``, ``m³``)."""


def _table(*rows: tuple[int, str, str]) -> Mapping[int, Unit]:
    return MappingProxyType({c: Unit(c, n, s) for c, n, s in rows})


UNITS: Mapping[int, Unit] = _table(
    (1, "a", "a"),  # year
    (2, "mo", "mo"),  # month
    (3, "wk", "wk"),  # week
    (4, "d", "d"),  # day
    (5, "h", "h"),
    (6, "min", "min"),
    (7, "s", "s"),
    (8, "deg", "°"),  # phase angle
    (9, "degC", "°C"),
    (10, "currency", "currency"),  # local currency
    (11, "m", "m"),
    (12, "m/s", "m/s"),
    (13, "m3", "m³"),
    (14, "m3", "m³"),  # corrected volume
    (15, "m3/h", "m³/h"),
    (16, "m3/h", "m³/h"),  # corrected
    (17, "m3/d", "m³/d"),
    (18, "m3/d", "m³/d"),  # corrected
    (19, "l", "l"),
    (20, "kg", "kg"),
    (21, "N", "N"),
    (22, "Nm", "Nm"),
    (23, "Pa", "Pa"),
    (24, "bar", "bar"),
    (25, "J", "J"),
    (26, "J/h", "J/h"),
    (27, "W", "W"),
    (28, "VA", "VA"),
    (29, "var", "var"),
    (30, "Wh", "Wh"),
    (31, "VAh", "VAh"),
    (32, "varh", "varh"),
    (33, "A", "A"),
    (34, "C", "C"),
    (35, "V", "V"),
    (36, "V/m", "V/m"),
    (37, "F", "F"),
    (38, "ohm", "Ω"),
    (39, "ohm.m2/m", "Ωm²/m"),
    (40, "Wb", "Wb"),
    (41, "T", "T"),
    (42, "A/m", "A/m"),
    (43, "H", "H"),
    (44, "Hz", "Hz"),
    (45, "1/Wh", "1/(Wh)"),  # active energy meter constant
    (46, "1/varh", "1/(varh)"),
    (47, "1/VAh", "1/(VAh)"),
    (48, "V2h", "V²h"),
    (49, "A2h", "A²h"),
    (50, "kg/s", "kg/s"),
    (51, "S", "S"),  # conductance
    (52, "K", "K"),
    (53, "1/V2h", "1/(V²h)"),
    (54, "1/A2h", "1/(A²h)"),
    (55, "1/m3", "1/m³"),
    (56, "%", "%"),
    (57, "Ah", "Ah"),
    (254, "other", "other"),
    (255, "count", "count"),
)


WATT = 27
"""The code of W (what a limiter's monitored value is expected in)."""


def unit_name(code: int) -> str:
    """The ASCII name of a unit code (``unit-N`` when not known)."""
    unit = UNITS.get(code)
    return unit.name if unit is not None else f"unit-{code}"


def unit_symbol(code: int) -> str:
    """The printed symbol of a unit code (``unit N`` when not known)."""
    unit = UNITS.get(code)
    return unit.symbol if unit is not None else f"unit {code}"


_BY_NAME: Mapping[str, int] = MappingProxyType(
    {u.name: u.code for u in reversed(list(UNITS.values()))}
)


def unit_code(name: str) -> int | None:
    """The code of an ASCII unit name (the first code of a name two share, e.g. ``m3``)."""
    return _BY_NAME.get(name)
