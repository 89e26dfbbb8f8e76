"""A deterministic household load model, one per meter seed.

Power is piecewise constant over 15-minute slots of real (UTC) time: a daily
curve (night base load, morning and evening peaks) in the meter's local time,
scaled per meter and varied per slot by a hash of (seed, slot). Seeds divisible
by 3 have rooftop solar, so they export around noon. The same seed and slot
always give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SLOT_SECONDS = 900
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit_noise(seed: int, slot: int, channel: int) -> float:
    """A deterministic number in [-1, 1) for (seed, slot, channel)."""
    h = _splitmix64((seed & _MASK) ^ _splitmix64((slot * 8 + channel) & _MASK))
    return (h >> 11) / float(1 << 52) - 1.0


@dataclass(frozen=True)
class LoadSample:
    """The flows during one slot, in W / var / V."""

    import_w: float
    export_w: float
    import_var: float
    export_var: float
    voltage_v: float


def slot_of(instant: datetime) -> int:
    """The 15-minute slot index of a UTC instant."""
    return int((instant - _EPOCH).total_seconds() // SLOT_SECONDS)


def slot_start(slot: int) -> datetime:
    return _EPOCH + timedelta(seconds=slot * SLOT_SECONDS)


def _daily_curve(hour: float) -> float:
    """Household consumption in W at a local hour of day (no noise)."""
    night = 250.0
    morning = 1100.0 * math.exp(-(((hour - 7.5) / 1.2) ** 2))
    midday = 450.0 * math.exp(-(((hour - 13.0) / 2.0) ** 2))
    evening = 2000.0 * math.exp(-(((hour - 20.0) / 1.8) ** 2))
    return night + morning + midday + evening


class LoadModel:
    """The load of one meter; ``deviation`` is the meter's time zone in
    minutes from local time to UTC (local = UTC - deviation)."""

    def __init__(self, seed: int, deviation: int = 0) -> None:
        self.seed = seed
        self.deviation = deviation
        self.scale = 0.6 + 0.8 * (unit_noise(seed, 0, 7) + 1.0) / 2.0
        self.has_solar = seed % 3 == 0
        self.solar_peak_w = 2500.0 + 1000.0 * unit_noise(seed, 1, 7)

    def sample(self, slot: int) -> LoadSample:
        local = slot_start(slot) - timedelta(minutes=self.deviation)
        hour = local.hour + local.minute / 60.0 + SLOT_SECONDS / 7200.0
        demand = _daily_curve(hour) * self.scale * (1.0 + 0.35 * unit_noise(self.seed, slot, 0))
        solar = 0.0
        if self.has_solar and 7.0 <= hour <= 19.0:
            cloud = 0.75 + 0.25 * unit_noise(self.seed, slot, 1)
            solar = self.solar_peak_w * math.sin(math.pi * (hour - 7.0) / 12.0) * cloud
        net = demand - solar
        imp, exp = (net, 0.0) if net >= 0 else (0.0, -net)
        voltage = 230.0 + 3.0 * unit_noise(self.seed, slot, 2) - imp / 2000.0
        return LoadSample(
            import_w=imp,
            export_w=exp,
            import_var=imp * (0.25 + 0.05 * unit_noise(self.seed, slot, 3)),
            export_var=exp * 0.02,
            voltage_v=voltage,
        )

    def initial_energy_wh(self) -> tuple[float, float, float, float]:
        """Register readings at the start of the simulated history."""
        base = 2_000_000.0 + 3_000_000.0 * (unit_noise(self.seed, 2, 7) + 1.0)
        export = 300_000.0 * (unit_noise(self.seed, 3, 7) + 1.0) if self.has_solar else 0.0
        return (round(base), round(export), round(base * 0.25), round(export * 0.02))
