"""Chile's clock (issue 10 item 7), the simulator side: a meter on America/Santiago
time stamps its load profile in local time with the right deviation and DST status
bit over both yearly transitions, answers clock reads and writes accordingly; and the
facts the tests rely on, checked against the tz database."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest
from chile_clock_support import APRIL_BACK, SANTIAGO, SEPTEMBER_FORWARD, Q, chile_meter, cosem
from smmc_gateway.cosem.datetime import unpack_datetime
from smmc_gateway.cosem.values import as_bytes, boolean, octet_string
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator import cli as sim_cli
from smmc_gateway.simulator.objects.clock import zone_transitions

CLOCK = "0.0.1.0.0.255"
LP = "1.0.99.1.0.255"


def test_the_2026_transitions_in_the_tz_database() -> None:
    """Chile (IANA America/Santiago): summer time ends at 24:00 on the first Saturday of
    April (clocks go back to 23:00) and starts at 24:00 on the first Saturday of
    September (clocks jump to 01:00); standard time is UTC-4, summer time UTC-3."""
    before, after = APRIL_BACK - timedelta(seconds=1), APRIL_BACK
    assert before.astimezone(SANTIAGO).strftime("%a %d %H:%M:%S %z") == "Sat 04 23:59:59 -0300"
    assert after.astimezone(SANTIAGO).strftime("%a %d %H:%M:%S %z") == "Sat 04 23:00:00 -0400"
    before, after = SEPTEMBER_FORWARD - timedelta(seconds=1), SEPTEMBER_FORWARD
    assert before.astimezone(SANTIAGO).strftime("%a %d %H:%M:%S %z") == "Sat 05 23:59:59 -0400"
    assert after.astimezone(SANTIAGO).strftime("%a %d %H:%M:%S %z") == "Sun 06 01:00:00 -0300"
    assert zone_transitions(SANTIAGO, 2026) == (SEPTEMBER_FORWARD, APRIL_BACK, 60)
    # the rule changed over the years: 2022 began a week late (11 September)
    assert zone_transitions(SANTIAGO, 2022)[0] == datetime(2022, 9, 11, 4, 0, tzinfo=UTC)


def _stamps(
    meter: SimulatedMeter, start: datetime, end: datetime, now: datetime
) -> list[tuple[datetime, int, int, datetime]]:
    """(local wall clock, deviation, status, UTC) of each load profile row in a range."""
    bound = [
        octet_string(cosem((t - timedelta(hours=4)).replace(tzinfo=None), 240, 0xFF))
        for t in (start, end)
    ]
    clock_column = {
        "type": "structure",
        "value": [
            {"type": "long-unsigned", "value": 8},
            {"type": "octet-string", "value": "0000010000ff"},
            {"type": "integer", "value": 2},
            {"type": "long-unsigned", "value": 0},
        ],
    }
    params = {"type": "structure", "value": [clock_column, *bound, {"type": "array", "value": []}]}
    lp = meter.get(7, LP, 2, now=now, client=1, selector=1, parameters=params)
    assert isinstance(lp, dict), lp
    out = []
    for row in lp["value"]:
        f = unpack_datetime(as_bytes(row["value"][0]))
        local = f.to_datetime()
        assert local is not None and f.deviation is not None and f.clock_status is not None
        out.append((local.replace(tzinfo=None), f.deviation, f.clock_status, local.astimezone(UTC)))
    return out


def test_the_load_profile_over_the_april_transition() -> None:
    now = APRIL_BACK + timedelta(hours=3)
    meter = chile_meter(now)
    rows = _stamps(meter, APRIL_BACK - timedelta(hours=2), APRIL_BACK + timedelta(hours=2), now)
    utc = [r[3] for r in rows]
    expected = [APRIL_BACK - timedelta(hours=2) + i * Q for i in range(17)]
    assert utc == expected  # every quarter hour in UTC once: none repeated, none lost
    local = [(r[0].strftime("%H:%M"), r[1], r[2]) for r in rows]
    # 22:00 .. 23:45 summer (-3, +180, DST bit), then 23:00 .. 23:45 again standard
    assert local[:8] == [(f"{h}:{m:02d}", 180, 0x80) for h in (22, 23) for m in (0, 15, 30, 45)]
    assert local[8:12] == [(f"23:{m:02d}", 240, 0) for m in (0, 15, 30, 45)]
    assert local[12] == ("00:00", 240, 0)
    assert [r[0].day for r in rows[:12]] == [4] * 12 and rows[12][0].day == 5


def test_the_load_profile_over_the_september_transition() -> None:
    now = SEPTEMBER_FORWARD + timedelta(hours=3)
    meter = chile_meter(now)
    rows = _stamps(
        meter, SEPTEMBER_FORWARD - timedelta(hours=1), SEPTEMBER_FORWARD + timedelta(hours=1), now
    )
    assert [r[3] for r in rows] == [
        SEPTEMBER_FORWARD - timedelta(hours=1) + i * Q for i in range(9)
    ]
    local = [(r[0].strftime("%d %H:%M"), r[1], r[2]) for r in rows]
    assert local[:4] == [(f"05 23:{m:02d}", 240, 0) for m in (0, 15, 30, 45)]
    # 24:00 standard is 01:00 summer: no 00:xx stamp, and no gap in UTC
    assert local[4:] == [
        ("06 01:00", 180, 0x80),
        ("06 01:15", 180, 0x80),
        ("06 01:30", 180, 0x80),
        ("06 01:45", 180, 0x80),
        ("06 02:00", 180, 0x80),
    ]


def _clock(meter: SimulatedMeter, now: datetime) -> tuple[str, int, int]:
    value = meter.get(8, CLOCK, 2, now=now, client=1)
    assert isinstance(value, dict)
    f = unpack_datetime(as_bytes(value))
    local = f.to_datetime()
    assert local is not None and f.deviation is not None and f.clock_status is not None
    return local.strftime("%Y-%m-%d %H:%M:%S"), f.deviation, f.clock_status


def test_clock_reads_on_both_sides_of_each_transition() -> None:
    start = datetime(2026, 4, 4, 12, 0, tzinfo=UTC)
    meter = chile_meter(start, history_days=0)
    second = timedelta(seconds=1)
    assert _clock(meter, APRIL_BACK - second) == ("2026-04-04 23:59:59", 180, 0x80)
    assert _clock(meter, APRIL_BACK) == ("2026-04-04 23:00:00", 240, 0)
    assert meter.get(8, CLOCK, 4, now=APRIL_BACK, client=1) == {"type": "unsigned", "value": 0}
    assert _clock(meter, SEPTEMBER_FORWARD - second) == ("2026-09-05 23:59:59", 240, 0)
    assert _clock(meter, SEPTEMBER_FORWARD) == ("2026-09-06 01:00:00", 180, 0x80)
    assert meter.get(8, CLOCK, 4, now=SEPTEMBER_FORWARD, client=1) == {
        "type": "unsigned",
        "value": 0x80,
    }
    # attributes 3, 5..8: standard deviation, this year's begin (standard time) and end
    # (summer time), the shift, enabled
    got = [meter.get(8, CLOCK, a, now=SEPTEMBER_FORWARD, client=1) for a in (3, 5, 6, 7, 8)]
    assert got == [
        {"type": "long", "value": 240},
        {"type": "octet-string", "value": "07ea090607000000008000ff"},
        {"type": "octet-string", "value": "07ea040507000000008000ff"},
        {"type": "integer", "value": 60},
        {"type": "boolean", "value": True},
    ]


def test_clock_writes_with_and_without_a_deviation() -> None:
    now = APRIL_BACK + timedelta(minutes=30)  # Sat 23:30 standard, the second pass
    meter = chile_meter(now, history_days=0)
    # a time with its deviation: local + deviation
    written = octet_string(cosem(datetime(2026, 4, 4, 23, 10), 240, 0))
    assert meter.set(8, CLOCK, 2, written, now=now, client=1) == "success"
    assert meter.meter_time(now) == APRIL_BACK + timedelta(minutes=10)
    # without one: the meter's local time; the DST bit picks the pass of the repeated hour
    first_pass = octet_string(cosem(datetime(2026, 4, 4, 23, 10), -0x8000, 0x80))
    assert meter.set(8, CLOCK, 2, first_pass, now=now, client=1) == "success"
    assert meter.meter_time(now) == APRIL_BACK - timedelta(minutes=50)
    second_pass = octet_string(cosem(datetime(2026, 4, 4, 23, 10), -0x8000, 0))
    assert meter.set(8, CLOCK, 2, second_pass, now=now, client=1) == "success"
    assert meter.meter_time(now) == APRIL_BACK + timedelta(minutes=10)


def test_programming_the_dst_attributes_replaces_the_zone() -> None:
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    meter = chile_meter(now, history_days=0)
    assert _clock(meter, now)[1:] == (180, 0x80)
    refused = {"type": "integer", "value": 121}  # a DST shift over 120 minutes
    assert meter.set(8, CLOCK, 7, refused, now=now, client=1) == "other-reason"
    assert meter.clock.zone is not None and meter.clock.zone.key == "America/Santiago"
    assert meter.set(8, CLOCK, 8, boolean(False), now=now, client=1) == "success"
    assert _clock(meter, now) == ("2026-01-15 08:00:00", 240, 0)  # standard time all year


def test_a_meter_without_a_deviation_sends_0x8000() -> None:
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    meter = chile_meter(now, history_days=0, deviation_not_specified=True)
    value = meter.get(8, CLOCK, 2, now=now, client=1)
    f = unpack_datetime(as_bytes(value))  # type: ignore[arg-type]
    assert (f.hour, f.deviation, f.clock_status) == (9, None, 0x80)


def test_an_unknown_zone_is_refused_by_name() -> None:
    now = datetime(2026, 1, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="'America/Santiagoo' is not a zone"):
        SimulatedMeter(MeterOptions(timezone="America/Santiagoo"), now=now)


def test_simulate_timezone_option() -> None:
    parser = argparse.ArgumentParser()
    sim_cli.add_arguments(parser)
    args = parser.parse_args(
        ["--tcp", "0", "--timezone", "America/Santiago", "--deviation-not-specified"]
    )
    spec = sim_cli.spec_from_args(args)
    assert spec.timezone == "America/Santiago" and spec.deviation_not_specified
    bad = sim_cli.spec_from_args(parser.parse_args(["--tcp", "0", "--timezone", "Mars/Base"]))
    with pytest.raises(ValueError, match="'Mars/Base' is not a zone of the tz database"):
        bad.validate()


def test_the_zone_loads_without_a_system_tz_database() -> None:
    """A slim image without /usr/share/zoneinfo: zoneinfo falls back to the PyPI tzdata
    package (a runtime dependency in pyproject.toml)."""
    import zoneinfo

    saved = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[])
    try:
        zone = zoneinfo.ZoneInfo.no_cache("America/Santiago")
        assert zone_transitions(zone, 2026) == (SEPTEMBER_FORWARD, APRIL_BACK, 60)
    finally:
        zoneinfo.reset_tzpath(to=saved)
