"""Chile's clock (issue 10 item 7), the gateway side: a load profile read across both
yearly transitions is stored and published with the right UTC stamps (compact profiles
too, meters with and without a deviation, meters on standard time all year), the
ReadingsReport counts it right, and time sync writes the right deviation and DST bit.
Fake clocks and an in-process meter: nothing waits, nothing depends on the host's zone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chile_clock_support import (
    APRIL_BACK,
    SANTIAGO,
    SEPTEMBER_FORWARD,
    FakeTime,
    Q,
    chile_meter,
    every_quarter,
    model,
    profile_buffer,
    session_on,
)
from smmc_gateway import _core
from smmc_gateway.cosem.datetime import unpack_datetime
from smmc_gateway.dlms.access import RangeAccess
from smmc_gateway.dlms.errors import ProtocolError
from smmc_gateway.headend.datastore import DataStore
from smmc_gateway.headend.persistence import open_fleet_store
from smmc_gateway.ops.config_clock import ClockConfig
from smmc_gateway.usecases.clock import synchronise
from smmc_gateway.usecases.meter_clock import ClockConventionError, MeterClock
from smmc_gateway.usecases.readings import ReadingsUseCase

CHILE = ClockConfig(timezone="America/Santiago")
# a range spanning the April and the September transition of 2026 (UTC)
APRIL = every_quarter(APRIL_BACK - timedelta(hours=3), APRIL_BACK + timedelta(hours=3))
SEPTEMBER = every_quarter(
    SEPTEMBER_FORWARD - timedelta(hours=3), SEPTEMBER_FORWARD + timedelta(hours=3)
)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _capture_objects() -> dict[str, Any]:
    def obj(class_id: int, obis: str, attribute: int) -> dict[str, Any]:
        return {
            "type": "structure",
            "value": [
                {"type": "long-unsigned", "value": class_id},
                {"type": "octet-string", "value": bytes(int(x) for x in obis.split(".")).hex()},
                {"type": "integer", "value": attribute},
                {"type": "long-unsigned", "value": 0},
            ],
        }

    return {
        "type": "array",
        "value": [
            obj(8, "0.0.1.0.0.255", 2),
            obj(1, "0.0.96.10.1.255", 2),
            obj(3, "1.0.1.8.0.255", 2),
        ],
    }


class CannedMeter:
    """A session whose meter answers the load profile with ``buffer`` (clock, AMR status,
    A+ in Wh) and records the range bounds it was asked."""

    def __init__(self, buffer: bytes) -> None:
        self.buffer = buffer
        self.ranges: list[RangeAccess] = []

    async def get_all(self, refs: Sequence[tuple[int, str, int]]) -> list[dict[str, Any]]:
        return [_capture_objects(), {"type": "double-long-unsigned", "value": 900}]

    async def get_many(
        self, refs: Sequence[tuple[int, str, int]], access: Sequence[Any] | None = None
    ) -> list[bytes]:
        out = []
        for i, (class_id, _ln, _attr) in enumerate(refs):
            if class_id == 7:
                bound = (access or [None] * len(refs))[i]
                assert isinstance(bound, RangeAccess)
                self.ranges.append(bound)
                out.append(self.buffer)
            else:  # scaler 0, unit Wh
                out.append(
                    _core.encode(
                        {
                            "type": "structure",
                            "value": [
                                {"type": "integer", "value": 0},
                                {"type": "enum", "value": 30},
                            ],
                        }
                    )
                )
        return out


async def collect(
    buffer: bytes, clock: ClockConfig, since: datetime, until: datetime
) -> tuple[list[str], Any, CannedMeter]:
    meter = CannedMeter(buffer)
    result = await ReadingsUseCase().collect(
        meter,
        "cl-1",
        model(clock),  # type: ignore[arg-type]
        since,
        until,
    )
    profile = result.profile
    assert profile is not None and profile.interval_blocks is not None
    blocks = json.loads(profile.interval_blocks)
    assert len(blocks) == 1
    return [iv["timeStamp"] for iv in blocks[0]["IntervalReadings"]], profile, meter


CASES = {
    "deviation": {"deviation": True},
    "compact": {"deviation": True, "compact": True},
    "0x8000": {"deviation": False},
    "0x8000-compact": {"deviation": False, "compact": True},
}


@pytest.mark.parametrize("span", [APRIL, SEPTEMBER], ids=["april", "september"])
@pytest.mark.parametrize("case", CASES)
async def test_profile_stamps_across_a_transition_are_utc_one_by_one(
    span: list[datetime], case: str
) -> None:
    buffer = profile_buffer(span, **CASES[case])  # type: ignore[arg-type]
    stamps, profile, meter = await collect(buffer, CHILE, span[0] - Q, span[-1])
    assert stamps == [iso(t) for t in span]  # every stamp, in order: none twice, none lost
    assert profile.gaps == [] and profile.rows == len(span)
    assert profile.newest == span[-1]
    # the range was asked in the meter's local time, with the zone's deviation
    bound = meter.ranges[0]
    assert (
        bound.end == span[-1] and bound.end.utcoffset() == span[-1].astimezone(SANTIAGO).utcoffset()
    )


async def test_the_april_repeated_hour_without_deviation_or_status_bit() -> None:
    """A meter that sends neither deviation nor a trusted DST bit: the order of the
    entries tells the two passes of 23:00-23:59 apart."""
    buffer = profile_buffer(APRIL, deviation=False)
    untrusting = ClockConfig(timezone="America/Santiago", trusted_status=frozenset())
    stamps, _, _ = await collect(buffer, untrusting, APRIL[0] - Q, APRIL[-1])
    assert stamps == [iso(t) for t in APRIL]


async def test_a_meter_on_standard_time_all_year() -> None:
    for span in (APRIL, SEPTEMBER):
        buffer = profile_buffer(span, deviation=False, standard_only=True)
        config = ClockConfig(timezone="America/Santiago", standard_time_all_year=True)
        stamps, profile, _ = await collect(buffer, config, span[0] - Q, span[-1])
        assert stamps == [iso(t) for t in span] and profile.gaps == []
    # its local time is UTC-4 even in January (summer time elsewhere in Chile)
    clock = MeterClock(ClockConfig(timezone="America/Santiago", standard_time_all_year=True))
    assert clock.range_bound(datetime(2026, 1, 15, 12, tzinfo=UTC)).isoformat() == (
        "2026-01-15T08:00:00-04:00"
    )


async def test_deviation_not_specified_without_a_zone_is_refused_by_name() -> None:
    buffer = profile_buffer(APRIL, deviation=False)
    with pytest.raises(
        ClockConventionError,
        match=r"deviation not specified \(0x8000\) and "
        r"the model has no time zone: set \[models.chile.clock\] timezone",
    ):
        await collect(buffer, ClockConfig(), APRIL[0] - Q, APRIL[-1])
    refusing = ClockConfig(timezone="America/Santiago", deviation_unspecified="refuse")
    with pytest.raises(ClockConventionError, match='deviation_unspecified = "refuse"'):
        await collect(buffer, refusing, APRIL[0] - Q, APRIL[-1])
    assert issubclass(ClockConventionError, ProtocolError)  # a meter error to the head-end
    # a model that says its meters keep UTC
    utc = profile_buffer(APRIL, deviation=False, tz=SANTIAGO.__class__("UTC"))
    stamps, _, _ = await collect(
        utc, ClockConfig(deviation_unspecified="utc"), APRIL[0] - Q, APRIL[-1]
    )
    assert stamps == [iso(t) for t in APRIL]


async def test_a_distrusted_or_inverted_deviation() -> None:
    # a meter that always sends +240 (standard time's) while it shows summer time
    buffer = bytearray(profile_buffer(SEPTEMBER))
    fixed = bytes(buffer).replace(b"\x00\xb4\x80", b"\x00\xf0\x80")  # dev 180 -> 240
    assert fixed != bytes(buffer)
    distrust = ClockConfig(timezone="America/Santiago", trust_deviation=False)
    stamps, _, _ = await collect(fixed, distrust, SEPTEMBER[0] - Q, SEPTEMBER[-1])
    assert stamps == [iso(t) for t in SEPTEMBER]
    # a meter that counts the deviation from UTC to local time (-240 for UTC-4)
    inverted = (
        bytes(buffer)
        .replace(b"\x00\xb4\x80", b"\xff\x4c\x80")
        .replace(b"\x00\xf0\x00", b"\xff\x10\x00")
    )
    config = ClockConfig(deviation_sign="inverted")
    stamps, _, _ = await collect(inverted, config, SEPTEMBER[0] - Q, SEPTEMBER[-1])
    assert stamps == [iso(t) for t in SEPTEMBER]


async def test_the_readings_report_counts_both_transitions(tmp_path: Path) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    data = DataStore(
        store, retention_days=365, clock=lambda: (SEPTEMBER_FORWARD + timedelta(days=1)).timestamp()
    )
    try:
        for span in (APRIL, SEPTEMBER):
            _, profile, _ = await collect(
                profile_buffer(span, deviation=False, compact=True), CHILE, span[0] - Q, span[-1]
            )
            await data.record_readings("cl-1", [], profile.interval_blocks)
            report = await data.report("cl-1", span[0], span[-1] + Q, 900)
            assert (report.expected, report.received, report.gaps) == (25, 25, [])
            # a report without intervalSeconds infers the 15 minutes from the stamps
            inferred = await data.report("cl-1", span[0], span[-1] + Q)
            assert inferred.period_s == 900 and inferred.received == 25
            # the stored day holds each UTC quarter hour once
            got = await data.query("cl-1", span[0], span[-1] + Q)
            stamps = [iv["timeStamp"] for iv in got.blocks[0]["IntervalReadings"]]
            assert stamps == [iso(t) for t in span]
    finally:
        await store.close()


@pytest.fixture
def host_in_santiago() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/Santiago"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("host_in_santiago")
async def test_a_stamp_without_offset_is_stored_as_utc_whatever_the_host_zone(
    tmp_path: Path,
) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    data = DataStore(store, clock=lambda: datetime(2026, 4, 6, tzinfo=UTC).timestamp())
    try:
        blocks = [
            {
                "ReadingType": {"ref": "r", "obis": "1.0.1.8.0.255", "unit": "Wh"},
                "IntervalReadings": [{"timeStamp": "2026-04-05T03:00:00", "value": 1}],
            }
        ]
        await data.record_readings("m", [], blocks)
        got = await data.query("m", APRIL_BACK, APRIL_BACK + Q)
        assert got.blocks[0]["IntervalReadings"][0]["timeStamp"] == "2026-04-05T03:00:00Z"
    finally:
        await store.close()


# ----------------------------------------------------------------------- the simulated meter
@pytest.mark.parametrize("zone", [None, "America/Santiago"])
@pytest.mark.parametrize("edge", [APRIL_BACK, SEPTEMBER_FORWARD], ids=["april", "september"])
async def test_reading_the_simulated_meter_across_a_transition(
    zone: str | None, edge: datetime
) -> None:
    t = FakeTime(edge + timedelta(hours=4))
    meter = chile_meter(t.at)
    span = every_quarter(edge - timedelta(hours=3), edge + timedelta(hours=3))
    async with session_on(meter, t) as (s, _):
        result = await ReadingsUseCase().collect(
            s, "cl-1", model(ClockConfig(timezone=zone)), span[0] - Q, span[-1], registers=False
        )
    profile = result.profile
    assert profile is not None and profile.interval_blocks is not None
    blocks = json.loads(profile.interval_blocks)
    for block in blocks:
        assert [iv["timeStamp"] for iv in block["IntervalReadings"]] == [iso(x) for x in span]
    assert profile.gaps == []


async def test_reading_a_simulated_meter_without_deviation() -> None:
    t = FakeTime(APRIL_BACK + timedelta(hours=4))
    meter = chile_meter(t.at, deviation_not_specified=True)
    span = every_quarter(APRIL_BACK - timedelta(hours=2), APRIL_BACK + timedelta(hours=2))
    async with session_on(meter, t) as (s, _):
        uc = ReadingsUseCase()
        result = await uc.collect(s, "cl-1", model(CHILE), span[0] - Q, span[-1], registers=False)
        assert result.profile is not None and result.profile.interval_blocks is not None
        stamps = [
            iv["timeStamp"]
            for iv in json.loads(result.profile.interval_blocks)[0]["IntervalReadings"]
        ]
        assert stamps == [iso(x) for x in span]
        with pytest.raises(ClockConventionError, match="no time zone"):
            await uc.collect(
                s, "cl-1", model(ClockConfig()), span[0] - Q, span[-1], registers=False
            )


def _written(sent: list[bytes]) -> list[tuple[str, int, int]]:
    """(local fields, deviation, status) of each date-time a SET request wrote."""
    out = []
    for apdu in sent:
        if apdu[0] == 0xC1:  # set-request, unciphered here
            at = apdu.index(b"\x09\x0c")
            f = unpack_datetime(apdu[at + 2 : at + 14])
            local = f.to_datetime()
            assert local is not None and f.clock_status is not None
            dev = -0x8000 if f.deviation is None else f.deviation
            out.append((local.strftime("%Y-%m-%d %H:%M:%S"), dev, f.clock_status))
    return out


SYNC_CASES = [
    # (true instant, the model's clock, what the SET writes)
    (APRIL_BACK - timedelta(seconds=2), CHILE, ("2026-04-04 23:59:58", 180, 0x80)),
    (APRIL_BACK + timedelta(seconds=2), CHILE, ("2026-04-04 23:00:02", 240, 0)),
    (SEPTEMBER_FORWARD - timedelta(seconds=2), CHILE, ("2026-09-05 23:59:58", 240, 0)),
    (SEPTEMBER_FORWARD + timedelta(seconds=2), CHILE, ("2026-09-06 01:00:02", 180, 0x80)),
    # standard time all year: UTC-4 and no DST bit, in January too
    (
        datetime(2026, 1, 15, 12, tzinfo=UTC),
        ClockConfig(timezone="America/Santiago", standard_time_all_year=True),
        ("2026-01-15 08:00:00", 240, 0),
    ),
]


@pytest.mark.parametrize(("instant", "clock", "expected"), SYNC_CASES)
async def test_time_sync_writes_the_right_deviation_and_dst_bit(
    instant: datetime, clock: ClockConfig, expected: tuple[str, int, int]
) -> None:
    t = FakeTime(instant)
    meter = chile_meter(t.at, history_days=0, clock_offset_seconds=-3600.0)
    async with session_on(meter, t) as (s, link):
        result = await synchronise(s, "cl-1", t, tolerance_s=2, conventions=clock, model="chile")
    assert result.method == "set" and abs(result.before_s + 3600) < 0.01
    assert result.after_s is not None and abs(result.after_s) < 0.01
    assert _written(link.sent) == [expected]
    assert meter.meter_time(t.at) == instant


async def test_time_sync_without_a_model_zone_keeps_the_meters_deviation_and_dst_bit() -> None:
    t = FakeTime(datetime(2026, 1, 15, 12, tzinfo=UTC))  # January: Chile's summer time
    meter = chile_meter(t.at, history_days=0, clock_offset_seconds=-3600.0)
    async with session_on(meter, t) as (s, link):
        result = await synchronise(s, "cl-1", t, tolerance_s=2)  # no model conventions
    assert result.method == "set"
    assert _written(link.sent) == [("2026-01-15 09:00:00", 180, 0x80)]  # the DST bit kept


async def test_time_sync_of_a_meter_without_deviation() -> None:
    t = FakeTime(datetime(2026, 1, 15, 12, tzinfo=UTC))
    meter = chile_meter(
        t.at, history_days=0, clock_offset_seconds=-3600.0, deviation_not_specified=True
    )
    async with session_on(meter, t) as (s, link):
        with pytest.raises(ClockConventionError, match="no time zone"):
            await synchronise(s, "cl-1", t, conventions=ClockConfig(), model="chile")
        assert _written(link.sent) == []  # nothing written from a guess
        result = await synchronise(s, "cl-1", t, conventions=CHILE, model="chile")
    assert result.method == "set" and result.after_s is not None and abs(result.after_s) < 0.01
    assert _written(link.sent) == [("2026-01-15 09:00:00", 180, 0x80)]


async def test_a_meter_that_says_its_clock_is_invalid_is_set_not_shifted() -> None:
    t = FakeTime(datetime(2026, 6, 15, 12, tzinfo=UTC))
    meter = chile_meter(t.at, history_days=0, clock_offset_seconds=30.0)
    meter.clock.status = 0x01  # invalid value
    async with session_on(meter, t) as (s, link):
        result = await synchronise(s, "cl-1", t, conventions=CHILE, model="chile")
        assert result.method == "set"
        assert _written(link.sent) == [("2026-06-15 08:00:00", 240, 0)]
        meter.clock.status = 0x01
        untrusting = ClockConfig(timezone="America/Santiago", trusted_status=frozenset({"dst"}))
        t.at += timedelta(hours=1)
        meter.set_drift(t.at, 0.0)
        result = await synchronise(s, "cl-1", t, conventions=untrusting, model="chile")
        assert result.method == "none"  # within tolerance, the bit not trusted
