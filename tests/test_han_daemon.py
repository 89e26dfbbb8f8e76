"""Use cases 4 and 8 (customer side) end to end: a real Mosquitto, a simulated meter with
HAN devices and a customer, the gateway daemon. A device that joins is pushed, discovered
and published as MasterDataLinkageConfig; the central system installs it with its key
(wrapped), links it to a usage point, removes it; the display gets a message, prices and
a DR event; the customer interface is switched; the customer's opt-out becomes an event.
Every payload is checked against docs/schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from smmc_gateway import _core
from smmc_gateway.simulator.han import aes_cbc_zero_iv
from test_daemon_e2e import GW, gateway, lab, on, online, reply, request, send
from test_usecase_key_change_mqtt import with_master_key
from uplink_helpers import validate, validate_message, wait_until

from tests.support_sim import FleetSpec, free_ports, running_fleet

USER_KEY = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
MDLC = "MasterDataLinkageConfig"


def names(col: Collector, meter: str) -> list[str]:
    return [
        e["EndDeviceEventType"]["name"]
        for d in on(col, f"{meter}/events")
        for e in d["payload"]["EndDeviceEvent"]
    ]


def linkages(col: Collector, meter: str) -> list[dict[str, Any]]:
    out = []
    for d in on(col, f"/meter/{meter}/linkage"):
        validate(d, "envelope")
        validate(d["payload"], "master-data-linkage-config")
        assert d["header"]["noun"] == MDLC
        out.append(d["payload"][MDLC][0])
    return out


async def test_han_devices_join_are_installed_with_a_key_and_removed(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    push = free_ports(1)[0]
    spec = FleetSpec(
        meters=1, han_devices=2, han_join_after_s=None, push_destination=f"127.0.0.1:{push}"
    )
    async with running_fleet(spec) as sim:
        rt = sim.fleet.meters[0]
        m = rt.meter_id
        config = with_master_key(
            sim,
            lab(sim, tmp_path, mosquitto, push_port=push, enable=("hanKeys",)),
            rt.credentials.kek,
        )
        async with gateway(config):
            await online(col)
            # a display joins the bus: the meter installs it and pushes its alarm
            display = sim.info[0]["han"][0]
            assert sim.fleet.han_join(0, 0) == 1
            await col.wait(lambda ms: any(str(x.topic).endswith(f"{m}/linkage") for x in ms), 30)
            (first,) = linkages(col, m)
            assert first["ConfigurationEvent"]["reason"] == "hanAlarm"
            (dev,) = first["EndDevice"]
            assert (dev["serialNumber"], dev["deviceType"], dev["linked"]) == (
                display["identification"],
                "customerUnit",
                False,
            )
            await col.wait(lambda ms: "smmc.han.deviceJoined" in names(col, m), 10)
            assert "smmc.alarm.mbusDeviceDiscovered" in names(col, m)

            # the central system links it to a usage point and gives it its key
            default = bytes.fromhex(display["default_key"])
            key = {
                "encryptionKey": _core.aes_key_wrap(rt.credentials.kek, USER_KEY).hex(),
                "transferKey": aes_cbc_zero_iv(default, USER_KEY, decrypt=False).hex(),
            }
            body = {
                "ConfigurationEvent": {"reason": "hanInstall"},
                "Meter": [{"mRID": m}],
                "EndDevice": [
                    {
                        "serialNumber": display["identification"],
                        "mRID": "ihd-1",
                        "UsagePoint": {"mRID": "up-7"},
                        "key": key,
                    }
                ],
            }
            validate(body, "master-data-linkage-config-request")
            await send(mosquitto, MDLC, request("han-1", body, noun=MDLC))
            doc = await reply(col, "han-1")
            validate_message(json.dumps(doc).encode())
            validate(doc["payload"], "master-data-linkage-config")
            assert doc["reply"]["result"] == "OK", doc["reply"]
            (entry,) = doc["payload"][MDLC]
            (installed,) = entry["EndDevice"]
            assert installed["encryptionKeyStatus"] == "encryptionKeyInUse"
            assert installed["UsagePoint"] == {"mRID": "up-7"} and installed["mRID"] == "ihd-1"
            assert entry["results"][0]["steps"][-1] == "device read (capture)"
            device = rt.meter.han.present[int(display["identification"], 16)]
            assert device.user_key == USER_KEY
            await col.wait(
                lambda ms: (
                    linkages(col, m)[-1]["EndDevice"][0].get("UsagePoint") == {"mRID": "up-7"}
                ),
                10,
            )
            assert "smmc.han.deviceInstalled" in names(col, m)

            # the device stops answering: pushed, and the linkage says so
            sim.fleet.han_leave(0, int(display["identification"]))
            await col.wait(
                lambda ms: linkages(col, m)[-1]["EndDevice"][0]["reachable"] is False, 30
            )
            assert "smmc.han.deviceUnreachable" in names(col, m)

            # listed on request, then removed by its mRID
            await send(
                mosquitto, MDLC, request("han-get", {"Meter": [{"mRID": m}]}, verb="get", noun=MDLC)
            )
            got = await reply(col, "han-get")
            validate(got["payload"], "master-data-linkage-config")
            assert (
                got["payload"][MDLC][0]["EndDevice"][0]["serialNumber"] == display["identification"]
            )
            remove = {
                "ConfigurationEvent": {"reason": "hanRemove"},
                "Meter": [{"mRID": m}],
                "EndDevice": [{"mRID": "ihd-1"}],
            }
            validate(remove, "master-data-linkage-config-request")
            await send(mosquitto, MDLC, request("han-2", remove, verb="change", noun=MDLC))
            gone = await reply(col, "han-2")
            assert gone["reply"]["result"] == "OK", gone["reply"]
            assert gone["payload"][MDLC][0]["EndDevice"] == []
            await col.wait(lambda ms: linkages(col, m)[-1]["EndDevice"] == [], 10)
            assert "smmc.han.deviceRemoved" in names(col, m)
    # no key, wrapped or not, in anything the gateway published
    published = [x for x in col.messages if "/cmd/" not in str(x.topic)]
    assert len(published) > 10
    for x in published:
        assert USER_KEY.hex() not in x.payload.decode()  # type: ignore[union-attr]
        assert key["encryptionKey"] not in x.payload.decode()  # type: ignore[union-attr]
        assert key["transferKey"] not in x.payload.decode()  # type: ignore[union-attr]
    for d in on(col, f"{m}/events"):
        validate_message(json.dumps(d).encode())


def control(ref: str, meter: str, **extra: Any) -> dict[str, Any]:
    return {
        "EndDeviceControl": [
            {"EndDeviceControlType": {"ref": ref}, "EndDevices": [{"mRID": meter}], **extra}
        ]
    }


def iso(offset_s: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def test_the_customer_display_interface_and_opt_out(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    push = free_ports(1)[0]
    spec = FleetSpec(meters=1, cip_period_s=0.5, push_destination=f"127.0.0.1:{push}")
    async with running_fleet(spec) as sim, gateway(lab(sim, tmp_path, mosquitto, push_port=push)):
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        await online(col)
        cases = {
            "msg-1": control(
                "displayMessage", m, textMessage="Corte programado 12/03", messageCode="17"
            ),
            "price-1": control(
                "priceSignal",
                m,
                PanPricingDetail=[
                    {"priceTier": 1, "price": 152.3},
                    {"priceTier": 2, "price": 98},
                    {"priceTier": 3, "price": 120},
                    {"priceTier": 4, "price": 80.25},
                ],
            ),
            "dr-1": control(
                "demandResponseEvent",
                m,
                drProgramLevel=1,
                scheduledInterval={"start": iso(3600), "end": iso(7200)},
                demandLimit={"value": 2, "unit": "kW"},
            ),
            "off-1": control("customerInterface", m, enabled=False),
        }
        tiers = {1: Decimal("152.3"), 2: Decimal(98), 3: Decimal(120), 4: Decimal("80.25")}

        def shown() -> bool:  # the DR announcement and the active tariff's new price
            v = meter.display.view
            return (
                v is not None
                and v.code == "DR1"
                and v.tariff is not None
                and v.price is not None
                and Decimal(v.price) == tiers[v.tariff]
            )

        for cid, body in cases.items():
            if cid == "off-1":
                await wait_until(shown, 10)
            validate(body, "end-device-controls-request")
            await send(mosquitto, "EndDeviceControls", request(cid, body))
            doc = await reply(col, cid)
            validate_message(json.dumps(doc).encode())
            assert doc["reply"]["result"] == "OK", (cid, doc["reply"])
            cases[cid] = doc["payload"]["EndDeviceControl"][0]
        assert cases["msg-1"]["consumerMessage"] == {
            "textMessage": "Corte programado 12/03",
            "messageCode": "17",
        }
        prices = {p["priceTier"]: p["price"] for p in cases["price-1"]["PanPricingDetail"]}
        assert prices == {1: "152.30", 2: "98.00", 3: "120.00", 4: "80.25"}
        dr = cases["dr-1"]
        assert dr["demandResponseEvent"]["consumerMessage"]["messageCode"] == "DR1"
        assert dr["limiter"]["thresholdEmergency"] == 2000
        assert cases["off-1"]["customerInterface"] == {"enabled": False}
        await wait_until(lambda: meter.display.stale, 10)  # it keeps its last view
        assert shown()
        # the customer cannot opt out on the display now, but at the meter's interface
        assert sim.fleet.customer_opt_out(0, "ihd") is False
        assert sim.fleet.customer_opt_out(0, "local") is True
        await col.wait(lambda ms: "smmc.customer.optOut" in names(col, m), 30)
        (opt,) = [
            e
            for d in on(col, f"{m}/events")
            for e in d["payload"]["EndDeviceEvent"]
            if e["EndDeviceEventType"]["name"] == "smmc.customer.optOut"
        ]
        assert opt["reason"] == "customerOptOut"
        got = names(col, m)
        assert got.count("smmc.customer.displayUpdated") == 3
        assert "smmc.customer.interfaceDisabled" in got
        assert "smmc.limiter.emergencyScheduled" in got
    for d in on(col, f"{m}/events"):
        validate_message(json.dumps(d).encode())
