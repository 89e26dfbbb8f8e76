"""Use case 4 (interface I1): HAN devices on the meter's M-Bus — read, install, key, de-install.

The meter holds one M-Bus client setup (class 72, version 1) per channel, 0.b.24.1.0.255
with b = 1..4 (Blue Book). Attributes read here: 5 primary_address, 6
identification_number (8 decimal digits BCD-coded, as DSMR meters and OSGP carry them),
7 manufacturer_id (EN 13757-3: three letters, 5 bits each), 8 version, 9 device_type
(EN 13757-3 medium), 11 status (the status byte of the slave's last telegram), 12 alarm,
14 encryption_key_status. Methods: 1 slave_install(unsigned primary address, 0 = the
meter picks), 2 slave_deinstall(integer 0), 3 capture(integer 0), 7
set_encryption_key(octet-string), 8 transfer_key(octet-string).

:func:`install` installs a device by its identification: already on a channel, it is
confirmed there; otherwise the identification (and manufacturer) is written to a free
channel and ``slave_install`` called, and the channel read back must hold the device.
With a :class:`HanKey` the device gets its key: ``transfer_key`` with the key encrypted as
the device expects (opaque here: encrypted with the device's default key by whoever holds
that key; DSMR 4: AES-128-CBC, zero IV), then ``set_encryption_key`` with the key itself
(only over a ciphered association), a ``capture`` so the meter reads the device, and the
encryption_key_status read back: ``encryptionKeyInUse`` when both ends hold the key.
:func:`deinstall` calls ``slave_deinstall`` and confirms the channel is empty.
The key is never logged, returned or kept: :class:`HanKey` hides it from ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass

from smmc_gateway import _core
from smmc_gateway.cosem.objects import CosemAttribute, MBusClient
from smmc_gateway.dlms.session import ClientSession, DataAccessError
from smmc_gateway.jsonvalue import JsonObject

MBUS_CLIENT = MBusClient.class_id
CHANNELS = (1, 2, 3, 4)


def _attrs(client: MBusClient) -> list[CosemAttribute]:
    """What a channel is read for, in :class:`HanChannel` order."""
    return [
        client.primary_address,
        client.identification_number,
        client.manufacturer_id,
        client.version,
        client.device_type,
        client.status,
        client.alarm,
        client.encryption_key_status,
    ]


_ATTRS = tuple(ref.attribute_id for ref in _attrs(MBusClient("0.1.24.1.0.255")))
_ABSENT = ("object-undefined", "object-unavailable", "object-class-inconsistent")

#: EN 13757-3 device types (medium) a HAN device may have.
DEVICE_TYPES: dict[int, str] = {
    0x00: "other",
    0x02: "electricity",
    0x03: "gas",
    0x04: "heat",
    0x06: "warmWater",
    0x07: "water",
    0x08: "heatCostAllocator",
    0x0A: "cooling",
    0x0C: "heatInlet",
    0x0D: "heatCooling",
    0x0E: "busSystemComponent",
    0x15: "hotWater",
    0x16: "coldWater",
    0x1A: "smokeDetector",
    0x1B: "roomSensor",
    0x1C: "gasDetector",
    0x20: "breaker",
    0x21: "valve",
    0x25: "customerUnit",
}
KEY_STATUS = (
    "noEncryptionKey",
    "encryptionKeySet",
    "encryptionKeyTransferred",
    "encryptionKeySetAndTransferred",
    "encryptionKeyInUse",
)
KEY_IN_USE = 4


def client_obis(channel: int) -> str:
    return f"0.{channel}.24.1.0.255"


class HanNotConfirmed(RuntimeError):
    """The meter did not do (or does not show) what was asked; the message says what."""


class HanKeyRefused(ValueError):
    """The key cannot be used (does not unwrap under the meter's master key)."""


def to_bcd(digits: str) -> int:
    """'12345678' -> 0x12345678 (the identification as the meter holds it)."""
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"identification {digits!r}: 8 decimal digits")
    return int(digits, 16)


def manufacturer_id(code: str) -> int:
    if len(code) != 3 or not all("A" <= c <= "Z" for c in code):
        raise ValueError(f"manufacturer {code!r}: three capital letters A..Z (EN 13757-3)")
    return sum((ord(c) - 64) << s for c, s in zip(code, (10, 5, 0), strict=True))


def manufacturer_code(value: int) -> str | None:
    letters = [(value >> s) & 0x1F for s in (10, 5, 0)]
    if not 0 < value <= 0x7FFF or not all(1 <= x <= 26 for x in letters):
        return None
    return "".join(chr(64 + x) for x in letters)


class HanKey:
    """A HAN device's new key (plain, for set_encryption_key) and, optionally, the same
    key encrypted as the device expects (for transfer_key). ``repr`` hides both."""

    __slots__ = ("_key", "_transfer")

    def __init__(self, key: bytes, transfer: bytes | None) -> None:
        if len(key) != 16:
            raise HanKeyRefused(f"the HAN key is {len(key)} bytes after unwrapping; 16 expected")
        self._key = key
        self._transfer = transfer

    @classmethod
    def unwrap(cls, kek: bytes, wrapped: bytes, transfer: bytes | None) -> HanKey:
        """The key from its RFC 3394 wrap under the meter's master key (KEK)."""
        try:
            return cls(_core.aes_key_unwrap(kek, wrapped), transfer)
        except _core.DlmsError:
            raise HanKeyRefused(
                "encryptionKey does not unwrap under this meter's master_key "
                "(RFC 3394 integrity check failed: wrapped for another meter, "
                "with another key, or corrupted)"
            ) from None

    def reveal(self) -> tuple[bytes, bytes | None]:
        return self._key, self._transfer

    def __repr__(self) -> str:
        return "HanKey('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class HanChannel:
    """One M-Bus client setup as read from the meter."""

    channel: int
    primary_address: int
    identification: int  # BCD; 0 = nothing installed
    manufacturer: int
    version: int
    device_type: int
    status: int
    alarm: int
    key_status: int | None  # None: the meter has no attribute 14 (class 72 version 0)

    @property
    def installed(self) -> bool:
        return self.identification != 0

    @property
    def serial(self) -> str:
        return f"{self.identification:08x}"

    @property
    def reachable(self) -> bool:
        """The last telegram came without a temporary or permanent error (status bits 3-4)."""
        return self.status & 0x18 == 0

    def describe(self) -> JsonObject:
        """The EndDevice item of a MasterDataLinkageConfig (JSON-ready)."""
        out: JsonObject = {
            "serialNumber": self.serial,
            "channel": self.channel,
            "mbusClient": client_obis(self.channel),
            "primaryAddress": self.primary_address,
            "manufacturer": manufacturer_code(self.manufacturer) or f"0x{self.manufacturer:04x}",
            "version": self.version,
            "deviceTypeCode": self.device_type,
            "deviceType": DEVICE_TYPES.get(self.device_type, "other"),
            "status": self.status,
            "alarm": self.alarm,
            "reachable": self.reachable,
        }
        if self.key_status is not None:
            out["encryptionKeyStatus"] = (
                KEY_STATUS[self.key_status]
                if 0 <= self.key_status < len(KEY_STATUS)
                else str(self.key_status)
            )
        return out


def _int(raw: bytes | DataAccessError) -> int | None:
    if isinstance(raw, DataAccessError):
        return None
    value = _core.decode(raw).get("value")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def read_channels(
    session: ClientSession, channels: tuple[int, ...] = CHANNELS
) -> list[HanChannel]:
    """Every channel the meter has (one GET with-list); a channel whose object the meter
    does not have is left out; [] for a meter without M-Bus."""
    refs = [ref for ch in channels for ref in _attrs(MBusClient(client_obis(ch)))]
    raw = await session.get_many(refs)
    out: list[HanChannel] = []
    for i, ch in enumerate(channels):
        part = raw[i * len(_ATTRS) : (i + 1) * len(_ATTRS)]
        first = part[0]
        if isinstance(first, DataAccessError) and first.result in _ABSENT:
            continue
        v = [_int(x) for x in part]
        if any(x is None for x in v[:7]):
            bad = next(x for x in part if isinstance(x, DataAccessError))
            raise HanNotConfirmed(f"M-Bus client {client_obis(ch)} could not be read: {bad}")
        a, ident, man, ver, dtype, status, alarm = (int(x or 0) for x in v[:7])
        out.append(HanChannel(ch, a, ident, man, ver, dtype, status, alarm, v[7]))
    return out


async def read_channel(session: ClientSession, channel: int) -> HanChannel:
    found = await read_channels(session, (channel,))
    if not found:
        raise HanNotConfirmed(f"the meter has no M-Bus client {client_obis(channel)}")
    return found[0]


@dataclass(frozen=True)
class InstallResult:
    channel: HanChannel
    steps: tuple[str, ...]


async def install(
    session: ClientSession,
    serial: str,
    *,
    channel: int | None = None,
    manufacturer: str | None = None,
    primary_address: int = 0,
    key: HanKey | None = None,
) -> InstallResult:
    """Install the device ``serial`` (8 digits) and, with ``key``, give it its key; the
    channel as read back. Raises HanNotConfirmed (nothing left half-done is hidden: the
    message says what was done)."""
    wanted = to_bcd(serial)
    steps: list[str] = []
    channels = await read_channels(session)
    if not channels:
        raise HanNotConfirmed(
            "the meter has no M-Bus client setup (0.b.24.1.0.255): it takes no HAN device"
        )
    held = next((c for c in channels if c.identification == wanted), None)
    if held is not None:
        if channel is not None and held.channel != channel:
            raise HanNotConfirmed(
                f"device {serial} is installed on channel {held.channel}, "
                f"not {channel}; de-install it first to move it"
            )
        steps.append(f"already installed on channel {held.channel}")
        target = held
    else:
        target = _free(channels, channel, serial)
        client = MBusClient(client_obis(target.channel))
        await session.set(
            *client.identification_number, {"type": "double-long-unsigned", "value": wanted}
        )
        if manufacturer is not None:
            await session.set(
                *client.manufacturer_id,
                {"type": "long-unsigned", "value": manufacturer_id(manufacturer)},
            )
        try:
            await session.action(
                *client.slave_install, {"type": "unsigned", "value": primary_address}
            )
        except DataAccessError as exc:
            # the identification written to select the device is taken back: the channel
            # must not read as holding a device it does not hold
            await session.set(
                *client.identification_number, {"type": "double-long-unsigned", "value": 0}
            )
            raise HanNotConfirmed(
                f"slave_install on channel {target.channel} refused "
                f"({exc.result}): no device {serial} answers on the "
                "meter's M-Bus"
                if exc.result == "temporary-failure"
                else f"slave_install on channel {target.channel} refused ({exc.result})"
            ) from exc
        steps.append(f"installed on channel {target.channel} (slave_install)")
        target = await read_channel(session, target.channel)
        if target.identification != wanted:
            raise HanNotConfirmed(
                f"channel {target.channel} reads identification "
                f"{target.serial} after slave_install, not {serial}"
            )
    if key is not None:
        target = await _give_key(session, target, key, steps)
    return InstallResult(target, tuple(steps))


def _free(channels: list[HanChannel], channel: int | None, serial: str) -> HanChannel:
    if channel is not None:
        found = next((c for c in channels if c.channel == channel), None)
        if found is None:
            raise HanNotConfirmed(
                f"the meter has no M-Bus channel {channel} (it has {[c.channel for c in channels]})"
            )
        if found.installed:
            raise HanNotConfirmed(
                f"channel {channel} holds device {found.serial}; "
                f"de-install it before installing {serial} there"
            )
        return found
    free = next((c for c in channels if not c.installed), None)
    if free is None:
        raise HanNotConfirmed(
            f"every M-Bus channel of the meter holds a device "
            f"({', '.join(c.serial for c in channels)}); de-install one "
            f"before installing {serial}"
        )
    return free


async def _give_key(
    session: ClientSession, target: HanChannel, key: HanKey, steps: list[str]
) -> HanChannel:
    if not session.ciphered:
        raise HanNotConfirmed(
            "the HAN key is sent only over a ciphered association (the "
            "meter's security level is not HLS-GMAC): not sent"
        )
    plain, transfer = key.reveal()
    client = MBusClient(client_obis(target.channel))
    try:
        if transfer is not None:
            await session.action(
                *client.transfer_key, {"type": "octet-string", "value": transfer.hex()}
            )
            steps.append("key transferred to the device (transfer_key)")
        await session.action(
            *client.set_encryption_key, {"type": "octet-string", "value": plain.hex()}
        )
        steps.append("key set in the meter (set_encryption_key)")
        await session.action(*client.capture, {"type": "integer", "value": 0})
        steps.append("device read (capture)")
    except DataAccessError as exc:
        raise HanNotConfirmed(
            f"{'; '.join(steps) or 'nothing done'}; then the meter refused {exc}"
        ) from exc
    after = await read_channel(session, target.channel)
    wanted = KEY_IN_USE if transfer is not None else 1
    if (
        after.key_status is None
        or after.key_status < wanted
        or (transfer is not None and after.key_status != KEY_IN_USE)
    ):
        shown = after.describe().get("encryptionKeyStatus", "absent")
        raise HanNotConfirmed(
            f"{'; '.join(steps)}; but encryption_key_status reads {shown} "
            f"(status byte 0x{after.status:02x}): the device and the meter "
            "do not hold the same key"
        )
    return after


async def deinstall(
    session: ClientSession, serial: str | None = None, channel: int | None = None
) -> HanChannel:
    """De-install the device ``serial`` (or whatever ``channel`` holds); the channel as it
    was before (the device's last identity)."""
    channels = await read_channels(session)
    if serial is not None:
        wanted = to_bcd(serial)
        found = next((c for c in channels if c.identification == wanted), None)
        if found is None:
            raise HanNotConfirmed(
                f"device {serial} is on no channel of the meter "
                f"(channels hold {[c.serial for c in channels if c.installed]})"
            )
    else:
        found = next((c for c in channels if c.channel == channel), None)
        if found is None or not found.installed:
            raise HanNotConfirmed(f"channel {channel} holds no device")
    try:
        await session.action(
            *MBusClient(client_obis(found.channel)).slave_deinstall, {"type": "integer", "value": 0}
        )
    except DataAccessError as exc:
        raise HanNotConfirmed(
            f"slave_deinstall on channel {found.channel} refused ({exc.result})"
        ) from exc
    after = await read_channel(session, found.channel)
    if after.installed:
        raise HanNotConfirmed(
            f"channel {found.channel} still reads identification "
            f"{after.serial} after slave_deinstall"
        )
    return found
