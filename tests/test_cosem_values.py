"""Typed values, the object model, and property round trips for OBIS and
COSEM date-times."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smmc_gateway.cosem.classes import CLASSES, MethodAccess, interface_class
from smmc_gateway.cosem.datetime import pack_datetime, to_utc, unpack_datetime
from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    ValueTypeError,
    array,
    as_bytes,
    as_int,
    as_structure,
    bit_string,
    boolean,
    enum,
    integer,
    long_unsigned,
    null,
    octet_string,
    structure,
    typed,
    unsigned,
)


def test_integer_ranges_are_checked() -> None:
    assert unsigned(255) == {"type": "unsigned", "value": 255}
    with pytest.raises(ValueTypeError, match=r"unsigned value 256 outside 0\.\.255"):
        unsigned(256)
    with pytest.raises(ValueTypeError, match="needs an integer"):
        typed("long", True)
    with pytest.raises(ValueTypeError, match="outside"):
        integer(-129)


def test_readers_name_expected_and_found() -> None:
    with pytest.raises(ValueTypeError, match="expected long-unsigned, got unsigned"):
        as_int(unsigned(1), "long-unsigned")
    with pytest.raises(ValueTypeError, match="structure has 1 elements, expected 2"):
        as_structure(structure([null()]), 2)
    with pytest.raises(ValueTypeError, match="not hex"):
        as_bytes({"type": "octet-string", "value": "xyz"})
    with pytest.raises(ValueTypeError, match="not a typed value"):
        as_int(5)
    with pytest.raises(ValueTypeError, match="outside"):
        as_int({"type": "unsigned", "value": 300})


def test_bit_string_msb_first_with_length() -> None:
    assert bit_string([True, False, True]) == {"type": "bit-string", "value": "a0", "bits": 3}
    assert bit_string([False] * 9) == {"type": "bit-string", "value": "0000", "bits": 9}


def test_class_tables() -> None:
    assert set(CLASSES) == {
        1,
        3,
        4,
        5,
        7,
        8,
        9,
        11,
        15,
        17,
        18,
        20,
        21,
        22,
        40,
        64,
        70,
        71,
        72,
        74,
        113,
    }
    clock = interface_class(8)
    assert clock.attribute_id("time_zone") == 3 and clock.method_id("shift_time") == 6
    assert interface_class(15).attribute_name(7) == "secret"
    assert interface_class(7).version == 1
    with pytest.raises(KeyError, match="class 99"):
        interface_class(99)


def test_object_model_reads_version_0_boolean_method_access() -> None:
    entry = structure(
        [
            long_unsigned(70),
            unsigned(0),
            octet_string(bytes([0, 0, 96, 3, 10, 255])),
            structure(
                [
                    array([structure([integer(2), enum(1), null()])]),
                    array([structure([integer(1), boolean(True)])]),
                ]
            ),
        ]
    )
    model = ObjectModel.from_object_list(array([entry]))
    info = model.get("0.0.96.3.10.255")
    assert info is not None and info.class_name == "Disconnect control"
    assert info.can_read(2) and not info.can_write(2) and not info.can_read(3)
    assert info.methods[1].access == MethodAccess.ACCESS and info.can_invoke(1)
    assert model.of_class(70) == [info]


@given(st.tuples(*[st.integers(0, 255)] * 6))
def test_obis_text_and_bytes_round_trip(groups: tuple[int, ...]) -> None:
    code = Obis(*groups)
    assert Obis.parse(str(code)) == code
    assert Obis.from_bytes(code.to_bytes()) == code


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31)),
    st.integers(-720, 720),
)
def test_datetime_round_trip(value: datetime, deviation: int) -> None:
    value = value.replace(microsecond=value.microsecond // 10_000 * 10_000)
    aware = value.replace(tzinfo=timezone(timedelta(minutes=-deviation)))
    data = pack_datetime(aware)
    assert unpack_datetime(data).deviation == deviation
    assert unpack_datetime(data).to_datetime() == aware
    assert to_utc(data) == aware.astimezone(UTC)


@given(st.binary(min_size=12, max_size=12))
def test_unpack_never_crashes_unexpectedly(data: bytes) -> None:
    try:
        fields = unpack_datetime(data)
    except ValueError:
        return
    fields.to_datetime()
