"""Use cases 14 and 8 (DR part) against the simulator: the Limiter set, read back, tripping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from smmc_gateway.usecases.events import LogMark, read_log
from smmc_gateway.usecases.limiter import (
    LimiterNotConfirmed,
    read_emergency,
    read_state,
    schedule_emergency,
    set_limit,
)
from test_usecase_support import session_to
from uplink_helpers import wait_until

from tests.support_sim import FleetSpec, running_fleet

LIMITER = "0.0.17.0.0.255"


async def test_limit_is_written_and_confirmed_and_the_meter_trips_against_its_load() -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim, \
            session_to(sim.ports[0], sim.info[0]) as s:
        before = await read_state(s, LIMITER)
        assert before.threshold_normal == 10_000
        state = await set_limit(s, LIMITER, threshold_w=1, min_over_s=1, min_under_s=5)
        assert (state.threshold_normal, state.min_over_s, state.min_under_s) == (1, 1, 5)
        assert state.threshold_active == 1
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await wait_until(lambda: meter.limiter.tripped, 10)
        events, mark = await read_log(s, "event_log_disconnect", "0.0.99.98.2.255", LogMark(),
                                      datetime.now(UTC), first_read_s=600)
        types = [e.type_ref for e in events]
        assert "smmc.meter.limiterThresholdChanged" in types
        assert "smmc.meter.limiterThresholdExceeded" in types
        assert mark.stamp is not None
        again, _ = await read_log(s, "event_log_disconnect", "0.0.99.98.2.255", mark,
                                  datetime.now(UTC))
        assert again == []  # nothing is published twice


async def test_off_writes_the_largest_threshold() -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim, \
            session_to(sim.ports[0], sim.info[0]) as s:
        state = await set_limit(s, LIMITER, threshold_w=None, off=True)
        assert state.threshold_normal == 0xFFFFFFFF
        assert state.min_over_s == 60  # untouched


async def test_a_meter_that_keeps_other_values_is_not_confirmed() -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim, \
            session_to(sim.ports[0], sim.info[0]) as s:
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        original = meter.limiter.write

        def stubborn(attribute_id: int, value: object, now: datetime) -> str:
            return "success"  # a meter that acknowledges but ignores the write

        meter.limiter.write = stubborn  # type: ignore[method-assign,assignment]
        try:
            with pytest.raises(LimiterNotConfirmed, match="attribute 4: wrote 2500"):
                await set_limit(s, LIMITER, threshold_w=2500)
        finally:
            meter.limiter.write = original  # type: ignore[method-assign]


async def test_emergency_profile_is_confirmed_and_used_in_its_window() -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim, \
            session_to(sim.ports[0], sim.info[0]) as s:
        start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        state = await schedule_emergency(s, LIMITER, profile_id=7, start=start,
                                         duration_s=3600, threshold_w=1234)
        assert state.profile_id == 7 and state.group_ids == (7,)
        assert state.activation == start and state.duration_s == 3600
        assert state.threshold_emergency == 1234
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await wait_until(lambda: meter.limiter.emergency_active(datetime.now(UTC)), 10)
        assert (await read_state(s, LIMITER)).threshold_active == 1234
        assert (await read_emergency(s, LIMITER)).active
