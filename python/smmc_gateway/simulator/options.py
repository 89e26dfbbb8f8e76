"""How a simulated meter is configured, and what it pushes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.simulator.han import HanPlan
from smmc_gateway.simulator.objects.association import HlsReply
from smmc_gateway.simulator.objects.image import Verifier
from smmc_gateway.simulator.objects.security import SecurityCredentials, Unwrap


def check_timezone(name: str) -> ZoneInfo:
    """The tz database zone ``name``; ValueError naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"timezone {name!r} is not a zone of the tz database (an IANA name such as "
            f"'America/Santiago'): {exc}"
        ) from None


@dataclass
class MeterOptions:
    """Everything that makes one simulated meter differ from another.

    ``time_zone`` is the Blue Book deviation in minutes from local time to UTC
    (Chile standard time UTC-4 is +240). ``timezone`` (an IANA name such as
    "America/Santiago") makes the clock follow that zone of the tz database,
    summer time included; ``time_zone`` is then the zone's standard deviation.
    ``deviation_not_specified`` makes the meter write 0x8000 in the deviation of
    its date-times (clock, profile stamps), as some vendors' meters do.
    ``clock_offset_seconds`` is how far the meter clock is ahead of real time at
    creation; ``drift_ppm`` how fast it runs (+ = fast). ``control_mode`` is the
    disconnect control mode (0..6).
    ``management_auth`` is "none", "lls" or "hls-gmac"; the public client
    always uses "none". Keys and passwords live in ``credentials``.
    """

    serial: str = "SMMC00000001"
    seed: int = 1
    history_days: int = 10
    drift_ppm: float = 0.0
    clock_offset_seconds: float = 0.0
    time_zone: int = 0
    timezone: str | None = None
    deviation_not_specified: bool = False
    firmware_version: str = "SMMC-SIM-1.0.0"
    control_mode: int = 5
    limiter_threshold_w: int = 10_000
    limiter_min_over_s: int = 60
    limiter_min_under_s: int = 60
    public_client: int = 16
    management_client: int = 1
    management_auth: str = "hls-gmac"
    credentials: SecurityCredentials = field(default_factory=SecurityCredentials)
    push_destination: str = "127.0.0.1:4059"
    image_block_size: int = 192
    long_power_failure_s: int = 180
    key_unwrap: Unwrap | None = None
    image_verifier: Verifier | None = None
    hls_reply: HlsReply | None = None
    han_devices: tuple[HanPlan, ...] = ()
    """HAN (M-Bus) devices that join and leave the meter's bus on their own (use case 4)."""
    mbus_auto_install: bool = True
    """A device that joins is installed by the meter on the first free channel."""
    cip_period_s: float = 10.0
    """Consumer information push period (what feeds the in-home display)."""
    opt_out_after_s: float | None = None
    """The customer opts out (from ``opt_out_source``) this long after creation."""
    opt_out_source: str = "ihd"
    model: ModelConfig | None = None
    """A device model to play (simulator/model_play.py): its alarm registers, bit map and
    alarm push layout, event codes, limiter scaler/unit and FLAG id; None: the
    simulator's own conventions (the shipped model smmc-sim)."""
    referencing: str = "ln"
    """``ln`` (logical names) or ``sn`` (short names; :mod:`smmc_gateway.simulator.sn`)."""

    def validate(self) -> None:
        if not 0 <= self.control_mode <= 6:
            raise ValueError(f"control_mode {self.control_mode}, allowed 0..6")
        if not -10_000.0 <= self.drift_ppm <= 10_000.0:
            raise ValueError(f"drift_ppm {self.drift_ppm}, allowed -10000..10000")
        if not -720 <= self.time_zone <= 720:
            raise ValueError(f"time_zone {self.time_zone} minutes, allowed -720..720")
        if self.timezone is not None:
            check_timezone(self.timezone)
        if self.history_days < 0:
            raise ValueError(f"history_days {self.history_days}, must be >= 0")
        if self.public_client == self.management_client:
            raise ValueError("public_client and management_client must differ")
        if not 0 < len(self.serial.encode()) <= 16:
            raise ValueError(f"serial {self.serial!r}: 1..16 ASCII characters")
        if not 0.1 <= self.cip_period_s <= 86400:
            raise ValueError(f"cip_period_s {self.cip_period_s}, allowed 0.1..86400")
        if self.referencing not in ("ln", "sn"):
            raise ValueError(f"referencing {self.referencing!r}, allowed ln, sn")
        if self.opt_out_source not in ("ihd", "local"):
            raise ValueError(f"opt_out_source {self.opt_out_source!r}, allowed ihd, local")
        ids = [p.device.identification for p in self.han_devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"han_devices: identification numbers repeat ({ids})")


@dataclass(frozen=True)
class PushMessage:
    """A data-notification body the meter wants sent; the transport wraps it
    (DataNotification with the meter's invoke id and date-time) and sends it."""

    setup: Obis
    at: datetime  # real UTC instant
    reason: str  # "method" | "power-down" | "power-up" | "limiter" | "tamper"
    destination: str
    body: TypedValue
