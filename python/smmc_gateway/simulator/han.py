"""The simulated meter's HAN side (use case 4, interface I1): M-Bus devices that join and
leave its bus, the four M-Bus client setups that hold them, and the in-home display the
meter feeds through its consumer information interface.

A device that joins is installed by the meter itself on the first free channel (as DSMR
meters do for a new M-Bus device): primary address = the channel, identification,
manufacturer, version and device type from the device; the M-Bus event log gets "new M-Bus
device discovered" (code 105 + 10 x (channel - 1)) and the alarm register the matching
bit (24 + channel - 1); with the alarm filter letting it through, an alarm push follows.
A device that leaves: "communication error M-Bus channel n" (100 + 10 x (channel - 1)),
alarm bit 16 + channel - 1; coming back: "communication ok" (101 + ...). These codes and
bits are the DSMR numbering (as published with OSGP's alarm and event tables). A device
de-installed on request is not installed again automatically until it leaves and rejoins.

Keys: ``transfer_key`` carries the device's new key encrypted with its default key
(AES-128-CBC, zero IV: DSMR 4 P2), which the simulated device decrypts and keeps;
``set_encryption_key`` gives the meter the same key; a capture then reads the device and
the key status becomes "in use" only when both hold the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smmc_gateway.simulator.objects.mbus import (
    STATUS_APPLICATION_ERROR,
    STATUS_OK,
    STATUS_TEMPORARY_ERROR,
    Installed,
    MBusClient,
)

CHANNELS = 4
DISPLAY, GAS, WATER, HEAT = 0x25, 0x03, 0x07, 0x04

EV_COMM_ERROR, EV_COMM_OK, EV_NEW_DEVICE = 100, 101, 105  # channel 1; + 10 per channel
ALARM_COMM_ERROR_BIT, ALARM_NEW_DEVICE_BIT = 16, 24  # channel 1; + 1 per channel


def manufacturer_id(code: str) -> int:
    """EN 13757-3 manufacturer id: three letters A..Z, 5 bits each (``NTM`` -> 0x3A8D)."""
    if len(code) != 3 or not all("A" <= c <= "Z" for c in code):
        raise ValueError(f"manufacturer {code!r}: three capital letters A..Z")
    return sum((ord(c) - 64) << shift for c, shift in zip(code, (10, 5, 0), strict=True))


def manufacturer_code(value: int) -> str:
    """The three letters of an EN 13757-3 manufacturer id ('' for 0 or a bad value)."""
    letters = [(value >> shift) & 0x1F for shift in (10, 5, 0)]
    if value <= 0 or value > 0x7FFF or not all(1 <= x <= 26 for x in letters):
        return ""
    return "".join(chr(64 + x) for x in letters)


def to_bcd(number: int) -> int:
    """8 decimal digits as BCD (12345678 -> 0x12345678)."""
    if not 0 <= number <= 99_999_999:
        raise ValueError(f"identification {number}: 0..99999999 (8 decimal digits)")
    return int(f"{number:08d}", 16)


def from_bcd(value: int) -> str:
    """The 8 digits of a BCD identification (0x12345678 -> '12345678')."""
    return f"{value:08x}"


def aes_cbc_zero_iv(key: bytes, data: bytes, *, decrypt: bool) -> bytes:
    """AES-128-CBC with a zero IV, no padding (DSMR 4 M-Bus key transfer)."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


@dataclass
class HanDevice:
    """One M-Bus slave: its identity as it answers on the bus, and its keys."""

    identification: int  # the 8 decimal digits, e.g. 12345678
    default_key: bytes
    manufacturer: str = "SMC"
    version: int = 1
    device_type: int = DISPLAY
    user_key: bytes | None = None

    def __post_init__(self) -> None:
        to_bcd(self.identification)
        manufacturer_id(self.manufacturer)
        if len(self.default_key) != 16:
            raise ValueError("default_key: 16 bytes")

    @property
    def bcd(self) -> int:
        return to_bcd(self.identification)


@dataclass(frozen=True)
class HanPlan:
    """A device that joins the meter's bus ``join_after_s`` after the meter was created
    (None: only on command) and leaves ``leave_after_s`` after it (None: stays)."""

    device: HanDevice
    join_after_s: float | None = 0.0
    leave_after_s: float | None = None


@dataclass
class HanBus:
    """Devices on the bus and the channels holding them. ``log(code, now)`` appends to the
    M-Bus event log, ``alarm(bit, now, reason)`` raises an alarm register bit."""

    log: Callable[[int, datetime], None]
    alarm: Callable[[int, datetime, str], None]
    auto_install: bool = True
    present: dict[int, HanDevice] = field(default_factory=dict)  # by BCD identification
    clients: list[MBusClient] = field(default_factory=list)
    not_again: set[int] = field(default_factory=set)  # de-installed, until they leave

    def __post_init__(self) -> None:
        if not self.clients:
            self.clients = [MBusClient(ch, self) for ch in range(1, CHANNELS + 1)]

    def device(self, bcd: int) -> HanDevice | None:
        return self.present.get(bcd) if bcd else None

    def channel_of(self, bcd: int) -> MBusClient | None:
        return next((c for c in self.clients if c.slot.identification == bcd and bcd), None)

    # ---------------------------------------------------------------- field events
    def join(self, device: HanDevice, now: datetime) -> int | None:
        """``device`` appears on the bus; the channel it is (or gets) installed on."""
        self.present[device.bcd] = device
        held = self.channel_of(device.bcd)
        if held is not None:
            held.status = STATUS_OK
            self._event(held, EV_COMM_OK, now)
            return held.channel
        if not self.auto_install or device.bcd in self.not_again:
            return None
        free = next((c for c in self.clients if not c.installed), None)
        if free is None:
            return None
        self._fill(free, device, free.channel)
        self._event(free, EV_NEW_DEVICE, now)
        self.alarm(ALARM_NEW_DEVICE_BIT + free.channel - 1, now, "han")
        return free.channel

    def leave(self, bcd: int, now: datetime) -> int | None:
        """The device stops answering (unplugged, out of range); its channel, if any."""
        if self.present.pop(bcd, None) is None:
            return None
        self.not_again.discard(bcd)
        held = self.channel_of(bcd)
        if held is None:
            return None
        held.status = STATUS_TEMPORARY_ERROR
        self._event(held, EV_COMM_ERROR, now)
        self.alarm(ALARM_COMM_ERROR_BIT + held.channel - 1, now, "han")
        return held.channel

    # ---------------------------------------------------------------- methods of class 72
    def install(self, client: MBusClient, address: int, now: datetime) -> str:
        """slave_install: the device named by the channel's identification (written
        before), or else the first device on the bus no channel holds."""
        wanted = client.slot.identification
        if wanted:
            device = self.device(wanted)
            elsewhere = self.channel_of(wanted)
            if elsewhere is not None and elsewhere is not client:
                return "other-reason"  # installed on another channel already
        else:
            held = {c.slot.identification for c in self.clients}
            device = next((d for b, d in self.present.items() if b not in held), None)
        if device is None:
            return "temporary-failure"  # no such device answers on the bus
        self.not_again.discard(device.bcd)
        self._fill(client, device, address or client.channel)
        self._event(client, EV_NEW_DEVICE, now)
        return "success"

    def deinstall(self, client: MBusClient, now: datetime) -> str:
        if client.installed:
            self.not_again.add(client.slot.identification)
        client.clear()
        return "success"

    def capture(self, client: MBusClient, now: datetime) -> str:
        device = self.device(client.slot.identification)
        if device is None:
            client.status = STATUS_TEMPORARY_ERROR
            return "success"
        if client.key is not None and device.user_key is not None and device.user_key != client.key:
            client.status = STATUS_APPLICATION_ERROR  # the telegram does not decrypt
            return "success"
        client.status = STATUS_OK
        client.access_number = (client.access_number + 1) % 256 or 1
        return "success"

    def transfer_key(self, client: MBusClient, data: bytes, now: datetime) -> str:
        device = self.device(client.slot.identification)
        if device is None:
            return "temporary-failure"
        if len(data) != 16:
            return "type-unmatched"
        device.user_key = aes_cbc_zero_iv(device.default_key, data, decrypt=True)
        client.transferred = True
        return "success"

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _fill(client: MBusClient, device: HanDevice, address: int) -> None:
        client.clear()
        client.slot = Installed(
            address,
            device.bcd,
            manufacturer_id(device.manufacturer),
            device.version,
            device.device_type,
        )

    def _event(self, client: MBusClient, base: int, now: datetime) -> None:
        self.log(base + 10 * (client.channel - 1), now)
