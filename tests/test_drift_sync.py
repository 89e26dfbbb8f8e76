"""Drift-triggered time sync (issue 11 item 8, aspect 13's "drift detected"): a collection
that sees the meter clock off by more than the threshold syncs it (once per meter per
min interval, kept across restarts), and every adjustment reads back the meter's last
clock synchronisation (0.0.96.2.12.255) and reports it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smmc_gateway.usecases import clock as clock_uc
from smmc_gateway.usecases.clock import FixedTimeSource

from tests.issue11_support import lab
from tests.support_sim import FleetSpec, running_fleet
from tests.test_usecase_support import session_to

DRIFT = {"drift_threshold_s": 30.0, "drift_min_interval_s": 3600.0}


def skew(sim: object, seconds: float) -> None:
    """Move the simulated meter's clock by ``seconds`` (no adjustment is logged)."""
    clock = sim.fleet.meters[0].meter.clock  # type: ignore[attr-defined]
    clock.base += timedelta(seconds=seconds)


def last_sync_in(details: str) -> datetime:
    found = re.search(r"last_clock_sync (\S+Z)", details)
    assert found is not None, details
    return datetime.fromisoformat(found[1].replace("Z", "+00:00"))


async def test_a_collection_that_sees_drift_syncs_the_clock_once(tmp_path: Path) -> None:
    async with (
        running_fleet(FleetSpec(meters=1, time_offset_s=45)) as sim,
        lab(tmp_path, sim, head=DRIFT) as lb,
    ):
        (meter,) = lb.meters
        await lb.head.collect(meter)
        (drift,) = lb.uplink.named("smmc.clock.driftDetected", meter)
        assert drift["reason"] == "driftThreshold"
        found = re.match(
            r"deviation \+(\d+\.\d+)s over clock_drift_threshold 30s", drift["details"]
        )
        assert found is not None and abs(float(found[1]) - 45) < 2
        (adjusted,) = lb.uplink.named("smmc.clock.adjusted", meter)
        assert "method shift_time" in adjusted["details"]
        assert abs((last_sync_in(adjusted["details"]) - datetime.now(UTC)).total_seconds()) < 5
        assert abs(lb.fleet.state(meter).clock_deviation_s or 99) < 2
        # the collection itself was published before the sync
        assert lb.uplink.readings and lb.uplink.readings[0][0] == meter
        # drifting again within the min interval: no second sync, until a restart...
        skew(sim, 50)
        await lb.head.collect(meter)
        assert len(lb.uplink.named("smmc.clock.adjusted", meter)) == 1
        assert (lb.fleet.state(meter).clock_deviation_s or 0) > 45  # measured, kept
        async with lab(tmp_path, sim, head=DRIFT) as again:
            # ... nor after a restart, which keeps the mark
            await again.head.collect(meter)
            assert again.uplink.named("smmc.clock.driftDetected") == []
            assert again.uplink.readings


async def test_within_the_threshold_or_with_detection_off_nothing_is_synced(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1, time_offset_s=20)) as sim:
        async with lab(tmp_path, sim, head=DRIFT) as lb:
            await lb.head.collect(lb.meters[0])
            assert lb.uplink.events == []
            assert 18 < (lb.fleet.state(lb.meters[0]).clock_deviation_s or 0) < 22
        skew(sim, 60)
        async with lab(tmp_path, sim) as lb:  # drift detection off
            await lb.head.collect(lb.meters[0])
            assert lb.uplink.events == []
            # not even read: still the first collection's measurement, not the skewed ~80 s
            assert 18 < (lb.fleet.state(lb.meters[0]).clock_deviation_s or 0) < 22


async def test_last_clock_sync_follows_each_adjustment(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1, time_offset_s=-300)) as sim:
        info = {**sim.info[0]}
        async with session_to(sim.ports[0], info) as s:
            before = await clock_uc.read_last_sync(s)
            assert before < datetime.now(UTC) - timedelta(minutes=4)  # made, never synced
            result = await clock_uc.synchronise(s, info["meter_id"], FixedTimeSource(synced=True))
            assert result.method == "shift_time"
            after = await clock_uc.read_last_sync(s)
            assert abs((after - datetime.now(UTC)).total_seconds()) < 3


async def test_a_clock_sync_command_reports_the_meters_last_clock_sync(tmp_path: Path) -> None:
    async with (
        running_fleet(FleetSpec(meters=1, time_offset_s=90)) as sim,
        lab(tmp_path, sim) as lb,
    ):
        (meter,) = lb.meters
        out = await lb.dispatcher(
            "EndDeviceControls",
            "create",
            {
                "EndDeviceControl": [
                    {"EndDeviceControlType": {"ref": "clockSync"}, "EndDevices": [{"mRID": meter}]}
                ]
            },
        )
        (entry,) = out.payload["EndDeviceControl"]
        assert entry["result"] == "OK"
        assert abs((last_sync_in(entry["details"]) - datetime.now(UTC)).total_seconds()) < 5
