"""Use case 13 — remote time synchronisation of a meter's Clock (class 8).

The deviation is measured by reading the clock time (attribute 2) and taking the
midpoint of the request's round trip as the instant the meter sampled its clock:
``deviation = meter_time - (t_sent + rtt / 2)``. At or below ``tolerance_s`` the
clock is left alone; up to ``shift_limit_s`` (at most 900 s, the Blue Book limit of
method 6 shift_time) the clock is shifted by ``-deviation`` (whole seconds);
beyond, attribute 2 is SET to the true time (keeping the meter's deviation field).
The deviation is measured again afterwards; both go into the result (an event).

After an adjustment the meter's own record of it is read back: "time of the last clock
synchronisation" (Data, class 1, 0.0.96.2.12.255, a date-time), :func:`read_last_sync`.
A collection can measure the deviation (:func:`measure_deviation`, one GET) to detect a
drifting clock between the scheduled syncs (aspect 13's "drift detected" trigger; the
head-end decides what to do).

The meter's date-times are read, and the date-time a SET writes is built, under the
model's clock conventions (``conventions``, ``[models.NAME.clock]``,
:class:`~smmc_gateway.usecases.meter_clock.MeterClock`): for a model with a time zone
the SET writes the local time of that zone with the zone's deviation at the instant
written (Blue Book 4.1.6.1: minutes from local time to UTC, so Chile standard time
UTC-4 is +240 and summer time UTC-3 is +180) and the DST clock status bit (0x80) set
exactly in summer time, so a sync on either side of a transition writes the right
offset; a meter keeping standard time all year gets standard time, its standard
deviation and the bit clear; without a zone the meter's own deviation and DST bit are
kept. A meter whose deviation is not specified and whose model has no zone is not set
(:class:`~smmc_gateway.usecases.meter_clock.ClockConventionError`). A meter that
reports its own clock invalid or doubtful (trusted status bits) is SET, never shifted.

A meter is never set from a concentrator clock that is not itself synchronised:
:class:`SystemTimeSource` answers that from ``timedatectl`` or, failing that,
``adjtimex`` status (``STA_UNSYNC``); tests inject their own source.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from smmc_gateway.cosem.datetime import CosemDateTime, DateTimeError, unpack_datetime
from smmc_gateway.cosem.objects import Clock, Data
from smmc_gateway.dlms.session import ClientSession, ProtocolError
from smmc_gateway.ops.config_clock import ClockConfig
from smmc_gateway.usecases.meter_clock import MeterClock

MAX_SHIFT_S = 900
CLOCK_CLASS = Clock.class_id
DATA_CLASS = Data.class_id


class ClockNotSynchronised(RuntimeError):
    """The concentrator's own clock is not synchronised: meters are not set from it."""


class TimeSource(Protocol):
    def now(self) -> datetime: ...

    def synchronised(self) -> bool: ...


class SystemTimeSource:
    """The host clock; synchronised per ``timedatectl`` (NTPSynchronized) or adjtimex."""

    def __init__(self, cache_s: float = 30.0) -> None:
        self.cache_s = cache_s
        self._checked = 0.0
        self._value = False
        self.how = "unknown"

    def now(self) -> datetime:
        return datetime.now(UTC)

    def synchronised(self) -> bool:
        mono = time.monotonic()
        if self._checked and mono - self._checked < self.cache_s:
            return self._value
        self._value, self.how = _probe_sync()
        self._checked = mono
        return self._value


def _probe_sync() -> tuple[bool, str]:
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
            return out.stdout.strip() == "yes", "timedatectl"
    except (OSError, subprocess.SubprocessError):
        pass
    return _adjtimex_synced(), "adjtimex"


class _Timex(ctypes.Structure):
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("pad", ctypes.c_int * 11),
    ]


TIME_ERROR = 5
STA_UNSYNC = 0x0040


def _adjtimex_synced() -> bool:
    """adjtimex(2) read-only: synchronised when the state is not TIME_ERROR and
    STA_UNSYNC is clear."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return False
    return state != TIME_ERROR and state >= 0 and not (tx.status & STA_UNSYNC)


@dataclass(frozen=True)
class FixedTimeSource:
    """For tests and the demo: the host clock with a given synchronised flag."""

    synced: bool = True
    offset_s: float = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

    def synchronised(self) -> bool:
        return self.synced


@dataclass(frozen=True)
class ClockResult:
    """Deviations are meter time minus true time, seconds."""

    meter_id: str
    before_s: float
    after_s: float | None
    method: str  # "none" | "shift_time" | "set"
    rtt_s: float
    tolerance_s: float = 2.0

    @property
    def confirmed(self) -> bool:
        """The correction took: read back within the tolerance (or nothing was needed).
        A meter may accept shift_time or the SET and leave its clock where it was."""
        return self.after_s is None or abs(self.after_s) <= self.tolerance_s


def _meter_clock(conventions: ClockConfig | MeterClock | None, model: str) -> MeterClock:
    if isinstance(conventions, MeterClock):
        return conventions
    return MeterClock(conventions, model)


async def _read_clock(
    session: ClientSession, source: TimeSource, obis: str, clock: MeterClock
) -> tuple[float, float, CosemDateTime]:
    """(deviation_s, round trip s, the date-time fields the meter sent)."""
    t0 = time.monotonic()
    before = source.now()
    raw = await session.get(*Clock(obis).time)
    rtt = time.monotonic() - t0
    try:
        fields = unpack_datetime(bytes.fromhex(str(raw.get("value"))))
    except (DateTimeError, ValueError) as exc:
        raise ProtocolError(
            f"clock {obis}: {raw.get('value')!r} is not a date-time: {exc}"
        ) from None
    if fields.to_datetime() is None:
        raise ProtocolError(f"clock {obis}: the meter's time {raw['value']} is not specified")
    meter_time = clock.to_utc(fields)
    truth = before + timedelta(seconds=rtt / 2)
    return (meter_time - truth).total_seconds(), rtt, fields


async def measure_deviation(
    session: ClientSession,
    source: TimeSource,
    obis: str,
    *,
    conventions: ClockConfig | MeterClock | None = None,
    model: str = "",
) -> tuple[float, float, int | None]:
    """(deviation_s, round trip s, the meter's deviation field in minutes or None)."""
    clock = _meter_clock(conventions, model)
    deviation, rtt, fields = await _read_clock(session, source, obis, clock)
    return deviation, rtt, fields.deviation


async def synchronise(
    session: ClientSession,
    meter_id: str,
    source: TimeSource,
    *,
    obis: str = "0.0.1.0.0.255",
    tolerance_s: float = 2.0,
    shift_limit_s: float = MAX_SHIFT_S,
    force: bool = False,
    conventions: ClockConfig | MeterClock | None = None,
    model: str = "",
) -> ClockResult:
    """Measure, correct when needed (refusing without a synchronised host clock), re-measure.
    ``conventions``: the model's clock conventions (what the meter's date-times mean and
    what a SET writes); default: trust the meter's deviation."""
    clock = _meter_clock(conventions, model)
    deviation, rtt, fields = await _read_clock(session, source, obis, clock)
    doubtful = clock.clock_doubtful(fields)
    if abs(deviation) <= tolerance_s and not force and not doubtful:
        return ClockResult(meter_id, deviation, None, "none", rtt, tolerance_s)
    if not source.synchronised():
        raise ClockNotSynchronised(
            "the concentrator clock is not synchronised (NTP); meter clocks are not set from it"
        )
    shift = -round(deviation)
    if shift != 0 and abs(shift) <= min(shift_limit_s, MAX_SHIFT_S) and not doubtful:
        await session.action(*Clock(obis).shift_time, {"type": "long", "value": shift})
        method = "shift_time"
    else:
        target = source.now() + timedelta(seconds=rtt / 2)
        data = clock.clock_bytes(target, fields)
        await session.set(*Clock(obis).time, {"type": "octet-string", "value": data.hex()})
        method = "set"
    after, rtt2, _ = await _read_clock(session, source, obis, clock)
    return ClockResult(meter_id, deviation, after, method, max(rtt, rtt2), tolerance_s)


async def read_last_sync(
    session: ClientSession,
    obis: str = "0.0.96.2.12.255",
    *,
    conventions: ClockConfig | MeterClock | None = None,
    model: str = "",
) -> datetime:
    """When the meter says its clock was last synchronised (UTC). A meter without the
    object answers a DataAccessError; a value that is not a date-time is a ProtocolError."""
    raw = await session.get(*Data(obis).value)
    if raw.get("type") not in ("octet-string", "date-time") or not isinstance(
        raw.get("value"), str
    ):
        raise ProtocolError(
            f"last clock synchronisation {obis}: a {raw.get('type')}, not a date-time"
        )
    try:
        fields = unpack_datetime(bytes.fromhex(raw["value"]))
    except ValueError as exc:
        raise ProtocolError(f"last clock synchronisation {obis}: {exc}") from None
    if fields.to_datetime() is None:
        raise ProtocolError(f"last clock synchronisation {obis}: {raw['value']} is not specified")
    return _meter_clock(conventions, model).to_utc(fields)


def describe(result: ClockResult) -> str:
    after = "n/a" if result.after_s is None else f"{result.after_s:+.3f}s"
    return (
        f"deviation before {result.before_s:+.3f}s, after {after}, method {result.method}, "
        f"round trip {result.rtt_s * 1000:.1f}ms"
    )
