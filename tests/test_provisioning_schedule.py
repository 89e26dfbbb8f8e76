"""Issue 11 item 5: a provisioned meter's own read schedule (EndDeviceConfig ``schedule``),
checked like MeterReadSchedule, kept as ``meter:<id>``, replaced, dropped and deleted with
the meter, and not changed through MeterReadSchedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from provisioning_helpers import GW_KEK, private
from smmc_gateway.headend.commands.meter_read_schedule import ReadScheduleCommands
from smmc_gateway.headend.commands.provisioning import ProvisioningCommands
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.fleet_manager import FleetManager
from smmc_gateway.headend.provisioning import ProvisionStore
from smmc_gateway.headend.read_schedules import ReadSchedules
from smmc_gateway.headend.request_limits import LimitExceeded
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.key_bundle import ClearKeys, wrap_bundle
from uplink_helpers import validate

CONFIG = """
[gateway]
id = "gw-1"
state_dir = "state"
client_system_title = "534d4d4300000009"
key_encryption_key_file = "kek.hex"
[broker]
host = "localhost"
[commands]
min_read_interval = "5m"
max_read_schedules_per_meter = 2
[commands.enabled]
provisioning = true
"""
EVERY_15_MIN = {
    "ReadingTypes": [{"obis": "1.0.1.8.0.255"}],
    "TimeSchedule": {"recurrencePeriod": 900},
}


@dataclass
class Rig:
    provisioning: ProvisioningCommands
    schedules_noun: ReadScheduleCommands
    schedules: ReadSchedules


def meter(meter_id: str, **over: Any) -> dict[str, Any]:
    keys = wrap_bundle(ClearKeys(ek=bytes(16), ak=bytes(range(16))), GW_KEK, "gw")
    out: dict[str, Any] = {
        "mRID": meter_id,
        "connection": {"kind": "tcp", "host": "10.0.0.7"},
        "security": {"level": "hls-gmac", "keys": keys},
    }
    out.update(over)
    return out


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    private(tmp_path / "kek.hex", GW_KEK.hex())
    (tmp_path / "gateway.toml").write_text(CONFIG)
    cfg = load_config(tmp_path / "gateway.toml")
    fleet = await Fleet.open([], tmp_path / "fleet.sqlite")
    sched = Scheduler(fleet, SessionFactory(), clock=lambda: 1000.0)
    manager = FleetManager(cfg, fleet, sched, SessionFactory(), ProvisionStore(fleet.store))
    await manager.start()

    async def run(*_: Any) -> None:
        return None

    schedules = ReadSchedules(fleet, sched, lambda m: cfg.models[fleet.meter(m).model], run)
    yield Rig(
        ProvisioningCommands(manager, cfg.commands, schedules),
        ReadScheduleCommands(schedules, cfg.commands),
        schedules,
    )
    await fleet.close()


async def test_a_meter_is_provisioned_with_its_own_schedule(rig: Rig) -> None:
    request = {"EndDevices": [meter("m-1", schedule=EVERY_15_MIN)]}
    validate(request, "end-device-config-request")
    out = await rig.provisioning("create", request)
    assert out.result == "OK", out.errors
    validate(out.payload, "provisioning-reply")
    assert out.payload["Provisioning"] == [
        {"mRID": "m-1", "change": "added", "schedule": "meter:m-1"}
    ]
    kept = rig.schedules.get("meter:m-1")
    assert kept is not None and kept.period_s == 900 and kept.meters == ("m-1",)
    assert rig.schedules.meters_of(kept) == ["m-1"]
    listed = await rig.schedules_noun("get", {})
    assert [s["mRID"] for s in listed.payload["MeterReadSchedule"]] == ["meter:m-1"]
    # a change without schedule keeps it; with one replaces it; null drops it
    out = await rig.provisioning("change", {"EndDevices": [{"mRID": "m-1", "groups": ["f"]}]})
    assert out.result == "OK" and rig.schedules.get("meter:m-1") is not None
    hourly = {
        **EVERY_15_MIN,
        "TimeSchedule": {"recurrencePeriod": 3600, "window": {"start": "00:00", "end": "04:00"}},
    }
    out = await rig.provisioning("change", {"EndDevices": [{"mRID": "m-1", "schedule": hourly}]})
    again = rig.schedules.get("meter:m-1")
    assert out.result == "OK" and again is not None and again.period_s == 3600
    assert again.window == (0, 4 * 3600)
    out = await rig.provisioning("change", {"EndDevices": [{"mRID": "m-1", "schedule": None}]})
    assert out.result == "OK" and rig.schedules.get("meter:m-1") is None
    assert "schedule" not in out.payload["Provisioning"][0]


async def test_deleting_the_meter_deletes_its_schedule(rig: Rig) -> None:
    await rig.provisioning("create", {"EndDevices": [meter("m-1", schedule=EVERY_15_MIN)]})
    out = await rig.provisioning("delete", {"EndDevices": [{"mRID": "m-1"}]})
    assert out.result == "OK" and rig.schedules.get("meter:m-1") is None


async def test_a_bad_schedule_is_named_and_changes_nothing(rig: Rig) -> None:
    bad = {
        "ReadingTypes": [{"obis": "1.0.1.8.0.255"}],
        "TimeSchedule": {"recurrencePeriod": 60},
        "EndDevices": [{"mRID": "other"}],
    }
    out = await rig.provisioning("create", {"EndDevices": [meter("m-1", schedule=bad)]})
    assert out.result == "FAILED"
    text = " | ".join(e["details"] for e in out.errors)
    assert "payload.EndDevices[0].schedule: unknown field(s) ['EndDevices']" in text
    assert "payload.EndDevices[0].schedule.TimeSchedule.recurrencePeriod" in text
    assert "min_read_interval" in text
    assert rig.schedules.all() == []
    out = await rig.provisioning("create", {"EndDevices": [meter("m-1")]})
    assert out.result == "OK"  # nothing of the failed request was kept
    unknown = {
        "ReadingTypes": [{"ref": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.99.0"}],
        "TimeSchedule": {"recurrencePeriod": 900},
    }
    out = await rig.provisioning("change", {"EndDevices": [{"mRID": "m-1", "schedule": unknown}]})
    assert out.result == "FAILED" and "ReadingTypes[0].ref" in out.errors[0]["details"]
    out = await rig.provisioning("create", {"EndDevices": [meter("m-2", schedule=None)]})
    assert out.result == "FAILED" and "null drops" in out.errors[0]["details"]


async def test_the_per_meter_cap_counts_the_meters_own_schedule(rig: Rig) -> None:
    await rig.provisioning("create", {"EndDevices": [meter("m-1", schedule=EVERY_15_MIN)]})
    out = await rig.schedules_noun(
        "create", {"mRID": "a", "EndDevices": [{"mRID": "m-1"}], **EVERY_15_MIN}
    )
    assert out.result == "OK"
    with pytest.raises(LimitExceeded, match="max_read_schedules_per_meter = 2"):
        await rig.schedules_noun(
            "create", {"mRID": "b", "EndDevices": [{"mRID": "m-1"}], **EVERY_15_MIN}
        )  # its own and "a" already
    await rig.provisioning("create", {"EndDevices": [meter("m-2")]})
    await rig.schedules_noun(
        "create", {"mRID": "b", "EndDevices": [{"mRID": "m-2"}], **EVERY_15_MIN}
    )
    await rig.schedules_noun(
        "create", {"mRID": "c", "EndDevices": [{"mRID": "m-2"}], **EVERY_15_MIN}
    )
    with pytest.raises(LimitExceeded, match="m-2 would be read by more than"):
        await rig.provisioning(
            "change", {"EndDevices": [{"mRID": "m-2", "schedule": EVERY_15_MIN}]}
        )
    assert rig.schedules.get("meter:m-2") is None


async def test_meter_read_schedule_does_not_change_a_meters_own(rig: Rig) -> None:
    await rig.provisioning("create", {"EndDevices": [meter("m-1", schedule=EVERY_15_MIN)]})
    out = await rig.schedules_noun(
        "change", {"mRID": "meter:m-1", "EndDevices": [{"mRID": "m-1"}], **EVERY_15_MIN}
    )
    assert out.result == "FAILED" and "EndDeviceConfig" in out.errors[0]["details"]
    out = await rig.schedules_noun("delete", {"mRID": "meter:m-1"})
    assert out.result == "FAILED" and '"schedule": null' in out.errors[0]["details"]
    assert rig.schedules.get("meter:m-1") is not None
