"""Use case 13 against the simulator: measure, shift_time or SET, refuse when unsynchronised."""

from __future__ import annotations

import pytest
from smmc_gateway.usecases.clock import (
    ClockNotSynchronised,
    FixedTimeSource,
    SystemTimeSource,
    measure_deviation,
    synchronise,
)
from test_usecase_support import session_to

from tests.support_sim import FleetSpec, running_fleet

SYNCED = FixedTimeSource(synced=True)


@pytest.mark.parametrize(
    ("offset", "method"),
    [(40.0, "shift_time"), (-300.0, "shift_time"), (2000.0, "set"), (-5000.0, "set")],
)
async def test_deviation_is_corrected_by_the_right_method(offset: float, method: str) -> None:
    async with (
        running_fleet(FleetSpec(meters=1, time_offset_s=offset)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        r = await synchronise(s, "m", SYNCED, tolerance_s=2, shift_limit_s=900)
        assert r.method == method
        assert abs(r.before_s - offset) < 1.5
        assert r.after_s is not None and abs(r.after_s) < 1.5
        dev, rtt, _ = await measure_deviation(s, SYNCED, "0.0.1.0.0.255")
        assert abs(dev) < 1.5 and rtt < 1.0


async def test_small_deviation_is_left_alone() -> None:
    async with (
        running_fleet(FleetSpec(meters=1, time_offset_s=0.5)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        r = await synchronise(s, "m", SYNCED, tolerance_s=2)
        assert r.method == "none" and r.after_s is None


async def test_refuses_to_set_meters_from_an_unsynchronised_clock() -> None:
    async with (
        running_fleet(FleetSpec(meters=1, time_offset_s=120)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        with pytest.raises(ClockNotSynchronised, match="not synchronised"):
            await synchronise(s, "m", FixedTimeSource(synced=False))
        dev, _, _ = await measure_deviation(s, SYNCED, "0.0.1.0.0.255")
        assert abs(dev - 120) < 1.5  # untouched


def test_system_time_source_answers_without_raising() -> None:
    src = SystemTimeSource()
    assert src.synchronised() in (True, False)
    assert src.how in ("timedatectl", "adjtimex")
