"""Use cases 3 and 11: the data store (insert, ranges, paging, retention, gaps) and, end to
end, a customer query answered with the meter off and a report naming a gap."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway.headend.datastore import (
    DataStore,
    TooMuchStored,
    expected_stamps,
    find_gaps,
    infer_period,
)
from smmc_gateway.headend.persistence import open_fleet_store
from smmc_gateway.simulator.layout import LOAD_PROFILE
from smmc_gateway.uplink.envelope import Event, Reading, event, meter_readings_payload
from test_daemon_e2e import GW, gateway, lab, on, online, reply, request, send
from uplink_helpers import validate

from tests.support_sim import FleetSpec, running_fleet

T0 = datetime(2026, 11, 1, tzinfo=UTC)
P = 900
A_PLUS = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"  # 1.0.1.8.0.255 in Wh, a register read
A_PLUS_15 = "0.0.2.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"  # the same sampled every 15 minutes
DEVICE_ID = "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"  # 0.0.96.1.0.255: not a measurement


def _blocks(stamps: list[datetime], base: int = 100) -> bytes:
    ivs = [
        {"timeStamp": s.isoformat().replace("+00:00", "Z"), "value": base + i}
        for i, s in enumerate(stamps)
    ]
    return json.dumps(
        [
            {
                "ReadingType": {"ref": A_PLUS_15, "obis": "1.0.1.8.0.255", "unit": "Wh"},
                "IntervalReadings": ivs,
            }
        ]
    ).encode()


@pytest.fixture
async def data(tmp_path: Path) -> AsyncIterator[DataStore]:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    try:
        yield DataStore(store)
    finally:
        await store.close()


def test_gaps_are_ranges_of_missing_aligned_stamps() -> None:
    stamps = [(T0 + timedelta(seconds=P * i)).timestamp() for i in (0, 1, 2, 5, 6, 9)]
    end = T0 + timedelta(seconds=P * 10)
    gaps = find_gaps(stamps, T0, end, P)
    assert [(g.start, g.end, g.missing) for g in gaps] == [
        (T0 + timedelta(seconds=3 * P), T0 + timedelta(seconds=4 * P), 2),
        (T0 + timedelta(seconds=7 * P), T0 + timedelta(seconds=8 * P), 2),
    ]
    assert expected_stamps(T0, end, P) == 10
    assert expected_stamps(T0 + timedelta(seconds=1), end, P) == 9  # T0 itself is outside
    assert infer_period(stamps) == P
    assert infer_period([]) is None
    assert find_gaps([], T0, T0 + timedelta(seconds=2 * P), P)[0].missing == 2


async def test_query_returns_the_range_only_with_types_kept(data: DataStore) -> None:
    stamps = [T0 + timedelta(seconds=P * i) for i in range(8)]
    regs = [
        Reading(ref=A_PLUS, obis="1.0.1.8.0.255", unit="Wh", timestamp=T0, value=12.5),
        Reading(ref=DEVICE_ID, obis="0.0.96.1.0.255", unit="", timestamp=stamps[7], value="SN1"),
    ]
    await data.record_readings("m1", regs, _blocks(stamps))
    await data.record_readings("m2", [], _blocks(stamps, base=900))
    await data.record_readings("m1", [], _blocks(stamps[:2]))  # again: no duplicates
    got = await data.query("m1", stamps[1], stamps[4])
    (block,) = got.blocks
    assert [iv["value"] for iv in block["IntervalReadings"]] == [101, 102, 101 + 2]
    assert block["IntervalReadings"][0]["timeStamp"] == "2026-11-01T00:15:00Z"
    assert block["ReadingType"] == {"ref": A_PLUS_15, "obis": "1.0.1.8.0.255", "unit": "Wh"}
    assert got.readings == [] and not got.truncated
    whole = await data.query("m1", T0, T0 + timedelta(days=1))
    assert [r["value"] for r in whole.readings] == [12.5, "SN1"]
    assert whole.intervals == 8
    assert (await data.query("m3", T0, T0 + timedelta(days=1))).blocks == []


async def test_a_long_range_is_truncated_and_pages_to_the_end(data: DataStore) -> None:
    stamps = [T0 + timedelta(seconds=P * i) for i in range(10)]
    await data.record_readings("m1", [], _blocks(stamps))
    seen: list[str] = []
    start, pages = T0, 0
    while True:
        got = await data.query("m1", start, T0 + timedelta(days=1), max_intervals=4)
        seen += [iv["timeStamp"] for iv in got.blocks[0]["IntervalReadings"]]
        pages += 1
        if not got.truncated:
            break
        assert got.intervals == 4 and got.next_start is not None
        start = got.next_start
    assert pages == 3 and len(seen) == 10 == len(set(seen))


async def test_report_counts_intervals_gaps_reads_and_events(data: DataStore) -> None:
    have = [T0 + timedelta(seconds=P * i) for i in range(12) if i not in (4, 5, 6)]
    await data.record_readings("m1", [], _blocks(have))
    await data.record_read("m1", "collect", True, at=T0 + timedelta(minutes=5))
    await data.record_read("m1", "collect", False, "TimeoutError()", at=T0 + timedelta(hours=1))
    await data.record_read("m1", "collect", True, at=T0 - timedelta(hours=1))  # outside
    names = [
        "smmc.meter.remoteDisconnection",
        "smmc.switch.disconnected",
        "smmc.switch.disconnected",
        "smmc.readings.gap",
    ]
    ev = [
        event(n, mrid=f"e{i}", created=T0 + timedelta(minutes=i), reason="r", details="d")
        for i, n in enumerate(names)
    ]
    ev.append(Event(mrid="old", created=T0, name="a.b"))  # a stored name without a code
    await data.record_events("m1", ev)
    await data.record_events("m1", ev[:1])  # the same event twice counts once
    rep = await data.report("m1", T0, T0 + timedelta(seconds=12 * P))
    doc = rep.as_json()
    validate({"ReadingsReport": [doc]}, "readings-report")
    assert (doc["expectedIntervals"], doc["receivedIntervals"]) == (12, 9)
    assert doc["readSuccessRate"] == 0.75 and doc["intervalSeconds"] == P
    assert doc["gaps"] == [
        {"start": "2026-11-01T01:00:00Z", "end": "2026-11-01T01:30:00Z", "missing": 3}
    ]
    assert doc["reads"] == {"ok": 1, "failed": 1}
    # counted by IEC 61968-9 code (the meter's and the gateway's disconnections share
    # 3.31.0.68), each name beside with its own count
    assert doc["eventCounts"] == {"0.0.0.0": 1, "3.16.59.285": 1, "3.31.0.68": 3}
    assert doc["eventTypes"] == [
        {"ref": "0.0.0.0", "name": "a.b", "count": 1},
        {"ref": "3.16.59.285", "name": "smmc.readings.gap", "count": 1},
        {"ref": "3.31.0.68", "name": "smmc.meter.remoteDisconnection", "count": 1},
        {"ref": "3.31.0.68", "name": "smmc.switch.disconnected", "count": 2},
    ]
    # a given period wins over the inferred one
    assert (await data.report("m1", T0, T0 + timedelta(hours=3), 1800)).expected == 6
    empty = (await data.report("m9", T0, T0 + timedelta(hours=1))).as_json()
    assert empty["readSuccessRate"] is None and empty["intervalSeconds"] is None


async def test_retention_prunes_old_rows_only(tmp_path: Path) -> None:
    store = open_fleet_store(tmp_path / "fleet.sqlite")
    try:
        old, new = T0 - timedelta(days=2), T0
        data = DataStore(store, retention_days=1, clock=lambda: old.timestamp())
        await data.record_readings(
            "m1",
            [Reading(ref=A_PLUS, obis="1.0.1.8.0.255", unit="Wh", timestamp=old, value=1)],
            _blocks([old, new]),
        )
        await data.record_events("m1", [event("smmc.readings.gap", mrid="x", created=old)])
        await data.record_read("m1", "collect", True, at=old)
        assert await data.prune(T0) == 4
        got = await data.query("m1", old, T0 + timedelta(days=1))
        assert got.intervals == 1 and got.readings == []
        # the daily prune runs on a write: a store whose clock says T0 + 2 days drops the rest
        later = DataStore(
            store, retention_days=1, clock=lambda: (T0 + timedelta(days=2)).timestamp()
        )
        await later.record_readings("m1", [], _blocks([T0 + timedelta(days=2)]))
        assert (await later.query("m1", old, T0 + timedelta(days=3))).intervals == 1
        with pytest.raises(ValueError, match="retention_days"):
            DataStore(store, retention_days=0)
    finally:
        await store.close()


# -- end to end: collection -> store -> query with the meter off, report with a gap -----
async def test_customer_query_served_with_meter_off_and_report_names_the_gap(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        rows = meter.objects[LOAD_PROFILE].rows  # type: ignore[attr-defined]
        del rows[-7:-4]  # three intervals the meter never captured (an outage)
        async with gateway(lab(sim, tmp_path, mosquitto)):
            await online(col)
            await col.wait(lambda ms: bool(on(col, f"meter/{m}/readings")), 30)
            (published,) = on(col, f"meter/{m}/readings")[:1]
            ivs = published["payload"]["MeterReading"][0]["IntervalBlocks"][0]
            stamps = [iv["timeStamp"] for iv in ivs["IntervalReadings"]]
            sim.fleet.power_outage(0)  # from here on the meter answers nothing
            assert not meter.powered
            window = {"start": stamps[0], "end": "2099-01-01T00:00:00Z"}
            await send(
                mosquitto,
                "MeterReadings",
                request(
                    "cust-1",
                    {"EndDevices": [{"mRID": m}], "timeSchedule": window, "fromStore": True},
                    verb="get",
                    noun="MeterReadings",
                ),
            )
            doc = await reply(col, "cust-1")
            assert doc["reply"]["result"] == "OK", doc["reply"]
            validate(doc["payload"], "meter-readings")
            (mr,) = doc["payload"]["MeterReading"]
            got = [
                iv["timeStamp"] for b in mr["IntervalBlocks"][:1] for iv in b["IntervalReadings"]
            ]
            assert got == stamps
            assert mr["IntervalBlocks"][0]["IntervalReadings"] == ivs["IntervalReadings"]
            assert len(mr["Readings"]) == 4

            await send(
                mosquitto,
                "CustomerMeterDataSet",
                request(
                    "cust-2",
                    {"EndDevices": [{"mRID": m}], "timeSchedule": window, "maxIntervals": 5},
                    verb="get",
                    noun="CustomerMeterDataSet",
                ),
            )
            doc = await reply(col, "cust-2")
            assert doc["reply"]["result"] == "PARTIAL"
            (err,) = doc["reply"]["errors"]
            assert (
                err["code"] == "Truncated" and f"timeSchedule.start = {stamps[5]}" in err["details"]
            )

            await send(
                mosquitto,
                "ReadingsReport",
                request(
                    "rep-1",
                    {
                        "EndDevices": [{"mRID": m}],
                        "timeSchedule": {"start": stamps[0], "end": stamps[-1]},
                    },
                    verb="get",
                    noun="ReadingsReport",
                ),
            )
            doc = await reply(col, "rep-1")
            assert doc["reply"]["result"] == "OK", doc["reply"]
            validate(doc["payload"], "readings-report")
            (rep,) = doc["payload"]["ReadingsReport"]
            assert rep["intervalSeconds"] == 900
            assert [g["missing"] for g in rep["gaps"]] == [3]
            assert rep["expectedIntervals"] == rep["receivedIntervals"] + 3
            # reads and events are counted when they happened (now): a window up to later
            await send(
                mosquitto,
                "ReadingsReport",
                request(
                    "rep-2",
                    {"EndDevices": [{"mRID": m}], "timeSchedule": window},
                    verb="get",
                    noun="ReadingsReport",
                ),
            )
            (rep,) = (await reply(col, "rep-2"))["payload"]["ReadingsReport"]
            assert rep["reads"]["ok"] >= 1
            validate({"ReadingsReport": [rep]}, "readings-report")
            assert rep["eventCounts"].get("3.16.59.285", 0) >= 1  # the gateway's own gap event
            assert {"ref": "3.16.59.285", "name": "smmc.readings.gap"}.items() <= next(
                t for t in rep["eventTypes"] if t["name"] == "smmc.readings.gap"
            ).items()

            await send(
                mosquitto,
                "ReadingsReport",
                request(
                    "rep-bad",
                    {"EndDevices": [{"mRID": "nope"}], "timeSchedule": {"start": "yesterday"}},
                    verb="create",
                    noun="ReadingsReport",
                ),
            )
            doc = await reply(col, "rep-bad")
            assert doc["reply"]["result"] == "FAILED"
            details = " | ".join(e["details"] for e in doc["reply"]["errors"])
            assert "ReadingsReport takes get" in details
            assert "timeSchedule.start: 'yesterday' is not UTC ISO-8601" in details
            assert "meter 'nope' is not configured" in details


async def test_meter_readings_goes_to_the_store_only_when_asked() -> None:
    from smmc_gateway.headend.commands.meter_readings import StoredOrLiveReadings
    from smmc_gateway.uplink.client import Outcome

    live_calls: list[dict[str, Any]] = []

    async def live(verb: str, payload: dict[str, Any]) -> Outcome:
        live_calls.append(payload)
        return Outcome("OK")

    handler = StoredOrLiveReadings(None, live)  # type: ignore[arg-type]
    assert (await handler("get", {"EndDevices": [{"mRID": "m"}]})).result == "OK"
    assert live_calls == [{"EndDevices": [{"mRID": "m"}]}]
    bad = await handler("get", {"fromStore": "yes"})
    assert (
        bad.result == "FAILED"
        and "payload.fromStore: 'yes' is not true or false" in bad.errors[0]["details"]
    )
    assert len(live_calls) == 1


# -- bounded work (issue 7 item 6) ------------------------------------------------------
def _gaps_by_walking(stamps: list[int], start: int, end: int, p: int) -> list[tuple[int, int, int]]:
    """The definition, one expected stamp at a time (the old O(window) way)."""
    have = set(stamps)
    out: list[tuple[int, int, int]] = []
    run: list[int] = []
    for t in range(-(-start // p) * p, end, p):
        if t in have:
            if run:
                out.append((run[0], run[-1], len(run)))
            run = []
        else:
            run.append(t)
    if run:
        out.append((run[0], run[-1], len(run)))
    return out


@settings(max_examples=300, deadline=None)
@given(
    p=st.sampled_from([1, 2, 3, 7, 60]),
    start=st.integers(-200, 200),
    length=st.integers(-5, 300),
    stamps=st.lists(st.integers(-250, 550), max_size=40),
)
def test_gaps_from_stored_stamps_match_the_definition(
    p: int, start: int, length: int, stamps: list[int]
) -> None:
    a = datetime.fromtimestamp(start, UTC)
    b = datetime.fromtimestamp(start + length, UTC)
    got = [
        (int(g.start.timestamp()), int(g.end.timestamp()), g.missing)
        for g in find_gaps([float(s) for s in stamps], a, b, p)
    ]
    assert got == _gaps_by_walking(stamps, start, start + length, p)
    assert expected_stamps(a, b, p) == len(range(-(-start // p) * p, start + length, p))


@pytest.mark.timeout(20)
def test_gaps_cost_what_is_stored_not_the_window() -> None:
    """Year 1 to year 9999 at 1 s is 3e11 expected stamps: the old loop walked them all."""
    first, last = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert expected_stamps(first, last, 1) == int(last.timestamp() - first.timestamp())
    (gap,) = find_gaps([], first, last, 1)
    assert gap.start == first and gap.missing == expected_stamps(first, last, 1)
    mid = [(T0 + timedelta(seconds=P * i)).timestamp() for i in range(3)]
    gaps = find_gaps(mid, first, last, P)
    assert len(gaps) == 2 and gaps[0].end == T0 - timedelta(seconds=P)
    assert gaps[1].start == T0 + timedelta(seconds=3 * P)
    # a fractional end: the stamp just before it still counts
    assert expected_stamps(T0, T0 + timedelta(seconds=P, microseconds=1), P) == 2


async def test_report_reads_at_most_max_stamps_and_cuts_at_max_gaps(data: DataStore) -> None:
    have = [T0 + timedelta(seconds=P * i) for i in range(0, 40, 2)]  # 20 stamps, 20 gaps
    await data.record_readings("m1", [], _blocks(have))
    await data.record_read("m1", "collect", True, at=T0 + timedelta(seconds=30 * P))
    end = T0 + timedelta(seconds=40 * P)
    with pytest.raises(TooMuchStored, match="more than 19"):
        await data.report("m1", T0, end, P, max_stamps=19)
    full = await data.report("m1", T0, end, P, max_stamps=20)
    assert (full.expected, full.received, len(full.gaps), full.truncated) == (40, 20, 20, False)
    cut = await data.report("m1", T0, end, P, max_gaps=5)
    assert cut.truncated and cut.end == T0 + timedelta(seconds=11 * P)  # the 6th gap
    assert (cut.expected, cut.received, len(cut.gaps)) == (11, 6, 5)
    assert cut.reads_ok == 0  # the read at 30 P is after the cut: counted on the next page
    rest = await data.report("m1", cut.end, end, P, max_gaps=50)
    assert (rest.expected + cut.expected, rest.received + cut.received) == (40, 20)
    assert rest.reads_ok == 1 and len(rest.gaps) + len(cut.gaps) == 20
    assert rest.as_json()["period"]["start"] == "2026-11-01T02:45:00Z"


async def test_query_cuts_at_a_byte_budget_and_pages_through_everything(data: DataStore) -> None:
    stamps = [T0 + timedelta(seconds=P * i) for i in range(50)]
    regs = [
        Reading(ref=A_PLUS, obis="1.0.1.8.0.255", unit="Wh", timestamp=s, value=i)
        for i, s in enumerate(stamps)
    ]
    await data.record_readings("m1", regs, _blocks(stamps))
    whole = await data.query("m1", T0, T0 + timedelta(days=1))
    assert not whole.truncated and whole.intervals == 50 and len(whole.readings) == 50
    seen: list[str] = []
    readings = 0
    start, pages = T0, 0
    while True:
        got = await data.query("m1", start, T0 + timedelta(days=1), max_bytes=1500)
        pages += 1
        rendered = len(meter_readings_payload([got.part()]))
        assert rendered <= 1500 and got.size >= rendered - 100
        seen += [iv["timeStamp"] for iv in got.blocks[0]["IntervalReadings"]]
        readings += len(got.readings)
        if not got.truncated:
            break
        assert got.by_bytes and got.next_start is not None
        start = got.next_start
    assert (
        pages > 3
        and seen == [iv["timeStamp"] for iv in whole.blocks[0]["IntervalReadings"]]
        and readings == 50
    )
    # a budget smaller than one stamp still moves on (one stamp per page)
    tiny = await data.query("m1", T0, T0 + timedelta(days=1), max_bytes=10)
    assert tiny.intervals == 1 and tiny.next_start == stamps[1]
    # register rows are bounded too
    few = await data.query("m1", T0, T0 + timedelta(days=1), max_register_rows=7)
    assert len(few.readings) == 7 and few.next_start == stamps[7] and few.intervals == 7


async def test_rows_stored_before_the_cim_codes_are_migrated(tmp_path: Path) -> None:
    """A store written by a gateway before the IEC 61968-9 codes answers with codes."""
    import re
    import sqlite3

    from smmc_gateway.headend.datastore import migrate_reading_types
    from smmc_gateway.headend.persistence import MIGRATIONS

    path = tmp_path / "fleet.sqlite"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0].statements:  # what the old code created
        conn.execute(statement)
    t0 = T0.timestamp()
    conn.execute(
        "INSERT INTO ds_register VALUES (?,?,?,?,?,?)",
        ("m1", "1.0.1.8.0.255", "active_energy_import", "Wh", t0, "5"),
    )
    conn.executemany(
        "INSERT INTO ds_interval VALUES (?,?,?,?,?,?,?)",
        [
            ("m1", "obis:1.0.1.8.0.255", "1.0.1.8.0.255", "Wh", t0 + 900 * i, str(i), None)
            for i in range(3)
        ],
    )
    conn.commit()
    conn.close()
    store = open_fleet_store(path)
    try:
        data = DataStore(store)
        got = await data.query("m1", T0, T0 + timedelta(hours=1))
        code = re.compile(r"-?\d+(\.-?\d+){17}")
        assert [r["ref"] for r in got.readings] and all(
            code.fullmatch(r["ref"]) for r in got.readings
        )
        (block,) = got.blocks
        assert code.fullmatch(block["ReadingType"]["ref"])
        assert block["ReadingType"]["ref"].split(".")[2] == "2"  # 15-minute measuring period
        assert len(block["IntervalReadings"]) == 3

        def again(conn: sqlite3.Connection) -> int:
            return migrate_reading_types(conn)

        assert await store.submit(again) == 0  # idempotent
    finally:
        await store.close()


def test_interval_values_are_stored_as_the_json_encoder_writes_them() -> None:
    """Finite floats and ints take a short path; everything else goes through json."""
    from smmc_gateway.headend.datastore import _json_value

    values = [0, -7, 2**70, 1.5, -0.0, 1e-05, 123456789.123, 1e300, float("nan"), float("inf")]
    values += [True, None, "x", {"a": [1, 2.5]}]
    for v in values:
        assert _json_value(v) == json.dumps(v), v
