"""Central-side requests are bounded before they run (issue 7 items 6 and 9, the fan-out
cap and noun enablement): work bombs on the data store and on the meters, fan-out past
the cap, disabled nouns, extreme and impossible dates, hostile numbers and sizes. Each is
answered with one FAILED reply naming the limit or the problem, at once, no meter touched.

The requests go straight to the Dispatcher of a real HeadEnd whose meters never answer
(tests/security/requests_support.py). ``asyncio.timeout`` is a hang detector, not a
speed claim; the old gap loop ran on the event loop and could not be interrupted by it,
so the tests that would hang carry a pytest timeout as well.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.headend.request_limits import MAX_DETAIL_CHARS
from smmc_gateway.uplink.envelope import event

from tests.security.requests_support import (
    P,
    blocks,
    codes,
    dead_fleet,
    details,
    iso,
    live_fleet,
    recent,
)

ANCIENT = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
HANG = 10  # s: a hang detector, generous on a loaded 2-core machine


def one(meter: str) -> list[dict[str, str]]:
    return [{"mRID": meter}]


def sessions(lab: Any) -> int:
    """Meter sessions attempted so far (every one fails: the port is closed)."""
    return sum(lab.head.fleet.state(m).last_attempt is not None for m in lab.meters)


# -- the data store: ReadingsReport, CustomerMeterDataSet, MeterReadings fromStore ------
@pytest.mark.timeout(60)
async def test_the_reviewed_report_bomb_is_refused_naming_the_limit(tmp_path: Path) -> None:
    """ReadingsReport from year 1 at 1 s: ~6e10 expected stamps. It used to loop over
    them on the event loop, stopping every later reply."""
    async with dead_fleet(tmp_path) as lab:
        m = lab.meters[0]
        await lab.head.datastore.record_readings(m, [], blocks(recent(8)))
        async with asyncio.timeout(HANG):
            out = await lab(
                "ReadingsReport",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": "0001-01-01T00:00:00Z"},
                    "intervalSeconds": 1,
                },
            )
        assert out.result == "FAILED" and codes(out) == {"LimitExceeded"}, details(out)
        text = details(out)
        assert "commands.max_query_intervals = 50000" in text
        assert "0001-01-01T00:00:00Z" in text and "intervalSeconds (1)" in text
        # the same with the whole range of dates, and without intervalSeconds (the stored
        # stamps are the work: 8 of them): answered, and cheaply
        async with asyncio.timeout(HANG):
            bomb = await lab(
                "ReadingsReport",
                "get",
                {"EndDevices": one(m), "timeSchedule": ANCIENT, "intervalSeconds": 1},
            )
            inferred = await lab(
                "ReadingsReport", "get", {"EndDevices": one(m), "timeSchedule": ANCIENT}
            )
        assert codes(bomb) == {"LimitExceeded"}
        assert inferred.result == "OK", details(inferred)
        (rep,) = inferred.payload["ReadingsReport"]
        assert rep["receivedIntervals"] == 8 and rep["intervalSeconds"] == P
        # a window back past the retention is answered from the oldest data kept
        oldest = lab.head.datastore.oldest_kept()
        assert abs(
            datetime.fromisoformat(rep["period"]["start"].replace("Z", "+00:00")) - oldest
        ) < timedelta(seconds=5)


async def test_report_work_counts_meters_and_stored_stamps(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path, commands={"max_query_intervals": 200}) as lab:
        day = recent(1)[0] - timedelta(days=1)
        window = {"start": iso(day), "end": iso(day + timedelta(hours=24))}
        # 96 intervals per meter: one meter fits, three do not
        ok = await lab(
            "ReadingsReport",
            "get",
            {"EndDevices": one(lab.meters[0]), "timeSchedule": window, "intervalSeconds": P},
        )
        assert ok.result == "OK", details(ok)
        over = await lab(
            "ReadingsReport",
            "get",
            {"EndDeviceGroups": [{"mRID": "all"}], "timeSchedule": window, "intervalSeconds": P},
        )
        assert codes(over) == {"LimitExceeded"}
        assert "288 intervals" in details(over) and "x 3 meter(s)" in details(over)
        # without intervalSeconds: 250 stored stamps are more than the scan may read
        await lab.head.datastore.record_readings(lab.meters[1], [], blocks(recent(250)))
        stored = await lab(
            "ReadingsReport",
            "get",
            {"EndDevices": one(lab.meters[1]), "timeSchedule": {"start": iso(recent(300)[0])}},
        )
        assert codes(stored) == {"LimitExceeded"}, details(stored)
        assert "max_query_intervals = 200" in details(stored) and lab.meters[1] in details(stored)


async def test_customer_and_from_store_bombs_are_refused(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        m = lab.meters[0]
        await lab.head.datastore.record_readings(m, [], blocks(recent(4)))
        for noun, extra in (("CustomerMeterDataSet", {}), ("MeterReadings", {"fromStore": True})):
            async with asyncio.timeout(HANG):
                out = await lab(
                    noun, "get", {"EndDevices": one(m), "timeSchedule": ANCIENT, **extra}
                )
            assert out.result == "FAILED" and codes(out) == {"LimitExceeded"}, details(out)
            assert "commands.max_query_intervals = 50000" in details(out)
            assert "the store keeps 90 days" in details(out)
            # a window reaching a little before the retention is fine (answered from
            # what is kept); one that ends before it is refused as pointless
            start = datetime.now(UTC) - timedelta(days=100)
            fine = await lab(
                noun, "get", {"EndDevices": one(m), "timeSchedule": {"start": iso(start)}, **extra}
            )
            assert fine.result == "OK", details(fine)
            assert (
                len(fine.payload["MeterReading"][0]["IntervalBlocks"][0]["IntervalReadings"]) == 4
            )
            gone = await lab(
                noun,
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": iso(start), "end": iso(start + timedelta(days=1))},
                    **extra,
                },
            )
            assert codes(gone) == {"InvalidRequest"}
            assert "before the oldest data kept" in details(gone)


async def test_customer_work_is_summed_over_the_meters(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path, commands={"max_query_intervals": 250}) as lab:
        start = datetime.now(UTC) - timedelta(days=1)
        req = {"EndDeviceGroups": [{"mRID": "all"}], "timeSchedule": {"start": iso(start)}}
        out = await lab("CustomerMeterDataSet", "get", req)
        assert codes(out) == {"LimitExceeded"} and "x 3 meter(s)" in details(out)
        req["EndDeviceGroups"] = [{"mRID": "pair"}]  # 2 x 97 intervals
        assert (await lab("CustomerMeterDataSet", "get", req)).result == "OK"
        req["timeSchedule"] = {"start": iso(start - timedelta(days=1))}  # 2 x 193
        assert codes(await lab("CustomerMeterDataSet", "get", req)) == {"LimitExceeded"}
        del req["EndDeviceGroups"]
        req["EndDevices"] = one(lab.meters[2])  # 1 x 193
        assert (await lab("CustomerMeterDataSet", "get", req)).result == "OK"


async def test_customer_reply_pages_under_max_reply_bytes(tmp_path: Path) -> None:
    limit = 8192
    async with dead_fleet(tmp_path, commands={"max_reply_bytes": limit}) as lab:
        a, b = lab.meters[:2]
        stamps = recent(300)
        for m in (a, b):
            await lab.head.datastore.record_readings(
                m, [], blocks(stamps, refs=("A+", "A-", "R+", "R-"))
            )
        start = iso(stamps[0])
        seen: dict[str, list[str]] = {a: [], b: []}
        pages = 0
        left = {a, b}
        while left:
            pages += 1
            assert pages < 40
            m = sorted(left)[0]
            out = await lab(
                "CustomerMeterDataSet",
                "get",
                {"EndDevices": one(m), "timeSchedule": {"start": start}},
            )
            assert len(json.dumps(out.payload, separators=(",", ":"))) <= limit
            (mr,) = out.payload["MeterReading"]
            got = [iv["timeStamp"] for iv in mr["IntervalBlocks"][0]["IntervalReadings"]]
            assert all(len(blk["IntervalReadings"]) == len(got) for blk in mr["IntervalBlocks"])
            seen[m] += got
            if out.result == "OK":
                left.discard(m)
                start = iso(stamps[0])
                continue
            assert out.result == "PARTIAL" and codes(out) == {"Truncated"}
            text = details(out)
            assert f"commands.max_reply_bytes = {limit}" in text
            start = text.split("timeSchedule.start = ")[1].split()[0]
            assert start == got[-1][:0] + iso(
                datetime.fromisoformat(got[-1].replace("Z", "+00:00")) + timedelta(seconds=P)
            )
        assert seen[a] == seen[b] == [iso(s) for s in stamps]
        # both meters at once: the second gets what is left, or is named as left out
        both = await lab(
            "CustomerMeterDataSet",
            "get",
            {"EndDevices": [{"mRID": a}, {"mRID": b}], "timeSchedule": {"start": iso(stamps[0])}},
        )
        assert both.result == "PARTIAL"
        assert len(json.dumps(both.payload, separators=(",", ":"))) <= limit
        assert {e["details"].split(":")[0] for e in both.errors} == {a, b}


async def test_report_gaps_page_under_max_reply_bytes(tmp_path: Path) -> None:
    limit = 4096
    async with dead_fleet(tmp_path, commands={"max_reply_bytes": limit}) as lab:
        m = lab.meters[0]
        stamps = recent(400, skip=range(1, 400, 2))  # every other interval missing
        await lab.head.datastore.record_readings(m, [], blocks(stamps))
        start, end = recent(400)[0], recent(400)[-1] + timedelta(seconds=P)
        gaps: list[dict[str, Any]] = []
        expected = received = 0
        nxt = start
        for _ in range(50):
            out = await lab(
                "ReadingsReport",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": iso(nxt), "end": iso(end)},
                    "intervalSeconds": P,
                },
            )
            assert len(json.dumps(out.payload, separators=(",", ":"))) <= limit
            (rep,) = out.payload["ReadingsReport"]
            gaps += rep["gaps"]
            expected += rep["expectedIntervals"]
            received += rep["receivedIntervals"]
            if out.result == "OK":
                break
            assert codes(out) == {"Truncated"}
            nxt = datetime.fromisoformat(rep["period"]["end"].replace("Z", "+00:00"))
            assert f"timeSchedule.start = {iso(nxt)}" in details(out)
        else:
            raise AssertionError("the report never ended")
        assert (expected, received, len(gaps)) == (400, 200, 200)
        assert all(g["missing"] == 1 for g in gaps)


# -- live MeterReadings: the meter-side work bomb ----------------------------------------
async def test_live_profile_read_is_bounded_before_a_session(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        m = lab.meters[0]
        for sched in (
            ANCIENT,
            {"start": "2000-01-01T00:00:00Z"},
            {"start": iso(datetime.now(UTC) - timedelta(days=600))},
        ):
            async with asyncio.timeout(HANG):
                out = await lab(
                    "MeterReadings", "get", {"EndDevices": one(m), "timeSchedule": sched}
                )
            assert codes(out) == {"LimitExceeded"}, details(out)
            assert "commands.max_query_intervals = 50000" in details(out)
        # year 1, one hour: within the work bound, but no meter holds a profile that old
        # (and the read's start - 1 s used to overflow)
        tiny = await lab(
            "MeterReadings",
            "get",
            {
                "EndDevices": one(m),
                "timeSchedule": {"start": "0001-01-01T00:00:00Z", "end": "0001-01-01T01:00:00Z"},
            },
        )
        assert codes(tiny) == {"InvalidRequest"} and "1970-01-01" in details(tiny)
        future = await lab(
            "MeterReadings",
            "get",
            {"EndDevices": one(m), "timeSchedule": {"start": "9999-12-31T23:59:59Z"}},
        )
        assert codes(future) == {"InvalidRequest"} and "in the future" in details(future)
        assert sessions(lab) == 0
        # 400 days at 15 min is 38400 intervals per meter: one meter passes the bound (and
        # fails on the dead meter), two do not
        sched = {"start": iso(datetime.now(UTC) - timedelta(days=400))}
        out = await lab("MeterReadings", "get", {"EndDevices": one(m), "timeSchedule": sched})
        assert codes(out) == {"MeterFailed"}
        assert sessions(lab) == 1
        two = await lab(
            "MeterReadings",
            "get",
            {"EndDevices": [{"mRID": x} for x in lab.meters[:2]], "timeSchedule": sched},
        )
        assert codes(two) == {"LimitExceeded"} and "x 2 meter(s)" in details(two)
        assert sessions(lab) == 1


# -- fan-out -------------------------------------------------------------------------------
async def test_fan_out_is_capped_over_the_whole_request(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path, commands={"max_meters_per_request": 2}) as lab:
        a, b, c = lab.meters
        ping = {"EndDeviceControlType": {"ref": "ping"}}
        cases: list[tuple[str, str, dict[str, Any], str]] = [
            (
                "EndDeviceControls",
                "create",  # the multicast group has 3 meters
                {"EndDeviceControl": [{**ping, "EndDeviceGroups": [{"mRID": "all"}]}]},
                "reaches 3 meters",
            ),
            (
                "EndDeviceControls",
                "create",  # two controls of two meters: four operations
                {
                    "EndDeviceControl": [
                        {**ping, "EndDevices": [{"mRID": a}, {"mRID": b}]},
                        {**ping, "EndDevices": [{"mRID": b}, {"mRID": c}]},
                    ]
                },
                "reaches 4 meters",
            ),
            (
                "EndDeviceControls",
                "create",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "disconnect"},
                            "EndDevices": [{"mRID": f"x{i}"} for i in range(1_000_000)],
                        }
                    ]
                },
                "payload.EndDeviceControl[0].EndDevices: 1000000 entries",
            ),
            (
                "EndDeviceControls",
                "create",
                {"EndDeviceControl": [ping] * 100_000},
                "payload.EndDeviceControl: 100000 controls",
            ),
            (
                "MeterReadings",
                "get",
                {"EndDevices": [{"mRID": x} for x in (a, b, c)]},
                "payload.EndDevices: 3 entries",
            ),
            (
                "MasterDataLinkageConfig",
                "change",
                {
                    "ConfigurationEvent": {"reason": "moveOut"},
                    "Meter": [{"mRID": x} for x in (a, b)] * 2,
                },
                "payload.Meter: 4 entries",
            ),
            (
                "EndDeviceConfig",
                "get",
                {"EndDeviceGroups": [{"mRID": "all"}], "refresh": True},
                "reaches 3 meters",
            ),
            (
                "ReadingsReport",
                "get",
                {
                    "EndDevices": one(a),
                    "EndDeviceGroups": [{"mRID": "pair"}, {"mRID": "all"}],
                    "timeSchedule": {"start": "2026-01-01T00:00:00Z"},
                },
                "reaches 3 meters",
            ),
            (
                "PricingStructureConfig",
                "change",
                {"EndDeviceGroups": [{"mRID": "all"}], "PricingStructure": {}},
                "reaches 3 meters",
            ),
            (
                "MeterConfig",
                "change",
                {
                    "Settings": [
                        {
                            "EndDevices": one(a),
                            "class_id": 1,
                            "obis": "0.0.97.98.10.255",
                            "attribute": 2,
                            "value": {"type": "unsigned", "value": 1},
                        },
                        {
                            "EndDeviceGroups": [{"mRID": "all"}],
                            "class_id": 1,
                            "obis": "0.0.97.98.10.255",
                            "attribute": 2,
                            "value": {"type": "unsigned", "value": 1},
                        },
                    ]
                },
                "reaches 3 meters",
            ),
            (
                "EndDeviceFirmware",
                "create",
                {
                    "EndDeviceFirmware": {"imageIdentifier": "X"},
                    "EndDeviceGroups": [{"mRID": "all"}],
                },
                "reaches 3 meters",
            ),
        ]
        dispatcher = lab.with_commands(
            enabled={
                **lab.dispatcher.commands.enabled,
                "MeterConfig": True,
                "EndDeviceFirmware": True,
            }
        )
        for noun, verb, payload, words in cases:
            async with asyncio.timeout(HANG):
                out = await dispatcher(noun, verb, payload)
            assert out.result == "FAILED" and codes(out) == {"LimitExceeded"}, (noun, out)
            assert words in details(out), (noun, details(out))
            assert "commands.max_meters_per_request" in details(out)
        assert sessions(lab) == 0
        # within the cap: served (and failing on the dead meters)
        out = await dispatcher(
            "EndDeviceControls",
            "create",
            {"EndDeviceControl": [{**ping, "EndDeviceGroups": [{"mRID": "pair"}]}]},
        )
        assert out.result == "FAILED" and codes(out) == {"MeterFailed"}
        # a MeterConfig setting naming the same meters again adds no meter (one session)
        same = await dispatcher(
            "MeterConfig",
            "change",
            {
                "Settings": [
                    {
                        "EndDeviceGroups": [{"mRID": "pair"}],
                        "class_id": 1,
                        "obis": "0.0.97.98.10.255",
                        "attribute": 2,
                        "value": {"type": "unsigned", "value": v},
                    }
                    for v in (1, 2, 3)
                ]
            },
        )
        assert "LimitExceeded" not in codes(same), details(same)


async def test_groups_only_where_the_noun_takes_them(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        out = await lab(
            "EndDeviceControls",
            "create",
            {
                "EndDeviceControl": [
                    {
                        "EndDeviceControlType": {"ref": "disconnect"},
                        "EndDeviceGroups": [{"mRID": "all"}],
                    }
                ]
            },
        )
        assert codes(out) == {"InvalidRequest"}
        assert "EndDeviceGroups: not taken here (only ping takes groups" in details(out)
        assert sessions(lab) == 0


# -- noun enablement ----------------------------------------------------------------------
async def test_disabled_nouns_are_refused_naming_the_key(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        m = lab.meters[0]
        for noun, verb, payload in (
            (
                "EndDeviceFirmware",
                "create",
                {"EndDeviceFirmware": {"imageIdentifier": "X"}, "EndDevices": one(m)},
            ),
            (
                "MeterConfig",
                "change",
                {
                    "Settings": [
                        {
                            "EndDevices": one(m),
                            "class_id": 1,
                            "obis": "0.0.97.98.10.255",
                            "attribute": 2,
                            "value": {"type": "unsigned", "value": 1},
                        }
                    ]
                },
            ),
        ):
            out = await lab(noun, verb, payload)
            assert out.result == "FAILED" and codes(out) == {"NounDisabled"}
            assert f"commands.enabled.{noun} = true" in details(out)
        off = lab.with_commands(
            enabled={**lab.dispatcher.commands.enabled, "ReadingsReport": False}
        )
        out = await off("ReadingsReport", "get", {"EndDevices": one(m)})
        assert codes(out) == {"NounDisabled"}
        on = lab.with_commands(
            enabled={**lab.dispatcher.commands.enabled, "EndDeviceFirmware": True}
        )
        out = await on(
            "EndDeviceFirmware",
            "create",
            {"EndDeviceFirmware": {"imageIdentifier": "X"}, "EndDevices": one(m)},
        )
        assert codes(out) == {"ImageRefused"}
        assert sessions(lab) == 0


# -- dates, numbers, shapes: never an exception -----------------------------------------
@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
async def test_extreme_and_impossible_dates_never_raise(tmp_path: Path, when: str) -> None:
    async with dead_fleet(tmp_path, enable=("EndDeviceFirmware",)) as lab:
        m = lab.meters[0]
        await lab.head.datastore.record_readings(m, [], blocks(recent(4)))
        whole = when.replace(".999999", "")
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("MeterReadings", "get", {"EndDevices": one(m), "timeSchedule": {"start": when}}),
            (
                "MeterReadings",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": "2026-01-01T00:00:00Z", "end": when},
                },
            ),
            (
                "MeterReadings",
                "get",
                {"EndDevices": one(m), "timeSchedule": {"start": when}, "fromStore": True},
            ),
            (
                "CustomerMeterDataSet",
                "get",
                {"EndDevices": one(m), "timeSchedule": {"start": when}},
            ),
            (
                "CustomerMeterDataSet",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": "2026-01-01T00:00:00Z", "end": when},
                },
            ),
            (
                "ReadingsReport",
                "get",
                {"EndDevices": one(m), "timeSchedule": {"start": when}, "intervalSeconds": 86400},
            ),
            (
                "ReadingsReport",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": "2026-01-01T00:00:00Z", "end": when},
                },
            ),
            (
                "EndDeviceControls",
                "create",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "demandResponse"},
                            "EndDevices": one(m),
                            "demandLimit": {"value": 2, "unit": "kW"},
                            "scheduledInterval": {"start": when, "end": "9999-12-31T23:59:59Z"},
                        }
                    ]
                },
            ),
            (
                "EndDeviceControls",
                "create",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "demandResponse"},
                            "EndDevices": one(m),
                            "demandLimit": {"value": 2, "unit": "kW"},
                            "scheduledInterval": {"start": "2026-01-01T00:00:00Z", "end": when},
                        }
                    ]
                },
            ),
            (
                "EndDeviceFirmware",
                "create",
                {
                    "EndDevices": one(m),
                    "EndDeviceFirmware": {"imageIdentifier": "X", "activationTime": whole},
                },
            ),
            (
                "PricingStructureConfig",
                "change",
                {
                    "EndDevices": one(m),
                    "PricingStructure": {
                        "calendarName": "C",
                        "seasons": [{"name": "S", "start": "01-01", "week": "W"}],
                        "weeks": [{"name": "W", "days": [1] * 7}],
                        "dayProfiles": [{"id": 1, "actions": [{"start": "00:00", "tariff": 1}]}],
                        "activation": whole,
                    },
                },
            ),
        ]
        for noun, verb, payload in requests:
            async with asyncio.timeout(HANG):
                out = await lab(noun, verb, payload)
            assert out.result in ("OK", "PARTIAL", "FAILED"), (noun, out)
            if out.result == "FAILED":
                assert out.errors and all(e["details"] for e in out.errors), (noun, out)
        # the impossible ones are named as such
        if when.startswith("2026-"):
            out = await lab(
                "CustomerMeterDataSet",
                "get",
                {"EndDevices": one(m), "timeSchedule": {"start": when}},
            )
            assert "is not a valid date and time" in details(out)


async def test_hostile_numbers_and_shapes_are_invalid_not_crashes(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        m = lab.meters[0]
        limit = {"EndDeviceControlType": {"ref": "limit"}, "EndDevices": one(m)}
        cases: list[tuple[str, str, Any, str]] = [
            (
                "EndDeviceControls",
                "create",
                {"EndDeviceControl": [{**limit, "demandLimit": {"value": 1e308, "unit": "kW"}}]},
                "outside 1 W",
            ),
            (
                "EndDeviceControls",
                "create",
                {
                    "EndDeviceControl": [
                        {**limit, "demandLimit": {"value": float("nan"), "unit": "W"}}
                    ]
                },
                "outside 1 W",
            ),
            (
                "EndDeviceControls",
                "create",
                {
                    "EndDeviceControl": [
                        {**limit, "demandLimit": {"value": float("inf"), "unit": ["W"]}}
                    ]
                },
                "demandLimit.unit",
            ),
            (
                "MeterReadings",
                "get",
                {"EndDevices": one(m), "ReadingTypes": 5},
                "ReadingTypes: must be an array",
            ),
            (
                "MeterReadings",
                "get",
                {"EndDevices": one(m), "ReadingTypes": [{"obis": "1.0.1.8.0.255"}] * 300},
                "300 entries; at most 256",
            ),
            (
                "MeterReadings",
                "get",
                {"EndDevices": one(m), "ReadingTypes": [{"obis": "1.0.1.8.0.255\n"}]},
                "is not an OBIS code",
            ),
            ("MeterReadings", "get", [1, 2], "is not an object"),
            (
                "CustomerMeterDataSet",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": "2026-01-01T00:00:00Z"},
                    "maxIntervals": 10**30,
                },
                "maxIntervals",
            ),
            (
                "ReadingsReport",
                "get",
                {
                    "EndDevices": one(m),
                    "timeSchedule": {"start": "2026-01-01T00:00:00Z"},
                    "intervalSeconds": True,
                },
                "intervalSeconds",
            ),
            (
                "PricingStructureConfig",
                "change",
                {
                    "EndDevices": one(m),
                    "PricingStructure": {
                        "calendarName": "C",
                        "seasons": [{"name": "S", "start": "01-01", "week": ["W"]}],
                        "weeks": [{"name": "W", "days": [[1]] * 7}],
                        "dayProfiles": [{"id": 1, "actions": [{"start": "00:00", "tariff": 1}]}],
                        "specialDays": [{"index": 1, "date": "12-25", "dayId": {"x": 1}}],
                        "activation": "now",
                    },
                },
                "is not the id of a dayProfiles",
            ),
            (
                "PricingStructureConfig",
                "change",
                {
                    "EndDevices": one(m),
                    "PricingStructure": {
                        "calendarName": "C",
                        "seasons": [{"name": "S", "start": "01-01", "week": "W"}],
                        "weeks": [{"name": "W", "days": [1] * 7}],
                        "dayProfiles": [
                            {"id": 1, "actions": [{"start": "00:00", "tariff": 1}] * 49}
                        ],
                        "specialDays": [{"index": 1, "date": "12-25", "dayId": 1}] * 257,
                        "activation": "now",
                    },
                },
                "specialDays: 257 entries; at most 256",
            ),
            ("EndDeviceConfig", "get", {"EndDevices": one(m), "refresh": "yes"}, "payload.refresh"),
        ]
        for noun, verb, payload, words in cases:
            async with asyncio.timeout(HANG):
                out = await lab(noun, verb, payload)
            assert out.result == "FAILED" and "InvalidRequest" in codes(out), (noun, out)
            assert words in details(out), (noun, details(out))
        assert sessions(lab) == 0


async def test_error_lists_and_echoed_text_stay_small(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        big = "x" * 100_000
        out = await lab(
            "MeterReadings",
            "get",
            {
                "EndDevices": [{"mRID": big + str(i)} for i in range(200)],
                "ReadingTypes": [{"obis": big}] * 200,
            },
        )
        assert out.result == "FAILED"
        assert len(out.errors) <= 300
        assert all(len(e["details"]) <= MAX_DETAIL_CHARS for e in out.errors)
        assert "more error(s) left out" in out.errors[-1]["details"]
        assert len(json.dumps(out.errors)) < 300 * (MAX_DETAIL_CHARS + 60)


async def test_store_reports_and_events_over_huge_windows_stay_cheap(tmp_path: Path) -> None:
    """Events and read outcomes count in SQL; a window of the whole calendar is answered
    from its stored rows (no intervalSeconds: no window arithmetic per interval)."""
    async with dead_fleet(tmp_path) as lab:
        m = lab.meters[0]
        await lab.head.datastore.record_events(m, [event("smmc.readings.gap")])
        await lab.head.datastore.record_read(m, "collect", True)
        async with asyncio.timeout(HANG):
            out = await lab(
                "ReadingsReport", "get", {"EndDevices": one(m), "timeSchedule": ANCIENT}
            )
        assert out.result == "OK", details(out)
        (rep,) = out.payload["ReadingsReport"]
        assert rep["eventCounts"] == {"3.16.59.285": 1} and rep["reads"] == {"ok": 1, "failed": 0}
        assert rep["eventTypes"] == [
            {"ref": "3.16.59.285", "name": "smmc.readings.gap", "count": 1}
        ]
        assert rep["period"]["end"] == ANCIENT["end"]


async def test_end_device_config_reply_stays_under_max_reply_bytes(tmp_path: Path) -> None:
    limit = 8192
    async with dead_fleet(tmp_path, commands={"max_reply_bytes": limit}) as lab:
        for m in lab.meters:  # discovered before: answered from the store, no session
            await lab.head.fleet.save_discovery(
                m,
                datetime.now(UTC),
                {"Meter": {"mRID": m}, "objects": [f"1.0.{i}.8.0.255" for i in range(200)]},
            )
        out = await lab("EndDeviceConfig", "get", {"EndDeviceGroups": [{"mRID": "all"}]})
        assert out.result == "PARTIAL" and codes(out) == {"Truncated"}, details(out)
        assert len(out.payload["EndDeviceConfig"]) == 1 and len(out.errors) == 2
        assert f"commands.max_reply_bytes = {limit}" in details(out)
        assert len(json.dumps(out.payload, separators=(",", ":"))) <= limit
        assert sessions(lab) == 0


async def test_deeply_nested_values_are_echoed_shallowly(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path) as lab:
        deep: Any = []
        for _ in range(980):  # about as deep as the uplink's JSON parser lets through
            deep = [deep]
        for noun, verb, payload in (
            ("EndDeviceConfig", "get", {"EndDevices": [{"mRID": deep}], "refresh": deep}),
            (
                "CustomerMeterDataSet",
                "get",
                {"EndDeviceGroups": [{"mRID": deep}], "timeSchedule": {"start": deep}},
            ),
            (
                "PricingStructureConfig",
                "create",
                {"EndDevices": one(lab.meters[0]), "PricingStructure": {"calendarName": deep}},
            ),
        ):
            out = await lab(noun, verb, payload)
            assert codes(out) == {"InvalidRequest"} and "[[[" in details(out), noun
            assert all(len(e["details"]) < 300 for e in out.errors)


async def test_live_profile_reply_pages_under_max_reply_bytes(tmp_path: Path) -> None:
    limit = 4096
    async with live_fleet(tmp_path, commands={"max_reply_bytes": limit}) as lab:
        m = lab.meters[0]
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start, end = now - timedelta(hours=20), now - timedelta(hours=2)
        whole = lab.with_commands(max_reply_bytes=1 << 20)
        full = await whole(
            "MeterReadings",
            "get",
            {"EndDevices": one(m), "timeSchedule": {"start": iso(start), "end": iso(end)}},
        )
        assert full.result == "OK", details(full)
        expected = [
            iv["timeStamp"]
            for iv in full.payload["MeterReading"][0]["IntervalBlocks"][0]["IntervalReadings"]
        ]
        assert len(expected) >= 60
        seen: list[str] = []
        nxt = start
        for _ in range(40):
            out = await lab(
                "MeterReadings",
                "get",
                {"EndDevices": one(m), "timeSchedule": {"start": iso(nxt), "end": iso(end)}},
            )
            assert len(json.dumps(out.payload, separators=(",", ":"))) <= limit
            assert "MeterReading" in out.payload, details(out)
            seen += [
                iv["timeStamp"]
                for iv in out.payload["MeterReading"][0]["IntervalBlocks"][0]["IntervalReadings"]
            ]
            if out.result == "OK":
                break
            assert codes(out) == {"Truncated"}, details(out)
            assert f"commands.max_reply_bytes = {limit}" in details(out)
            nxt = datetime.fromisoformat(
                details(out).split("timeSchedule.start = ")[1].split()[0].replace("Z", "+00:00")
            )
        else:
            raise AssertionError("the paging never ended")
        assert seen == expected
