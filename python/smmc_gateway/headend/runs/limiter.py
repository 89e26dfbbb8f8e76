"""Use cases 14 and 8 (demand response): the limiter's threshold and its emergency profile."""

from __future__ import annotations

from datetime import datetime

from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.runs.base import EV_EMERGENCY_SET, EV_LIMIT_SET, Runner, event
from smmc_gateway.usecases import limiter as limiter_uc


class LimiterRuns(Runner):
    """Write the limiter, read it back, publish what it holds now."""

    async def limit(
        self,
        meter_id: str,
        threshold_w: int | None,
        min_over_s: int | None,
        min_under_s: int | None,
        off: bool = False,
    ) -> limiter_uc.LimiterState:
        head = self.head
        async with self.session(meter_id, Priority.COMMAND) as s:
            state = await limiter_uc.set_limit(
                s,
                head.obis(meter_id, "limiter"),
                threshold_w=threshold_w,
                min_over_s=min_over_s,
                min_under_s=min_under_s,
                off=off,
                model=head.model_of(meter_id),
            )
        await self.publish_events(
            meter_id, event(EV_LIMIT_SET, "limitOff" if off else "limit", state.describe())
        )
        return state

    async def emergency(
        self, meter_id: str, profile_id: int, start: datetime, duration_s: int, threshold_w: int
    ) -> limiter_uc.EmergencyState:
        head = self.head
        async with self.session(meter_id, Priority.COMMAND) as s:
            state = await limiter_uc.schedule_emergency(
                s,
                head.obis(meter_id, "limiter"),
                profile_id=profile_id,
                start=start,
                duration_s=duration_s,
                threshold_w=threshold_w,
                clock_obis=head.obis(meter_id, "clock"),
                model=head.model_of(meter_id),
            )
        await self.publish_events(
            meter_id, event(EV_EMERGENCY_SET, "demandResponse", state.describe())
        )
        return state
