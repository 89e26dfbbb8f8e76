"""OBIS codes: parsing, formatting, bytes, and errors that name the problem."""

import pytest
from smmc_gateway.cosem.obis import Obis, ObisError


def test_parse_and_format_round_trip() -> None:
    code = Obis.parse("1.0.1.8.0.255")
    assert code.groups == (1, 0, 1, 8, 0, 255)
    assert str(code) == "1.0.1.8.0.255"
    assert code.to_bytes() == bytes([1, 0, 1, 8, 0, 255])
    assert Obis.from_bytes(code.to_bytes()) == code
    assert Obis.from_hex("0100010800ff") == code


def test_iec_reduced_form() -> None:
    assert Obis.parse("1-0:32.7.0*255") == Obis(1, 0, 32, 7, 0, 255)


def test_coerce_accepts_all_forms() -> None:
    code = Obis(0, 0, 1, 0, 0, 255)
    assert Obis.coerce("0.0.1.0.0.255") == code
    assert Obis.coerce(b"\x00\x00\x01\x00\x00\xff") == code
    assert Obis.coerce(code) is code


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1.0.1.8.0", "has 5 groups"),
        ("1.0.1.8.0.255.1", "has 7 groups"),
        ("1.0.1.8.0.256", "group F is 256"),
        ("1.0.x.8.0.255", "group C is 'x'"),
        ("1.0.-1.8.0.255", "group C is '-1'"),
        ("", "has 1 groups"),
        ("1..1.8.0.255", "group B is ''"),
    ],
)
def test_parse_errors_name_the_group(text: str, needle: str) -> None:
    with pytest.raises(ObisError, match=needle.replace(".", r"\.")):
        Obis.parse(text)


def test_byte_length_error() -> None:
    with pytest.raises(ObisError, match="5 bytes, expected 6"):
        Obis.from_bytes(b"\x01\x00\x01\x08\x00")
    with pytest.raises(ObisError, match="not hex"):
        Obis.from_hex("zz")


def test_constructor_validates() -> None:
    with pytest.raises(ObisError, match="group A is 300"):
        Obis(300, 0, 0, 0, 0, 0)
    with pytest.raises(ObisError, match="must be an integer"):
        Obis(True, 0, 0, 0, 0, 0)
