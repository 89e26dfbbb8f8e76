"""The unit enumeration has one home (cosem/units.py): the names the readings publish,
the symbols the CLI prints and the codes the limiter and the simulator use agree."""

from __future__ import annotations

from smmc_gateway.cim.reading_types import UNITS as CIM_UNITS
from smmc_gateway.cim.reading_types import unit_symbol as cim_symbol
from smmc_gateway.cosem.units import UNITS, WATT, unit_code, unit_name, unit_symbol

# what the readings published before the table moved here (the MQTT contract)
PUBLISHED = {
    1: "a",
    2: "mo",
    3: "wk",
    4: "d",
    5: "h",
    6: "min",
    7: "s",
    8: "deg",
    9: "degC",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    34: "C",
    35: "V",
    44: "Hz",
    56: "%",
    254: "other",
    255: "count",
}


def test_the_published_names_are_unchanged() -> None:
    for code, name in PUBLISHED.items():
        assert unit_name(code) == name, code


def test_every_name_the_mdm_maps_has_its_code() -> None:
    for name in CIM_UNITS:
        code = unit_code(name)
        assert code is not None, name
        assert unit_name(code) == name
        assert cim_symbol(unit_name(code)) != (0, 0)


def test_symbols_for_people_names_for_machines() -> None:
    assert (unit_name(9), unit_symbol(9)) == ("degC", "°C")
    assert (unit_name(13), unit_symbol(13)) == ("m3", "m³")
    assert (unit_name(38), unit_symbol(38)) == ("ohm", "Ω")
    assert all(u.name.isascii() for u in UNITS.values())


def test_unknown_codes_are_shown_not_dropped() -> None:
    assert unit_name(200) == "unit-200"
    assert unit_symbol(200) == "unit 200"
    assert unit_code("furlong") is None


def test_codes_of_names() -> None:
    assert unit_code("W") == WATT == 27 and unit_code("Wh") == 30 and unit_code("VA") == 28
    assert unit_code("m3") == 13  # the first of the codes that share a name
    assert sorted(UNITS) == [*range(1, 58), 254, 255]
