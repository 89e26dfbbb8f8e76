"""IEC 62056-21 mode E sign-on: the reader and meter state machines, byte for byte."""

import pytest
from smmc_gateway.dlms.optical import (
    Identification,
    OpticalHandshakeError,
    OpticalResponder,
    OpticalSignOn,
    ack_message,
    request_message,
)


def test_messages_are_as_the_standard_writes_them() -> None:
    assert request_message() == b"/?!\r\n"
    assert request_message("12345678") == b"/?12345678!\r\n"
    assert ack_message(9600) == b"\x06252\r\n"
    assert ack_message(19200) == b"\x06262\r\n"
    with pytest.raises(ValueError, match="not a mode E rate"):
        ack_message(115200)


def test_identification_parsing() -> None:
    ident = Identification.parse(b"/LGZ5\\2ZMD3104407.B32\r\n")
    assert ident.manufacturer == "LGZ"
    assert ident.max_baud == 9600
    assert ident.mode_e
    assert ident.identification == "ZMD3104407.B32"
    assert not ident.fast_reaction
    assert Identification.parse(b"/ISk5\\2MT382-1000\r\n").fast_reaction
    plain = Identification.parse(b"/ABC4MeterX\r\n")
    assert not plain.mode_e and plain.max_baud == 4800


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"ABC5\\2x\r\n", "does not start with '/'"),
        (b"/AB\r\n", "too short"),
        (b"/A1C5\\2x\r\n", "not three letters"),
        (b"/ABC9\\2x\r\n", "baud rate character '9'"),
        (b"/AB\xff5\\2x\r\n", "non-ASCII"),
    ],
)
def test_bad_identifications_are_named(line: bytes, message: str) -> None:
    with pytest.raises(OpticalHandshakeError, match=message):
        Identification.parse(line)


def test_reader_and_meter_agree_on_mode_e_in_pieces() -> None:
    reader = OpticalSignOn(max_baud=9600)
    meter = OpticalResponder(manufacturer="SMC", identification="SIM0001", max_baud=19200)
    reply = b"".join(meter.receive_data(bytes([b])) for b in reader.start())
    assert reply == b"/SMC6\\2SIM0001\r\n"
    for b in reply:  # the meter's answer arrives one byte at a time
        reader.receive_data(bytes([b]))
    assert reader.identification is not None
    assert reader.baud == 9600  # the lower of the two
    assert meter.receive_data(reader.acknowledgement()) == b""
    assert meter.agreed_baud == 9600


def test_reader_tolerates_echo_and_noise() -> None:
    reader = OpticalSignOn()
    reader.receive_data(b"\x00" + reader.start() + b"/SMC5\\2E\r\n")
    assert reader.identification is not None and reader.identification.identification == "E"


def test_meter_without_mode_e_is_refused_clearly() -> None:
    reader = OpticalSignOn()
    meter = OpticalResponder(mode_e=False)
    with pytest.raises(OpticalHandshakeError, match="does not offer mode E"):
        reader.receive_data(meter.receive_data(reader.start()))


def test_meter_naks_an_ack_it_cannot_honour() -> None:
    meter = OpticalResponder(max_baud=4800)
    meter.receive_data(request_message())
    assert meter.receive_data(ack_message(9600)) == b"\x15"
    assert meter.agreed_baud is None


def test_meter_ignores_requests_for_another_address() -> None:
    meter = OpticalResponder(device_address="42")
    assert meter.receive_data(b"/?43!\r\n") == b""
    assert meter.receive_data(b"/?42!\r\n").startswith(b"/SMC5")


def test_garbage_without_identification_is_an_error() -> None:
    reader = OpticalSignOn()
    with pytest.raises(OpticalHandshakeError, match="only noise"):
        reader.receive_data(b"\x55" * 200)
