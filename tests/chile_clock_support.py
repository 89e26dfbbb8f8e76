"""Test helpers for Chile's clock: a simulated meter on America/Santiago time, served
in-process to a real :class:`ClientSession` at a fake instant (no sockets, no sleeps).

``MemoryLink`` is a :class:`Transport` whose far end is the simulator's DLMS server
(``DlmsServer``) running at ``clock.now``; every APDU the session sends is answered
at once. ``FakeTime`` is both that clock and the gateway's :class:`TimeSource`
(synchronised), so the meter and the gateway agree on "now" to the microsecond.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from smmc_gateway.dlms.errors import MeterTimeout
from smmc_gateway.dlms.session import ClientSession, SessionSettings
from smmc_gateway.dlms.stream import Transport, WireCounters
from smmc_gateway.ops.config_clock import ClockConfig
from smmc_gateway.ops.config_model import DEFAULT_OBIS, ModelConfig
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.acse import CipherCounters
from smmc_gateway.simulator.server import DlmsServer

SANTIAGO = ZoneInfo("America/Santiago")
# the yearly transitions of 2026 (verified with zoneinfo in test_chile_clock.py):
APRIL_BACK = datetime(2026, 4, 5, 3, 0, tzinfo=UTC)  # Sat 4 Apr 24:00 -03 -> 23:00 -04
SEPTEMBER_FORWARD = datetime(2026, 9, 6, 4, 0, tzinfo=UTC)  # Sat 5 Sep 24:00 -04 -> 01:00 -03
Q = timedelta(minutes=15)
MANAGEMENT = 1


@dataclass
class FakeTime:
    """The meter's real time and the gateway's clock: moves only when told."""

    at: datetime
    synced: bool = True
    log: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        return self.at

    def synchronised(self) -> bool:
        return self.synced


class MemoryLink(Transport):
    """A transport whose meter is a DlmsServer in this process; records the APDUs sent."""

    def __init__(self, meter: SimulatedMeter, time: FakeTime, client: int = MANAGEMENT) -> None:
        self.counters = WireCounters()
        self.description = "memory"
        self.server = DlmsServer(meter, CipherCounters(), time.now)
        self.client = client
        self.queue: list[bytes] = []
        self.sent: list[bytes] = []

    async def open(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        return None

    async def close(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        return None

    async def send_apdu(self, apdu: bytes) -> None:
        self.sent.append(apdu)
        self.queue.extend(self.server.handle(self.client, apdu))

    async def receive_apdu(self, timeout: float) -> bytes:  # noqa: ASYNC109
        if self.queue:
            return self.queue.pop(0)
        raise MeterTimeout("an APDU from the in-process meter", timeout)


def chile_meter(now: datetime, *, history_days: int = 2, **options: object) -> SimulatedMeter:
    """A meter on America/Santiago time, no drift, management client without security."""
    opts = MeterOptions(
        history_days=history_days,
        timezone="America/Santiago",
        drift_ppm=0.0,
        management_auth="none",
        **options,
    )  # type: ignore[arg-type]
    return SimulatedMeter(opts, now=now)


@contextlib.asynccontextmanager
async def session_on(
    meter: SimulatedMeter, time: FakeTime
) -> AsyncIterator[tuple[ClientSession, MemoryLink]]:
    link = MemoryLink(meter, time)
    settings = SessionSettings(client_sap=MANAGEMENT, response_timeout=1.0)
    async with ClientSession(link, settings, meter_id="chile") as s:
        yield s, link


def model(clock: ClockConfig | None = None, name: str = "chile") -> ModelConfig:
    return ModelConfig(
        name=name,
        obis=dict(DEFAULT_OBIS),
        capture_period_s=900,
        registers=(),
        clock=clock or ClockConfig(),
    )


def cosem(local: datetime, deviation: int, status: int) -> bytes:
    """A 12-byte COSEM date-time of naive local fields (deviation -0x8000 = unspecified)."""
    return struct.pack(
        ">HBBBBBBBhB",
        local.year,
        local.month,
        local.day,
        local.isoweekday(),
        local.hour,
        local.minute,
        local.second,
        0,
        deviation,
        status,
    )


def profile_buffer(
    instants: list[datetime],
    *,
    deviation: bool = True,
    compact: bool = False,
    tz: ZoneInfo = SANTIAGO,
    standard_only: bool = False,
) -> bytes:
    """An IDIS-style load profile buffer (clock, status, A+) of the given UTC instants as a
    meter on ``tz`` stamps them; ``compact``: only the first entry carries its clock
    (null-data after it, the capture period derives the rest); ``standard_only``: the
    meter keeps standard time all year (UTC-4 for Chile)."""
    out = b"\x01" + bytes([len(instants)])
    for i, at in enumerate(instants):
        local = at.astimezone(tz)
        dst = bool(local.dst()) and not standard_only
        offset = local.utcoffset() - (local.dst() if standard_only else timedelta())  # type: ignore[operator]
        naive = (at + offset).replace(tzinfo=None)
        dev = -int(offset.total_seconds() // 60) if deviation else -0x8000
        clock = b"\x00" if compact and i else b"\x09\x0c" + cosem(naive, dev, 0x80 if dst else 0)
        out += b"\x02\x03" + clock + b"\x11" + bytes([0x08 if dst else 0])
        out += b"\x06" + (1000 + i).to_bytes(4, "big")
    return out


def every_quarter(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], start
    while t <= end:
        out.append(t)
        t += Q
    return out
