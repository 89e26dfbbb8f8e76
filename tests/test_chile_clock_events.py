"""Event-log rows and the billing row of a meter that keeps Chile's local time without a
deviation (0x8000): stamped in UTC by the model's clock conventions, across the April
repeated hour, and asked for by a range in the meter's local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chile_clock_support import APRIL_BACK, FakeTime, chile_meter, model, session_on
from smmc_gateway.ops.config_clock import ClockConfig
from smmc_gateway.usecases.events import LogMark, _rows_after, read_log
from smmc_gateway.usecases.meter_clock import ClockConventionError, MeterClock

CHILE = ClockConfig(timezone="America/Santiago")


def test_naive_rows_of_the_repeated_hour_keep_their_order_in_utc() -> None:
    # 23:30 local twice on 4 April: first in summer time (-03), then in standard (-04)
    first = APRIL_BACK - timedelta(minutes=30)  # 02:30 UTC = 23:30 -03
    second = APRIL_BACK + timedelta(minutes=30)  # 03:30 UTC = 23:30 -04
    local = datetime(2026, 4, 4, 23, 30)
    rows = [(local, 1), (local + timedelta(minutes=10), 2), (local, 3)]
    # the third row's local time is before the second's: the clock went back in between
    fresh, mark = _rows_after(rows, LogMark(), MeterClock(CHILE, "chile"))
    assert [(t, c) for t, c in fresh] == [
        (first, 1),
        (first + timedelta(minutes=10), 2),
        (second, 3),
    ]
    assert mark.stamp == second


def test_a_naive_stamp_without_a_time_zone_is_refused_by_name() -> None:
    with pytest.raises(ClockConventionError, match=r"\[models.m.clock\] timezone"):
        _rows_after([(datetime(2026, 1, 1, 12), 1)], LogMark(), MeterClock(ClockConfig(), "m"))
    utc = MeterClock(ClockConfig(deviation_unspecified="utc"), "m")
    fresh, _ = _rows_after([(datetime(2026, 1, 1, 12), 1)], LogMark(), utc)
    assert fresh[0][0] == datetime(2026, 1, 1, 12, tzinfo=UTC)


async def test_the_event_log_poll_of_a_meter_without_deviation() -> None:
    now = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # winter: 12:00 -04
    time = FakeTime(now)
    meter = chile_meter(now - timedelta(hours=3), deviation_not_specified=True)
    at = now - timedelta(minutes=20)
    meter.log_event("standard", 1, at)
    async with session_on(meter, time) as (s, _link):
        events, mark = await read_log(
            s, "standard", "0.0.99.98.0.255", LogMark(), now, first_read_s=3600, model=model(CHILE)
        )
    assert [(e.code, e.at) for e in events][-1] == (1, at.replace(microsecond=0))
    assert mark.stamp == at.replace(microsecond=0)
