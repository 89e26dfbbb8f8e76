"""M-Bus client setup (class 72, version 1) and M-Bus master port setup (class 74): the
meter's side of its wired/wireless M-Bus, where HAN devices (an in-home display, a gas or
water meter) are attached (use case 4, interface I1).

Class 72 attributes (Blue Book): 2 mbus_port_reference (the master port's logical name),
3 capture_definition, 4 capture_period, 5 primary_address, 6 identification_number (the
slave's 8-digit secondary address, BCD in a double-long-unsigned as DSMR/OSGP carry it),
7 manufacturer_id (the EN 13757-3 three-letter code packed in a long-unsigned), 8 version,
9 device_type (EN 13757-3 medium: 0x25 customer unit (display device), 0x03 gas ...),
10 access_number, 11 status (the status byte of the slave's last telegram), 12 alarm,
13 configuration, 14 encryption_key_status (0 no key, 1 set, 2 transferred, 3 set and
transferred, 4 in use). Methods: 1 slave_install(unsigned primary address; 0 = the meter
picks), 2 slave_deinstall(integer), 3 capture(integer), 4 reset_alarm, 5
synchronize_clock, 6 data_send, 7 set_encryption_key(octet-string: the key, in clear: a
ciphered association carries it; empty clears it), 8 transfer_key(octet-string: the new
key encrypted with the slave's default key as the slave expects, for DSMR 4 devices
AES-128-CBC with a zero IV). Methods 5 and 6 are not implemented by this simulator.

Simulator conventions (not from a standard): after a capture that found no answer the
status byte is 0x10 (EN 13757-3 "temporary error"); after one whose telegram did not
decrypt under the key set on this channel it is 0x02 ("application error").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bytes,
    as_int,
    double_long_unsigned,
    enum,
    long_unsigned,
    octet_string,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

if TYPE_CHECKING:
    from smmc_gateway.simulator.han import HanBus

NO_KEY, KEY_SET, KEY_TRANSFERRED, KEY_SET_AND_TRANSFERRED, KEY_IN_USE = range(5)
STATUS_OK = 0x00
STATUS_APPLICATION_ERROR = 0x02
STATUS_TEMPORARY_ERROR = 0x10
MASTER_PORT = Obis(0, 0, 24, 6, 0, 255)


def client_obis(channel: int) -> Obis:
    """M-Bus client setup of channel 1..4: 0.b.24.1.0.255 with b the channel."""
    return Obis(0, channel, 24, 1, 0, 255)


@dataclass
class Installed:
    """What a channel holds about its slave (all zero: nothing installed)."""

    primary_address: int = 0
    identification: int = 0  # BCD of the 8 decimal digits
    manufacturer: int = 0
    version: int = 0
    device_type: int = 0


class MBusClient(CosemObject):
    class_id = 72
    writable = frozenset({4, 5, 6, 7, 8, 9, 13})
    methods = frozenset({1, 2, 3, 4, 7, 8})

    def __init__(self, channel: int, bus: HanBus) -> None:
        super().__init__(client_obis(channel))
        self.channel = channel
        self.bus = bus
        self.slot = Installed()
        self.capture_period = 3600
        self.access_number = 0
        self.status = STATUS_OK
        self.alarm = 0
        self.configuration = 0
        self.key: bytes | None = None  # set_encryption_key
        self.transferred = False  # transfer_key done since the last install

    # ---------------------------------------------------------------- state
    @property
    def installed(self) -> bool:
        return self.slot.identification != 0

    @property
    def key_status(self) -> int:
        if self.key is not None and self.transferred:
            device = self.bus.device(self.slot.identification)
            in_use = device is not None and device.user_key == self.key and self.access_number
            return KEY_IN_USE if in_use else KEY_SET_AND_TRANSFERRED
        if self.key is not None:
            return KEY_SET
        return KEY_TRANSFERRED if self.transferred else NO_KEY

    def clear(self) -> None:
        self.slot = Installed()
        self.access_number = 0
        self.status = STATUS_OK
        self.alarm = 0
        self.key = None
        self.transferred = False

    # ---------------------------------------------------------------- COSEM
    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        s = self.slot
        values: dict[int, Callable[[], TypedValue]] = {
            2: lambda: octet_string(MASTER_PORT.to_bytes()),
            3: lambda: array([]),
            4: lambda: double_long_unsigned(self.capture_period),
            5: lambda: unsigned(s.primary_address),
            6: lambda: double_long_unsigned(s.identification),
            7: lambda: long_unsigned(s.manufacturer),
            8: lambda: unsigned(s.version),
            9: lambda: unsigned(s.device_type),
            10: lambda: unsigned(self.access_number),
            11: lambda: unsigned(self.status),
            12: lambda: unsigned(self.alarm),
            13: lambda: long_unsigned(self.configuration),
            14: lambda: enum(self.key_status),
        }
        return values[attribute_id]()

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 4:
            self.capture_period = as_int(value, "double-long-unsigned")
        elif attribute_id == 5:
            self.slot.primary_address = as_int(value, "unsigned")
        elif attribute_id == 6:
            number = as_int(value, "double-long-unsigned")
            if not valid_bcd(number):
                return "type-unmatched"
            self.slot.identification = number
        elif attribute_id == 7:
            self.slot.manufacturer = as_int(value, "long-unsigned")
        elif attribute_id == 8:
            self.slot.version = as_int(value, "unsigned")
        elif attribute_id == 9:
            self.slot.device_type = as_int(value, "unsigned")
        else:
            self.configuration = as_int(value, "long-unsigned")
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if method_id == 1:
            address = as_int(parameters, "unsigned") if parameters is not None else 0
            return (self.bus.install(self, address, now), None)
        if method_id in (2, 3, 4):
            if parameters is not None:
                as_int(parameters, "integer", "unsigned")
            if method_id == 2:
                return (self.bus.deinstall(self, now), None)
            if method_id == 3:
                return (self.bus.capture(self, now), None)
            self.alarm = 0
            return ("success", None)
        data = as_bytes(parameters)
        if method_id == 7:
            if data and len(data) != 16:
                return ("type-unmatched", None)
            self.key = data or None
            return ("success", None)
        return (self.bus.transfer_key(self, data, now), None)


class MBusMasterPort(CosemObject):
    """M-Bus master port setup (class 74): comm_speed (enum, 3 = 2400 baud)."""

    class_id = 74
    writable = frozenset({2})

    def __init__(self) -> None:
        super().__init__(MASTER_PORT)
        self.comm_speed = 3

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        return enum(self.comm_speed)

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        speed = as_int(value, "enum")
        if speed > 9:
            return "type-unmatched"
        self.comm_speed = speed
        return "success"


def valid_bcd(number: int) -> bool:
    """Every nibble of ``number`` is a decimal digit (8-digit M-Bus identification)."""
    return all(int(d, 16) <= 9 for d in f"{number:08x}")
