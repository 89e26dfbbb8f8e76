"""Load profile: history, capture as time advances, selective access by range
(selector 1) and by entry (selector 2) with column selection."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.cosem.datetime import from_utc, to_utc
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    array,
    as_bytes,
    as_int,
    double_long_unsigned,
    integer,
    long_unsigned,
    octet_string,
    structure,
)
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.objects.profile import ProfileGeneric

NOW = datetime(2026, 3, 10, 12, 7, tzinfo=UTC)
LP = "1.0.99.1.0.255"


def cap(class_id: int, obis: str, attr: int = 2) -> dict[str, Any]:
    return structure(
        [
            long_unsigned(class_id),
            octet_string(Obis.parse(obis).to_bytes()),
            integer(attr),
            long_unsigned(0),
        ]
    )


CLOCK_COL = cap(8, "0.0.1.0.0.255")


def by_entry(a: int, b: int, c1: int, c2: int) -> dict[str, Any]:
    return structure(
        [double_long_unsigned(a), double_long_unsigned(b), long_unsigned(c1), long_unsigned(c2)]
    )


def by_range(lo: datetime, hi: datetime, columns: list[dict[str, Any]]) -> dict[str, Any]:
    return structure(
        [
            CLOCK_COL,
            octet_string(from_utc(lo, deviation=0)),
            octet_string(from_utc(hi, deviation=0)),
            array(columns),
        ]
    )


def rows(value: object) -> list[list[dict[str, Any]]]:
    assert isinstance(value, dict), value
    return [r["value"] for r in value["value"]]


def stamp(row: list[dict[str, Any]]) -> datetime:
    result = to_utc(as_bytes(row[0]))
    assert result is not None
    return result


def make(days: int = 2) -> SimulatedMeter:
    return SimulatedMeter(MeterOptions(history_days=days), now=NOW)


def test_history_and_capture_as_time_advances() -> None:
    meter = make(days=2)
    full = rows(meter.get(7, LP, 2, now=NOW, client=1))
    assert stamp(full[-1]) == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert len(full) == 2 * 96  # 12:00 two days ago (exclusive start) .. 12:00
    steps = [stamp(b) - stamp(a) for a, b in itertools.pairwise(full)]
    assert set(steps) == {timedelta(minutes=15)}
    energy = [as_int(r[2]) for r in full]
    assert energy == sorted(energy) and energy[-1] > energy[0]
    assert meter.get(7, LP, 7, now=NOW, client=1) == double_long_unsigned(len(full))
    later = NOW + timedelta(minutes=38)  # 12:45:00 -> 12:15, 12:30, 12:45
    more = rows(meter.get(7, LP, 2, now=later, client=1))
    assert len(more) == len(full) + 3
    assert stamp(more[-1]) == datetime(2026, 3, 10, 12, 45, tzinfo=UTC)
    # the row holds the register values at the capture instant
    assert meter.get(3, "1.0.1.8.0.255", 2, now=later, client=1) == more[-1][2]
    assert meter.get(7, LP, 4, now=NOW, client=1) == double_long_unsigned(900)


def test_by_entry_with_columns_and_edges() -> None:
    meter = make()
    full = rows(meter.get(7, LP, 2, now=NOW, client=1))
    n = len(full)
    got = rows(
        meter.get(7, LP, 2, now=NOW, client=1, selector=2, parameters=by_entry(2, 4, 0 + 1, 0))
    )
    assert got == full[1:4]
    got = rows(
        meter.get(7, LP, 2, now=NOW, client=1, selector=2, parameters=by_entry(n - 1, 0, 3, 4))
    )
    assert got == [r[2:4] for r in full[-2:]]
    # to_entry past the end is clipped; from_entry past the end is empty
    got = rows(
        meter.get(7, LP, 2, now=NOW, client=1, selector=2, parameters=by_entry(n, n + 50, 1, 1))
    )
    assert got == [full[-1][:1]]
    got = rows(
        meter.get(7, LP, 2, now=NOW, client=1, selector=2, parameters=by_entry(n + 1, 0, 1, 0))
    )
    assert got == []
    bad = [by_entry(0, 1, 1, 0), by_entry(5, 4, 1, 0), by_entry(1, 1, 7, 0), by_entry(1, 1, 3, 2)]
    for params in bad:
        assert meter.get(7, LP, 2, now=NOW, client=1, selector=2, parameters=params) == (
            "object-unavailable"
        )
    assert meter.get(7, LP, 2, now=NOW, client=1, selector=2, parameters=integer(1)) == (
        "type-unmatched"
    )


def test_by_range_inclusive_with_column_selection() -> None:
    meter = make()
    full = rows(meter.get(7, LP, 2, now=NOW, client=1))
    lo = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    hi = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    got = rows(meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=by_range(lo, hi, [])))
    assert [stamp(r) for r in got] == [lo + timedelta(minutes=15 * i) for i in range(5)]
    assert got == [r for r in full if lo <= stamp(r) <= hi]
    columns = [CLOCK_COL, cap(3, "1.0.2.8.0.255")]
    got = rows(
        meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=by_range(lo, hi, columns))
    )
    assert [len(r) for r in got] == [2] * 5
    assert [r[1] for r in got] == [r[3] for r in full if lo <= stamp(r) <= hi]
    # between two captures: empty; in the future: empty
    mid = lo + timedelta(minutes=1)
    empty = by_range(mid, mid + timedelta(minutes=10), [])
    assert rows(meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=empty)) == []
    future = by_range(NOW + timedelta(days=1), NOW + timedelta(days=2), [])
    assert rows(meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=future)) == []


def test_by_range_errors() -> None:
    meter = make()
    lo, hi = NOW - timedelta(hours=1), NOW
    not_a_column = by_range(lo, hi, [cap(3, "1.0.32.7.0.255")])
    assert meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=not_a_column) == (
        "object-unavailable"
    )
    restricted_by_unknown = structure(
        [cap(3, "1.0.1.7.0.255"), double_long_unsigned(0), double_long_unsigned(1), array([])]
    )
    assert (
        meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=restricted_by_unknown)
        == "object-unavailable"
    )
    by_energy = structure(
        [
            cap(3, "1.0.1.8.0.255"),
            double_long_unsigned(0),
            double_long_unsigned(2**32 - 1),
            array([]),
        ]
    )
    got = meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=by_energy)
    assert len(rows(got)) == 2 * 96
    assert meter.get(7, LP, 2, now=NOW, client=1, selector=3, parameters=by_energy) == (
        "object-unavailable"
    )


def test_profile_entries_limit_and_reset() -> None:
    meter = make()
    assert meter.set(7, LP, 8, double_long_unsigned(10), now=NOW, client=1) == "success"
    assert len(rows(meter.get(7, LP, 2, now=NOW, client=1))) == 10
    assert meter.action(7, LP, 1, integer(0), now=NOW, client=1)[0] == "success"
    assert rows(meter.get(7, LP, 2, now=NOW, client=1)) == []
    assert meter.action(7, LP, 2, integer(0), now=NOW, client=1)[0] == "success"
    assert len(rows(meter.get(7, LP, 2, now=NOW, client=1))) == 1


def test_billing_profile_closes_each_month() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=40), now=NOW)
    billing = rows(meter.get(7, "0.0.98.1.0.255", 2, now=NOW, client=1))
    assert [stamp(r) for r in billing] == [
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    ]
    assert as_int(billing[1][1]) > as_int(billing[0][1])


def test_demand_register_follows_quarter_hours() -> None:
    meter = make(days=1)
    lp = rows(meter.get(7, LP, 2, now=NOW, client=1))
    md = "1.0.1.4.0.255"
    last = meter.get(5, md, 3, now=NOW, client=1)
    assert isinstance(last, dict)
    expected = (as_int(lp[-1][2]) - as_int(lp[-2][2])) * 4  # Wh in 15 min -> W
    assert abs(as_int(last) - expected) <= 8
    start = meter.get(5, md, 7, now=NOW, client=1)
    assert start == lp[-1][0]  # the current period started with the last row
    running = meter.get(5, md, 2, now=NOW, client=1)
    assert isinstance(running, dict) and 0 < as_int(running) < as_int(last) + 5000
    assert meter.action(5, md, 2, integer(0), now=NOW, client=1)[0] == "success"
    assert meter.get(5, md, 3, now=NOW, client=1) == running
    assert meter.get(5, md, 2, now=NOW, client=1) == double_long_unsigned(0)
    assert meter.action(5, md, 1, integer(0), now=NOW, client=1)[0] == "success"
    assert meter.get(5, md, 3, now=NOW, client=1) == double_long_unsigned(0)


def test_range_by_bisection_equals_the_scan() -> None:
    """Rows in time order are selected by bisecting their clock stamps; the answer is
    the one the row-by-row scan gives, at every boundary (and the scan takes over when
    the rows are not in order)."""
    meter = SimulatedMeter(MeterOptions(history_days=1), now=NOW)
    profile = meter.objects[Obis.parse(LP)]
    assert isinstance(profile, ProfileGeneric) and profile._ordered
    start = NOW - timedelta(days=1)
    bounds = [start + timedelta(minutes=7 * i) for i in range(0, 220, 13)]
    for lo, hi in itertools.combinations(bounds, 2):
        fast = meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=by_range(lo, hi, []))
        profile._ordered = False
        scan = meter.get(7, LP, 2, now=NOW, client=1, selector=1, parameters=by_range(lo, hi, []))
        profile._ordered = True
        assert fast == scan, (lo, hi)
    # a row out of order (a clock set back) turns the bisection off
    profile.append_row(list(profile.rows[0]))
    assert not profile._ordered
