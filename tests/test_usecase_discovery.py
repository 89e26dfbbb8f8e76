"""Use case 1 — registration and discovery against the simulator and a real Mosquitto.

The use case reads the object list, identification and time zone, and names the model
objects the meter lacks; the fleet state keeps the summary (also in an old state file);
the daemon discovers new meters once at start and publishes EndDeviceConfig (retained)
on meter/{meter}/config; EndDeviceConfig get answers from the stored summary or, with
refresh, discovers again.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from conftest import Broker
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.ops.config import load_config
from smmc_gateway.ops.config_model import DEFAULT_OBIS, ModelConfig, RegisterSpec
from smmc_gateway.ops.config_sections import DEFAULT_REGISTERS
from smmc_gateway.usecases.discovery import discover
from test_daemon_e2e import GW, gateway, lab, on, online, reply, request, send
from test_usecase_support import session_to
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, running_fleet


def _model(registers: tuple[RegisterSpec, ...] = DEFAULT_REGISTERS, **obis: str) -> ModelConfig:
    return ModelConfig("default", MappingProxyType({**DEFAULT_OBIS, **obis}), 900.0, registers)


async def test_discovery_reads_identity_time_zone_and_object_list() -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        meter.clock.time_zone = 240  # Chile standard time, UTC-4
        info = sim.info[0]
        async with session_to(sim.ports[0], info) as s:
            found = await discover(s, info["meter_id"], _model(), datetime.now(UTC))
    serial = meter.options.serial
    assert found.identification["deviceId"] == serial
    assert found.identification["logicalDeviceName"] == "SMM" + serial
    assert found.identification["firmwareVersion"] == meter.firmware_version
    assert "deviceId2" not in found.identification  # the simulator has no 0.0.96.1.1.255
    assert found.time_zone == 240
    assert found.dst_enabled is not None
    obis = {o for _, _, o in found.objects}
    assert {"0.0.40.0.0.255", "0.0.1.0.0.255", "0.0.17.0.0.255"} <= obis
    assert (8, 0, "0.0.1.0.0.255") in found.objects
    assert len(found.objects) == len(obis) > 30
    # the default model against this meter: only objects the gateway can do without lack
    assert found.mismatches == []
    assert found.saps == [(1, "SMM" + serial)]
    (sec,) = found.security
    assert sec["obis"] == "0.0.43.0.1.255" and sec["securitySuite"] == 0
    assert sec["serverSystemTitle"] == sim.info[0]["system_title"].lower()
    assert "end_of_billing_script 0.0.10.0.1.255" in found.absent_optional
    summary = found.summary()
    validate({"EndDeviceConfig": [summary]}, "end-device-config")
    assert summary["objectCount"] == len(found.objects)


async def test_a_wrong_model_is_named_object_by_object() -> None:
    regs = (*DEFAULT_REGISTERS, RegisterSpec("1.0.15.8.0.255", "abs_energy", None, None))
    model = _model(regs, limiter="0.0.17.0.9.255", clock="0.0.96.1.0.255")
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        found = await discover(s, sim.info[0]["meter_id"], model, datetime.now(UTC))
    problems = {m.name: (m.obis, m.problem) for m in found.mismatches}
    assert problems == {
        "limiter": ("0.0.17.0.9.255", "absent from the object list"),
        "clock": ("0.0.96.1.0.255", "is class 1 (Data), expected class 8"),
        "register abs_energy": ("1.0.15.8.0.255", "absent from the object list"),
    }
    assert found.time_zone is None  # the model's "clock" is no clock: nothing read from it


async def test_fleet_keeps_discoveries_and_migrates_an_old_state_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    old = sqlite3.connect(path)  # a state file from before discovery existed
    old.executescript(
        "CREATE TABLE meter_state (meter_id TEXT PRIMARY KEY, last_entry REAL,"
        " clock_deviation_s REAL, last_attempt REAL, last_success REAL, last_error TEXT,"
        " reachable INTEGER, reads_ok INTEGER NOT NULL DEFAULT 0, reads_failed INTEGER NOT"
        " NULL DEFAULT 0, consecutive_failures INTEGER NOT NULL DEFAULT 0, energised INTEGER);"
        "INSERT INTO meter_state (meter_id, reads_ok) VALUES ('m1', 7);"
    )
    old.commit()
    old.close()
    cfg_dir = tmp_path / "cfg"
    async with running_fleet(FleetSpec(meters=2)) as sim:
        cfg = load_config(_config_for(sim, cfg_dir))
    meters = cfg.meters
    fleet = await Fleet.open(meters, path)
    a, b = (m.id for m in meters)
    assert await fleet.undiscovered() == [a, b]
    at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    await fleet.save_discovery(b, at, {"EndDevice": {"mRID": b}, "objectCount": 3})
    await fleet.close()
    fleet = await Fleet.open(meters, path)
    assert await fleet.undiscovered() == [a]
    assert await fleet.discovery(b) == {"EndDevice": {"mRID": b}, "objectCount": 3}
    assert await fleet.discovery(a) is None
    await fleet.close()
    rows = (
        sqlite3.connect(path)
        .execute("SELECT reads_ok FROM meter_state WHERE meter_id = 'm1'")
        .fetchall()
    )
    assert rows == [(7,)]  # the old rows are untouched


def _config_for(sim: Any, directory: Path) -> Path:
    from smmc_gateway.headend.labconfig import write_lab_config

    meters = [{**i, "port": p} for i, p in zip(sim.info, sim.ports, strict=True)]
    return write_lab_config(directory, meters, broker=("127.0.0.1", 1883))


def _configs(col: Any) -> list[dict[str, Any]]:
    return on(col, "/config")


async def test_daemon_discovers_new_meters_publishes_config_and_serves_get(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2)) as sim:
        path = lab(sim, tmp_path, mosquitto)
        # model default: the limiter at an OBIS code the simulated meters do not have
        path.write_text(path.read_text() + '\n[models.default.obis]\nlimiter = "0.0.17.0.9.255"\n')
        a, b = (i["meter_id"] for i in sim.info)
        async with gateway(path):
            await col.wait(
                lambda ms: (
                    {
                        d["payload"]["EndDeviceConfig"][0]["EndDevice"]["mRID"]
                        for d in _configs(ms_col(ms))
                    }
                    == {a, b}
                ),
                30,
            )
            await online(col)
            configs = [m for m in col.messages if str(m.topic).endswith("/config")]
            for m in configs:
                doc = json.loads(m.payload)  # type: ignore[arg-type]
                validate(doc, "envelope")
                validate(doc["payload"], "end-device-config")
                assert doc["header"]["noun"] == "EndDeviceConfig"
                assert doc["header"]["verb"] == "created"
                (item,) = doc["payload"]["EndDeviceConfig"]
                assert str(m.topic) == f"smmc/v1/{GW}/meter/{item['EndDevice']['mRID']}/config"
                assert item["modelMismatch"] == [
                    {
                        "name": "limiter",
                        "obis": "0.0.17.0.9.255",
                        "problem": "absent from the object list",
                    }
                ]
            first = {
                d["payload"]["EndDeviceConfig"][0]["EndDevice"]["mRID"]: d["payload"][
                    "EndDeviceConfig"
                ][0]
                for d in _configs(col)
            }
            # the mismatch is an event a utility engineer sees
            await col.wait(
                lambda ms: any(
                    e["EndDeviceEventType"]["name"] == "smmc.discovery.modelMismatch"
                    for d in on(col, f"{a}/events")
                    for e in d["payload"]["EndDeviceEvent"]
                ),
                15,
            )
            (ev,) = [
                e
                for d in on(col, f"{a}/events")
                for e in d["payload"]["EndDeviceEvent"]
                if e["EndDeviceEventType"]["name"] == "smmc.discovery.modelMismatch"
            ]
            assert "limiter 0.0.17.0.9.255: absent from the object list" in ev["details"]
            validate(ev["EndDeviceEventType"], "gateway-event-types")
            assert ev["EndDeviceEventType"]["ref"] == "3.7.0.159"  # Configuration: Mismatched

            # get: the stored summary, no new discovery
            validate({"EndDevices": [{"mRID": a}]}, "end-device-config-request")
            await send(
                mosquitto,
                "EndDeviceConfig",
                request("cfg-1", {"EndDevices": [{"mRID": a}]}, verb="get", noun="EndDeviceConfig"),
            )
            got = await reply(col, "cfg-1")
            assert got["reply"]["result"] == "OK", got
            validate(got["payload"], "end-device-config")
            assert got["payload"]["EndDeviceConfig"] == [first[a]]
            assert (
                len(
                    [
                        d
                        for d in _configs(col)
                        if d["payload"]["EndDeviceConfig"][0]["EndDevice"]["mRID"] == a
                    ]
                )
                == 1
            )

            # refresh: discovered again (the meter changed its firmware meanwhile)
            meter = sim.fleet.meters[0].meter
            assert meter is not None
            meter.firmware_version = "SMMC-SIM-2.0.0"
            await send(
                mosquitto,
                "EndDeviceConfig",
                request(
                    "cfg-2",
                    {"EndDevices": [{"mRID": a}], "refresh": True},
                    verb="get",
                    noun="EndDeviceConfig",
                ),
            )
            again = await reply(col, "cfg-2")
            assert again["reply"]["result"] == "OK", again
            (item,) = again["payload"]["EndDeviceConfig"]
            assert item["identification"]["firmwareVersion"] == "SMMC-SIM-2.0.0"
            assert first[a]["identification"]["firmwareVersion"] == "SMMC-SIM-1.0.0"
            await col.wait(
                lambda ms: (
                    len(
                        [
                            d
                            for d in _configs(col)
                            if d["payload"]["EndDeviceConfig"][0]["EndDevice"]["mRID"] == a
                        ]
                    )
                    == 2
                ),
                15,
            )

            # bad requests name the problem and touch no meter
            await send(
                mosquitto,
                "EndDeviceConfig",
                request(
                    "cfg-3",
                    {"EndDevices": [{"mRID": "nope"}], "refresh": "yes"},
                    verb="execute",
                    noun="EndDeviceConfig",
                ),
            )  # create/change/delete provision meters (issue 11)
            bad = await reply(col, "cfg-3")
            assert bad["reply"]["result"] == "FAILED"
            details = [e["details"] for e in bad["reply"]["errors"]]
            assert any("header.verb: 'execute'" in d for d in details), details
            assert any("payload.refresh: 'yes'" in d for d in details), details
            assert any("meter 'nope' is not configured" in d for d in details), details
        for m in col.messages:
            if "/reply/" in str(m.topic) or str(m.topic).endswith("/events"):
                validate_message(m.payload)  # type: ignore[arg-type]

        # a restart does not discover again: the fleet state has both meters
        before = len(_configs(col))
        async with gateway(path):
            await online(col)
            await send(
                mosquitto,
                "EndDeviceConfig",
                request(
                    "cfg-4",
                    {"EndDeviceGroups": [{"mRID": "all"}]},
                    verb="get",
                    noun="EndDeviceConfig",
                ),
            )
            both = await reply(col, "cfg-4")
            assert both["reply"]["result"] == "OK"
            assert {i["EndDevice"]["mRID"] for i in both["payload"]["EndDeviceConfig"]} == {a, b}
        assert len(_configs(col)) == before
    # retained: a consumer that subscribes later gets each meter's latest configuration
    late = await collector(mosquitto, f"smmc/v1/{GW}/meter/+/config")
    await late.wait(lambda ms: len(ms) == 2 and all(m.retain for m in ms), 15)
    latest = {
        json.loads(m.payload)["payload"]["EndDeviceConfig"][0]["EndDevice"]["mRID"]: json.loads(
            m.payload
        )["payload"]["EndDeviceConfig"][0]
        for m in late.messages
    }
    assert latest[a]["identification"]["firmwareVersion"] == "SMMC-SIM-2.0.0"


def ms_col(messages: list[Any]) -> Any:
    """Adapter: ``on`` takes a collector; wrap a message list as one."""

    class _Col:
        def __init__(self, ms: list[Any]) -> None:
            self.messages = ms

    return _Col(messages)


async def test_an_unreachable_meter_is_named_and_stays_undiscovered(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from smmc_gateway.headend.labconfig import write_lab_config

    from tests.support_sim import free_ports

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        live = {**sim.info[0], "port": sim.ports[0]}
        dead = {**sim.info[0], "meter_id": "DEAD0001", "port": free_ports(1)[0]}  # no listener
        path = write_lab_config(
            tmp_path / "gw",
            [live, dead],
            broker=(mosquitto.host, mosquitto.port),
            gateway_id=GW,
            response_timeout="2s",
        )
        async with gateway(path):
            await online(col)
            await send(
                mosquitto,
                "EndDeviceConfig",
                request(
                    "cfg-d",
                    {"EndDevices": [{"mRID": live["meter_id"]}, {"mRID": "DEAD0001"}]},
                    verb="get",
                    noun="EndDeviceConfig",
                ),
            )
            doc = await reply(col, "cfg-d")
        assert doc["reply"]["result"] == "PARTIAL", doc
        (err,) = doc["reply"]["errors"]
        assert err["code"] == "MeterFailed" and err["details"].startswith("DEAD0001: "), err
        assert [i["EndDevice"]["mRID"] for i in doc["payload"]["EndDeviceConfig"]] == [
            live["meter_id"]
        ]
        cfg = load_config(path)
        fleet = await Fleet.open(cfg.meters, tmp_path / "gw" / "state" / "fleet.sqlite")
        try:
            assert await fleet.undiscovered() == ["DEAD0001"]  # tried again on the next start
        finally:
            await fleet.close()
