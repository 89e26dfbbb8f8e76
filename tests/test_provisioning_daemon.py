"""Meters provisioned over MQTT, live (issue 11 item 5): EndDeviceConfig create / change /
delete against the real daemon, Mosquitto and simulated meters. A created meter is
collected by the scheduler, reached by push, listed in the retained registry and kept
across a restart; a removed one is no longer served; bad requests change nothing.
Every payload is validated against docs/schemas/."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from provisioning_helpers import (
    GW_KEK,
    item,
    lab_with_keks,
    registry_where,
    served,
)
from test_daemon_e2e import GW, gateway, on, online, reply, request
from uplink_helpers import validate

from tests.support_sim import FleetSpec, free_ports, running_fleet


async def send(broker: Broker, noun: str, body: bytes) -> None:
    import aiomqtt

    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.publish(f"smmc/v1/{GW}/cmd/{noun}", body, qos=1)


async def ask(
    broker: Broker,
    col: Collector,
    cid: str,
    verb: str,
    payload: dict[str, Any],
    noun: str = "EndDeviceConfig",
) -> dict[str, Any]:
    await send(broker, noun, request(cid, payload, verb=verb, noun=noun))
    doc = await reply(col, cid)
    validate(doc, "envelope")
    validate(doc["reply"], "reply")
    if noun == "EndDeviceConfig" and verb in ("create", "change", "delete"):
        validate(doc["payload"], "provisioning-reply")
    return doc


def codes(doc: dict[str, Any]) -> list[str]:
    return [e["code"] for e in doc["reply"]["errors"]]


async def test_create_change_delete_live_and_after_restart(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    push_port = free_ports(1)[0]
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    spec = FleetSpec(meters=3, push_destination=f"127.0.0.1:{push_port}")
    async with running_fleet(spec) as sim:
        m0, m1, m2 = (i["meter_id"] for i in sim.info)
        config = lab_with_keks(sim, tmp_path, mosquitto, GW, [0], push_port=push_port)
        for i, _ in enumerate(sim.info):
            validate({"EndDevices": [item(sim, i)]}, "end-device-config-request")
        async with gateway(config):
            await online(col)
            reg = await registry_where(col, GW, lambda r: r["meterCount"] == 1)
            assert served(reg) == {m0: "file"}

            # create two meters: all or nothing, answered per meter
            doc = await ask(
                mosquitto,
                col,
                "p-create",
                "create",
                {"EndDevices": [item(sim, 1), item(sim, 2, groups=["feeder-7"])]},
            )
            assert doc["reply"]["result"] == "OK", doc
            assert doc["payload"]["Provisioning"] == [
                {"mRID": m1, "change": "added"},
                {"mRID": m2, "change": "added"},
            ]
            assert doc["payload"]["meterCount"] == 3
            reg = await registry_where(col, GW, lambda r: r["meterCount"] == 3)
            assert served(reg) == {m0: "file", m1: "mqtt", m2: "mqtt"}
            assert reg["lastChange"]["by"] == "provisioning"
            assert sorted(reg["lastChange"]["added"]) == sorted([m1, m2])

            # the scheduler learned them: their collections arrive without a restart
            await col.wait(
                lambda ms: any(str(m.topic).endswith(f"/meter/{m1}/readings") for m in ms), 60
            )
            # push routing learned them: a ciphered last gasp of a provisioned meter is taken
            sim.fleet.power_outage(2)
            await col.wait(
                lambda ms: any(
                    str(m.topic).endswith(f"/meter/{m2}/events")
                    and b"smmc.push.dataNotification" in m.payload  # type: ignore[operator]
                    for m in ms
                ),
                30,
            )
            sim.fleet.power_restored(2)
            # groups learned: a group request reaches the provisioned meter
            doc = await ask(
                mosquitto,
                col,
                "p-ping",
                "create",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "ping"},
                            "EndDeviceGroups": [{"mRID": "feeder-7"}],
                        }
                    ]
                },
                noun="EndDeviceControls",
            )
            assert doc["reply"]["result"] == "OK", doc

            # bad requests change nothing, each problem named with its code
            bad_key = item(sim, 1, kek=bytes(16))  # wrapped with another KEK
            bad_key["mRID"] = "m-new"
            doc = await ask(
                mosquitto,
                col,
                "p-bad",
                "create",
                {
                    "EndDevices": [
                        bad_key,
                        item(sim, 0),
                        {"mRID": "m-x", "model": "nope", "connection": {"kind": "optical"}},
                    ]
                },
            )
            assert doc["reply"]["result"] == "FAILED"
            details = " | ".join(e["details"] for e in doc["reply"]["errors"])
            assert "AlreadyExists" in codes(doc) and "InvalidRequest" in codes(doc)
            assert "payload.EndDevices[0].security.keys" in details
            assert "does not unwrap" in details
            assert "payload.EndDevices[2].model" in details and "optical" in details
            assert "configuration files" in details  # m0 is the files'
            doc = await ask(mosquitto, col, "p-file", "delete", {"EndDevices": [{"mRID": m0}]})
            assert codes(doc) == ["NotProvisioned"], doc
            doc = await ask(
                mosquitto,
                col,
                "p-clear",
                "create",
                {
                    "EndDevices": [
                        {
                            **item(sim, 1),
                            "mRID": "m-clear",
                            "security": {"level": "hls-gmac", "keys": {"ek": sim.info[1]["ek"]}},
                        }
                    ]
                },
            )
            assert doc["reply"]["result"] == "FAILED"  # a clear key is not a wrapped one

            # change: only the fields given; then delete
            doc = await ask(
                mosquitto,
                col,
                "p-change",
                "change",
                {"EndDevices": [{"mRID": m2, "groups": ["feeder-8"]}, {"mRID": m1}]},
            )
            assert doc["payload"]["Provisioning"] == [
                {"mRID": m2, "change": "changed"},
                {"mRID": m1, "change": "unchanged"},
            ]
            doc = await ask(mosquitto, col, "p-delete", "delete", {"EndDevices": [{"mRID": m1}]})
            assert doc["payload"]["Provisioning"] == [{"mRID": m1, "change": "removed"}]
            reg = await registry_where(col, GW, lambda r: r["meterCount"] == 2)
            assert served(reg) == {m0: "file", m2: "mqtt"}
            doc = await ask(
                mosquitto,
                col,
                "p-gone",
                "get",
                {"EndDevices": [{"mRID": m1}], "ReadingTypes": [{"obis": "1.0.1.8.0.255"}]},
                noun="MeterReadings",
            )
            assert doc["reply"]["result"] == "FAILED" and m1 in json.dumps(doc["reply"])

        # the database keeps the provisioned meter, its keys still wrapped
        db = sqlite3.connect(tmp_path / "gw" / "state" / "fleet.sqlite")
        rows = db.execute("SELECT meter_id, entry, keys FROM provisioned_meter").fetchall()
        db.close()
        assert [r[0] for r in rows] == [m2]
        stored = rows[0][1] + rows[0][2]
        for secret in (sim.info[2]["ek"], sim.info[2]["ak"], GW_KEK.hex()):
            assert secret.lower() not in stored.lower()

        col.messages.clear()
        async with gateway(config):  # restarted: the provisioned meter is still served
            await online(col)
            reg = await registry_where(col, GW, lambda r: r["lastChange"]["by"] == "start")
            assert served(reg) == {m0: "file", m2: "mqtt"}
            groups = {d["mRID"]: d["groups"] for d in reg["EndDevices"]}
            assert groups[m2] == ["feeder-8"]
            doc = await ask(
                mosquitto,
                col,
                "p-read",
                "get",
                {"EndDevices": [{"mRID": m2}], "ReadingTypes": [{"obis": "1.0.1.8.0.255"}]},
                noun="MeterReadings",
            )
            assert doc["reply"]["result"] == "OK", doc
    for d in on(col, "/registry"):
        validate(d["payload"], "gateway-registry")


async def test_provisioning_is_off_by_default(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2)) as sim:
        config = lab_with_keks(sim, tmp_path, mosquitto, GW, [0], enable=(), escrow=False)
        async with gateway(config):
            await online(col)
            doc = await ask(mosquitto, col, "off-1", "create", {"EndDevices": [item(sim, 1)]})
            assert codes(doc) == ["NounDisabled"]
            assert "provisioning = true" in doc["reply"]["errors"][0]["details"]
            doc = await ask(
                mosquitto,
                col,
                "off-2",
                "get",
                {"EndDevices": [{"mRID": sim.info[0]["meter_id"]}], "keyBundle": True},
            )
            assert codes(doc) == ["NounDisabled"]
            reg = await registry_where(col, GW, lambda r: True)
            assert reg["meterCount"] == 1
