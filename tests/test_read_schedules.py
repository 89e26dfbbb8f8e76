"""MeterReadSchedule (issue 11 item 3): when a schedule reads (windows, stable jitter), the
scheduler's timed jobs (added, replaced, removed while it runs), the noun's create /
change / delete / get with its bounds, persistence, and a schedule that reads a
simulated meter and publishes."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway.headend.dispatcher import Dispatcher
from smmc_gateway.headend.read_schedules import next_run, seconds_of_day
from uplink_helpers import validate, wait_until

from tests.issue11_support import lab
from tests.support_sim import FleetSpec, running_fleet

DAY = 86400
A_PLUS = "1.0.1.8.0.255"
A_PLUS_CODE = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"


def test_slots_of_a_window_each_meter_at_its_own_offset() -> None:
    day = 20_000 * DAY  # a midnight, UTC
    window = (0, 4 * 3600)  # 00:00..04:00, hourly
    runs = []
    at = day - 1.0
    for _ in range(8):
        at = next_run(3600, window, 0.5, at)
        runs.append(at - day)
    # four slots a day, each half way into its hour, then the next day
    assert runs[:4] == [1800, 5400, 9000, 12600]
    assert runs[4] - DAY == 1800
    # offsets differ by meter and stay in their slot
    assert next_run(3600, window, 0.0, day - 1) == day
    assert next_run(3600, window, 0.999, day - 1) < day + 3600


def test_a_window_across_midnight_and_a_last_slot_shorter_than_the_period() -> None:
    day = 20_000 * DAY
    window = (22 * 3600, 2 * 3600)  # 22:00..02:00, every 3 h: slots 22:00 and 01:00
    first = next_run(3 * 3600, window, 0.9, day + 12 * 3600)
    assert first - day == 22 * 3600 + 0.9 * 3 * 3600  # 00:42 the next day, in the window
    second = next_run(3 * 3600, window, 0.9, first)
    # 01:00 + 0.9 x the hour left of the window (not of the 3 h period): 01:54
    assert second - day == DAY + 3600 + 0.9 * 3600


@settings(max_examples=300, deadline=None)
@given(
    after=st.floats(1.6e9, 2.0e9),
    period=st.integers(60, DAY),
    start=st.integers(0, DAY - 1),
    length=st.integers(1, DAY),
    frac=st.floats(0, 0.999),
)
def test_every_run_is_after_the_moment_and_inside_the_window(
    after: float, period: int, start: int, length: int, frac: float
) -> None:
    end = (start + length) % DAY
    window = None if end == start else (start, end)
    run = next_run(period, window, frac, after)
    assert run > after
    assert run - after <= DAY + period  # never skips a day
    if window is not None:
        assert (run - start) % DAY < length  # inside [start, end)


def test_seconds_of_day() -> None:
    assert seconds_of_day("04:00") == 14400 and seconds_of_day("23:59:59") == DAY - 1
    assert seconds_of_day("24:00") is None and seconds_of_day("4:00") is None


async def test_timed_jobs_run_are_replaced_and_removed(tmp_path: Path) -> None:
    async with lab(tmp_path) as lb:
        ran: list[tuple[str, str]] = []

        def soon(meter: str, after: float) -> float:
            return after + 0.05

        async def job_a(meter: str) -> None:
            ran.append(("a", meter))

        async def job_b(meter: str) -> None:
            ran.append(("b", meter))

        runner = asyncio.create_task(lb.scheduler.run())
        lb.scheduler.at_times("x", ["m0", "m1"], soon, job_a)
        await wait_until(lambda: {m for k, m in ran if k == "a"} == {"m0", "m1"})
        lb.scheduler.at_times("x", ["m2"], soon, job_b)  # replaces: only m2, only b
        await wait_until(lambda: ("b", "m2") in ran)
        mark = len(ran)
        await asyncio.sleep(0.3)
        assert all(k == "b" and m == "m2" for k, m in ran[mark:])
        assert lb.scheduler.remove("x") and not lb.scheduler.remove("x")
        mark = len(ran)
        await asyncio.sleep(0.3)
        assert len(ran) <= mark + 1  # one already started may finish; then nothing
        assert lb.scheduler.timed_jobs() == []
        await lb.scheduler.stop(1)
        await runner


def schedule(mrid: str = "s1", check: bool = True, **kw: Any) -> dict[str, Any]:
    """A schedule request (valid against the request schema unless ``check`` is False)."""
    doc: dict[str, Any] = {
        "mRID": mrid,
        "EndDevices": [{"mRID": "m0"}],
        "ReadingTypes": [{"obis": A_PLUS}],
        "TimeSchedule": {"recurrencePeriod": 3600, "window": {"start": "00:00", "end": "04:00"}},
    }
    doc.update(kw)
    if check:
        validate(doc, "meter-read-schedule-request")
    return doc


async def test_create_change_get_delete_and_the_replies_follow_the_schema(tmp_path: Path) -> None:
    async with lab(tmp_path) as lb:
        d = lb.dispatcher
        out = await d(
            "MeterReadSchedule",
            "create",
            schedule(
                EndDeviceGroups=[{"mRID": "pair"}],
                ReadingTypes=[{"ref": A_PLUS_CODE}, {"obis": "1.0.99.1.0.255"}],
            ),
        )
        assert out.result == "OK", out.errors
        validate(dict(out.payload), "meter-read-schedule")
        (item,) = out.payload["MeterReadSchedule"]
        assert item["meters"] == 2 and item["mRID"] == "s1"
        nxt = datetime.fromisoformat(item["nextRun"].replace("Z", "+00:00"))
        assert nxt.hour < 4 and nxt > datetime.now(UTC)  # in the window, ahead
        assert lb.scheduler.timed_jobs() == ["schedule:s1"]
        again = await d("MeterReadSchedule", "create", schedule())
        assert again.result == "FAILED" and "exists" in again.errors[0]["details"]
        changed = await d(
            "MeterReadSchedule",
            "change",
            schedule(EndDevices=[{"mRID": "m2"}], TimeSchedule={"recurrencePeriod": 86400}),
        )
        assert changed.result == "OK", changed.errors
        assert changed.payload["MeterReadSchedule"][0]["meters"] == 1
        assert "window" not in changed.payload["MeterReadSchedule"][0]["TimeSchedule"]
        got = await d("MeterReadSchedule", "get", {})
        validate(dict(got.payload), "meter-read-schedule")
        assert [s["mRID"] for s in got.payload["MeterReadSchedule"]] == ["s1"]
        assert got.payload["MeterReadSchedule"][0]["EndDevices"] == [{"mRID": "m2"}]
        gone = await d("MeterReadSchedule", "delete", {"mRID": "s1"})
        assert gone.result == "OK" and gone.payload["MeterReadSchedule"][0]["deleted"]
        validate(dict(gone.payload), "meter-read-schedule")
        assert lb.scheduler.timed_jobs() == []
        missing = await d("MeterReadSchedule", "delete", {"mRID": "s1"})
        assert missing.result == "FAILED" and missing.errors[0]["code"] == "NotFound"
        unknown = await d("MeterReadSchedule", "change", schedule("nope"))
        assert "make it with verb create" in unknown.errors[0]["details"]


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        (schedule(TimeSchedule={"recurrencePeriod": 60}), "commands.min_read_interval"),
        (
            schedule(
                TimeSchedule={
                    "recurrencePeriod": 3600,
                    "window": {"start": "04:00", "end": "04:00"},
                }
            ),
            "leave window out",
        ),
        (
            schedule(
                check=False,
                TimeSchedule={
                    "recurrencePeriod": 3600,
                    "window": {"start": "25:00", "end": "04:00"},
                },
            ),
            "not a UTC time of day",
        ),
        (
            schedule(ReadingTypes=[{"ref": "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"}]),
            "is not the ReadingType of a register of model 'default'",
        ),
        (schedule(EndDevices=[{"mRID": "nope"}]), "'nope' is not configured"),
        ({**schedule(), "mRID": "has space"}, "not a schedule id"),
        ({**schedule(), "ReadingTypes": []}, "non-empty array"),
    ],
)
async def test_a_bad_schedule_is_refused_naming_the_problem(
    tmp_path: Path, doc: dict[str, Any], text: str
) -> None:
    async with lab(tmp_path) as lb:
        out = await lb.dispatcher("MeterReadSchedule", "create", doc)
        assert out.result == "FAILED" and out.errors[0]["code"] == "InvalidRequest"
        assert any(text in e["details"] for e in out.errors), out.errors
        assert lb.scheduler.timed_jobs() == []


async def test_the_caps_on_schedules_name_the_limit(tmp_path: Path) -> None:
    async with lab(
        tmp_path, commands={"max_read_schedules": 3, "max_read_schedules_per_meter": 2}
    ) as lb:
        d = lb.dispatcher
        for i in range(2):
            assert (await d("MeterReadSchedule", "create", schedule(f"s{i}"))).result == "OK"
        over = await d(
            "MeterReadSchedule",
            "create",
            schedule("s2", EndDeviceGroups=[{"mRID": "all"}], EndDevices=[]),
        )
        assert over.errors[0]["code"] == "LimitExceeded"
        assert "m0" in over.errors[0]["details"]
        assert "commands.max_read_schedules_per_meter = 2" in over.errors[0]["details"]
        # changing one of m0's two schedules is not adding a third
        assert (await d("MeterReadSchedule", "change", schedule("s1"))).result == "OK"
        assert (
            await d("MeterReadSchedule", "create", schedule("s2", EndDevices=[{"mRID": "m1"}]))
        ).result == "OK"
        full = await d("MeterReadSchedule", "create", schedule("s3", EndDevices=[{"mRID": "m2"}]))
        assert full.errors[0]["code"] == "LimitExceeded"
        assert "commands.max_read_schedules = 3" in full.errors[0]["details"]
        narrow = Dispatcher(lb.head, commands=replace(d.commands, max_meters_per_request=1))
        fan = await narrow(
            "MeterReadSchedule",
            "create",
            schedule("s9", EndDeviceGroups=[{"mRID": "pair"}], EndDevices=[]),
        )
        assert fan.errors[0]["code"] == "LimitExceeded"
        assert "max_meters_per_request" in fan.errors[0]["details"]


async def test_schedules_survive_a_restart(tmp_path: Path) -> None:
    async with lab(tmp_path) as lb:
        assert (await lb.dispatcher("MeterReadSchedule", "create", schedule())).result == "OK"
        assert (await lb.dispatcher("MeterReadSchedule", "create", schedule("s2"))).result == "OK"
        assert (await lb.dispatcher("MeterReadSchedule", "delete", {"mRID": "s2"})).result == "OK"
    async with lab(tmp_path) as lb:  # the same state directory: a restart
        assert lb.scheduler.timed_jobs() == []
        assert await lb.dispatcher.read_schedules.load() == 1
        assert lb.scheduler.timed_jobs() == ["schedule:s1"]
        got = await lb.dispatcher("MeterReadSchedule", "get", {"mRID": "s1"})
        assert got.payload["MeterReadSchedule"][0]["ReadingTypes"] == [{"obis": A_PLUS}]


async def test_a_schedule_reads_its_meters_in_its_window_and_a_deleted_one_stops(
    tmp_path: Path,
) -> None:
    async with (
        running_fleet(FleetSpec(meters=3)) as sim,
        lab(tmp_path, sim, commands={"min_read_interval_s": 60.0}) as lb,
    ):
        meters = lb.meters
        runner = asyncio.create_task(lb.scheduler.run())
        start = time.time() + 2
        win = {"start": _hms(start), "end": _hms(start + 4)}
        doc = schedule(
            "night",
            EndDevices=[{"mRID": meters[0]}, {"mRID": meters[1]}],
            TimeSchedule={"recurrencePeriod": 3600, "window": win},
        )
        stop = schedule(
            "stopped",
            EndDevices=[{"mRID": meters[2]}],
            TimeSchedule={"recurrencePeriod": 3600, "window": win},
        )
        assert (await lb.dispatcher("MeterReadSchedule", "create", doc)).result == "OK"
        assert (await lb.dispatcher("MeterReadSchedule", "create", stop)).result == "OK"
        assert (
            await lb.dispatcher("MeterReadSchedule", "delete", {"mRID": "stopped"})
        ).result == "OK"
        await wait_until(lambda: len(lb.uplink.readings) >= 2, 20)
        seen = time.time()
        await asyncio.sleep(max(0.0, start + 6 - time.time()))
        read = {m: regs for m, regs, _ in lb.uplink.readings}
        assert set(read) == {meters[0], meters[1]}  # the deleted schedule's meter: never
        for regs in read.values():
            assert [r["obis"] for r in regs] == [A_PLUS]
            assert start - 1 <= regs[0]["timestamp"].timestamp() <= start + 5
        assert seen <= start + 6
        report = await lb.head.datastore.report(
            meters[0], datetime.fromtimestamp(start - 60, UTC), datetime.now(UTC)
        )
        assert report.reads_ok == 1  # kept as a scheduled read (use case "schedule")
        await lb.scheduler.stop(1)
        await runner


def _hms(epoch: float) -> str:
    t = datetime.fromtimestamp(epoch, UTC)
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def test_reads_resolve_by_obis_code_and_profile() -> None:
    from smmc_gateway.headend.read_schedules import resolve
    from smmc_gateway.ops.config_sections import model_section
    from smmc_gateway.ops.config_values import Problems

    model = model_section("default", {}, Problems())
    reads = resolve(
        model, [{"ref": A_PLUS_CODE}, {"obis": "1.0.99.1.0.255"}, {"obis": "1.0.32.7.0.255"}]
    )
    assert reads.profile
    assert [r.obis for r in reads.registers] == [A_PLUS, "1.0.32.7.0.255"]
    assert reads.registers[0].name == "active_energy_import"  # the model's, with its unit


async def test_a_get_of_many_schedules_stays_under_the_reply_bound(tmp_path: Path) -> None:
    async with lab(
        tmp_path, commands={"max_reply_bytes": 4096, "max_read_schedules_per_meter": 64}
    ) as lb:
        for i in range(12):
            out = await lb.dispatcher(
                "MeterReadSchedule",
                "create",
                schedule(f"sched-{i:02d}", EndDeviceGroups=[{"mRID": "all"}]),
            )
            assert out.result == "OK", out.errors
        got = await lb.dispatcher("MeterReadSchedule", "get", {})
        assert got.result == "PARTIAL"
        kept = [s["mRID"] for s in got.payload["MeterReadSchedule"]]
        assert 0 < len(kept) < 12
        (err,) = got.errors
        assert err["code"] == "Truncated" and "sched-11" in err["details"]
        assert len(json.dumps(dict(got.payload))) < 4096
