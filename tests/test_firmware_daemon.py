"""EndDeviceFirmware through the daemon: a real Mosquitto, simulated meters, the gateway.

A signed image from the firmware directory reaches every meter named (meters and
groups), per-meter progress events arrive, one reply ends the campaign; an unknown or
tampered image and bad requests get one FAILED reply naming the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from conftest import Broker
from test_daemon_e2e import gateway, lab, on, online, reply, request, send
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, running_fleet

SAMPLES = Path(__file__).resolve().parent.parent / "firmware-images"
IMAGE = "smmc-sim-2.0.0.img"
GW = "gw-test"


def install_images(config: Path) -> Path:
    fw = config.parent / "state" / "firmware"
    (fw / "trusted-keys").mkdir(parents=True)
    for name in (IMAGE, IMAGE + ".manifest.json"):
        shutil.copy(SAMPLES / name, fw / name)
    shutil.copy(SAMPLES / "TEST-ONLY-signing-key.pub", fw / "trusted-keys" / "test.pub")
    return fw


def campaign(
    ident: str, meters: list[str], groups: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "EndDeviceFirmware": {"imageIdentifier": ident, **spec},
        "EndDevices": [{"mRID": m} for m in meters],
    }
    if groups:
        body["EndDeviceGroups"] = [{"mRID": g} for g in groups]
    return body


async def test_campaign_over_mqtt(mosquitto: Broker, collector: Any, tmp_path: Path) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2)) as sim:
        config = lab(sim, tmp_path, mosquitto, enable=("EndDeviceFirmware",))
        fw = install_images(config)
        ids = [i["meter_id"] for i in sim.info]
        async with gateway(config):
            await online(col)
            body = campaign("SMMC-SIM-2.0.0", [], ["all"], maxConcurrent=1)
            validate(body, "end-device-firmware-request")
            await send(
                mosquitto, "EndDeviceFirmware", request("fw-1", body, noun="EndDeviceFirmware")
            )
            doc = await reply(col, "fw-1")
            validate_message(json.dumps(doc).encode())
            assert doc["reply"]["result"] == "OK", doc["reply"]
            results = {r["EndDevices"][0]["mRID"]: r for r in doc["payload"]["results"]}
            assert set(results) == set(ids)
            assert all(
                r["version"] == "SMMC-SIM-2.0.0" and r["step"] == "activated"
                for r in results.values()
            )
            assert all(rt.meter.firmware_version == "SMMC-SIM-2.0.0" for rt in sim.fleet.meters)

            def activated_seen(ms: Any) -> bool:  # the reply may overtake the last event
                text = b"".join(x.payload for x in ms)
                return text.count(b"smmc.firmware.activated") >= len(ids)

            await col.wait(activated_seen, 30)
            for m in ids:
                kinds = [
                    e["EndDeviceEventType"]
                    for ev in on(col, f"/meter/{m}/events")
                    for e in ev["payload"].get("EndDeviceEvent", [])
                    if e["EndDeviceEventType"]["name"].startswith("smmc.firmware.")
                ]
                for kind in kinds:
                    validate(kind, "firmware-event-types")  # the name with its 61968-9 code
                steps = [k["name"] for k in kinds]
                assert kinds[-1]["ref"] == "3.11.283.4"  # Firmware · Activation · Activated
                assert steps[0] == "smmc.firmware.started", steps
                assert steps[-1] == "smmc.firmware.activated", steps
                assert "smmc.firmware.progress" in steps and "smmc.firmware.verified" in steps

            # tampered image: refused before any meter is touched
            data = bytearray((fw / IMAGE).read_bytes())
            data[10] ^= 0xFF
            (fw / IMAGE).write_bytes(bytes(data))
            await send(
                mosquitto,
                "EndDeviceFirmware",
                request("fw-2", campaign("SMMC-SIM-2.0.0", ids[:1]), noun="EndDeviceFirmware"),
            )
            doc = await reply(col, "fw-2")
            assert doc["reply"]["result"] == "FAILED"
            (err,) = doc["reply"]["errors"]
            assert err["code"] == "ImageRefused" and "altered" in err["details"]

            # unknown image, bad fields: FAILED naming each path
            await send(
                mosquitto,
                "EndDeviceFirmware",
                request("fw-3", campaign("NOPE", ids[:1]), noun="EndDeviceFirmware"),
            )
            doc = await reply(col, "fw-3")
            assert "no image with identifier 'NOPE'" in doc["reply"]["errors"][0]["details"]
            await send(
                mosquitto,
                "EndDeviceFirmware",
                request(
                    "fw-4",
                    campaign("", ["ghost"], activationTime="soon", maxConcurrent=0),
                    noun="EndDeviceFirmware",
                ),
            )
            doc = await reply(col, "fw-4")
            details = "\n".join(e["details"] for e in doc["reply"]["errors"])
            for path in (
                "payload.EndDeviceFirmware.imageIdentifier",
                "payload.EndDeviceFirmware.activationTime: 'soon'",
                "payload.EndDeviceFirmware.maxConcurrent: 0",
                "payload.EndDevices[0].mRID: meter 'ghost'",
            ):
                assert path in details, details


async def test_campaign_resumes_after_a_gateway_restart(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from tests.support_sim import FaultOptions

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    # a slow meter (100 ms per answer: the transfer takes > 2 s) and a short stop deadline,
    # so the stop lands in the middle of the transfer
    async with running_fleet(FleetSpec(meters=1, faults=FaultOptions(delay_s=0.1))) as sim:
        config = lab(sim, tmp_path, mosquitto, enable=("EndDeviceFirmware",))
        install_images(config)
        meter = sim.info[0]["meter_id"]
        async with gateway(config, flush_deadline_s=0.5, stop_deadline_s=0.5):
            await online(col)
            await send(
                mosquitto,
                "EndDeviceFirmware",
                request("fw-r", campaign("SMMC-SIM-2.0.0", [meter]), noun="EndDeviceFirmware"),
            )

            # stop once the meter has reported progress beyond the first (0%) event
            await col.wait(
                lambda ms: len([x for x in ms if b"smmc.firmware.progress" in x.payload]) >= 2, 30
            )
        assert not on(col, "/reply/fw-r"), "the campaign must not be answered before it ends"
        image = sim.fleet.meters[0].meter.image
        held_at_stop = len(image.blocks)
        assert 0 < held_at_stop < image.block_count
        async with gateway(config):
            doc = await reply(col, "fw-r")
        assert doc["reply"]["result"] == "OK", doc["reply"]
        assert sim.fleet.meters[0].meter.firmware_version == "SMMC-SIM-2.0.0"
        verified = [
            e["details"]
            for ev in on(col, f"/meter/{meter}/events")
            for e in ev["payload"].get("EndDeviceEvent", [])
            if e["EndDeviceEventType"]["name"] == "smmc.firmware.verified"
        ]
        assert verified and "0 already held" not in verified[-1], verified


async def test_scheduled_activation_over_mqtt(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        config = lab(sim, tmp_path, mosquitto, enable=("EndDeviceFirmware",))
        install_images(config)
        meter = sim.info[0]["meter_id"]
        at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        when = at.isoformat().replace("+00:00", "Z")
        async with gateway(config):
            await online(col)
            await send(
                mosquitto,
                "EndDeviceFirmware",
                request(
                    "fw-s",
                    campaign("SMMC-SIM-2.0.0", [meter], activationTime=when),
                    noun="EndDeviceFirmware",
                ),
            )
            doc = await reply(col, "fw-s")
        assert doc["reply"]["result"] == "OK", doc["reply"]
        assert doc["payload"]["EndDeviceFirmware"]["activationTime"] == when
        assert datetime.now(UTC) >= at
        refs = [
            e["EndDeviceEventType"]["name"]
            for ev in on(col, f"/meter/{meter}/events")
            for e in ev["payload"].get("EndDeviceEvent", [])
        ]
        assert "smmc.firmware.activationScheduled" in refs
        assert sim.fleet.meters[0].meter.firmware_version == "SMMC-SIM-2.0.0"
