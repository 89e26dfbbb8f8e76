"""Hostile requests against the real daemon (Mosquitto, simulated meters, the gateway).

An attacker with publish rights on ``cmd/`` sends what a careless or hostile central
system could: work bombs on the data store and on the meters, disabled nouns, writes
the MeterConfig allowlist does not name, fan-out past the cap, unparseable bodies, and a
flood. Each request that can be answered gets exactly one FAILED reply naming the
problem, quickly; the gateway keeps collecting; nothing it stored is lost.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiomqtt
from conftest import Broker
from test_daemon_e2e import GW, gateway, lab, on, online, reply, request, send

from tests.support_sim import FleetSpec, free_ports, running_fleet

EXTRA = """
[commands]
max_meters_per_request = 2
max_concurrent = 1
max_queued = 3
[commands.enabled]
MeterConfig = true
"""

ANCIENT = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}


def _hostile(ids: list[str]) -> list[tuple[str, str, bytes, str, str]]:
    """(correlationId, noun, body, expected error code, words the details must hold)."""
    one = [{"mRID": ids[0]}]

    def req(cid: str, noun: str, payload: dict[str, Any], verb: str = "get") -> bytes:
        return request(cid, payload, verb=verb, noun=noun)

    return [
        (
            "h-report",
            "ReadingsReport",
            req(
                "h-report",
                "ReadingsReport",
                {"EndDevices": one, "timeSchedule": ANCIENT, "intervalSeconds": 1},
            ),
            "LimitExceeded",
            "max_query_intervals",
        ),
        (
            "h-customer",
            "CustomerMeterDataSet",
            req("h-customer", "CustomerMeterDataSet", {"EndDevices": one, "timeSchedule": ANCIENT}),
            "LimitExceeded",
            "max_query_intervals",
        ),
        (
            "h-fromstore",
            "MeterReadings",
            req(
                "h-fromstore",
                "MeterReadings",
                {"EndDevices": one, "timeSchedule": ANCIENT, "fromStore": True},
            ),
            "LimitExceeded",
            "max_query_intervals",
        ),
        (
            "h-live",
            "MeterReadings",
            req("h-live", "MeterReadings", {"EndDevices": one, "timeSchedule": ANCIENT}),
            "LimitExceeded",
            "max_query_intervals",
        ),
        (
            "h-fanout",
            "EndDeviceControls",
            req(
                "h-fanout",
                "EndDeviceControls",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "ping"},
                            "EndDeviceGroups": [{"mRID": "all"}],
                        }
                    ]
                },
                verb="create",
            ),
            "LimitExceeded",
            "max_meters_per_request",
        ),
        (
            "h-many",
            "EndDeviceControls",
            req(
                "h-many",
                "EndDeviceControls",
                {
                    "EndDeviceControl": [
                        {
                            "EndDeviceControlType": {"ref": "disconnect"},
                            "EndDevices": [{"mRID": f"x{i}"} for i in range(40_000)],
                        }
                    ]
                },
                verb="create",
            ),
            "LimitExceeded",
            "max_meters_per_request",
        ),
        (
            "h-firmware",
            "EndDeviceFirmware",
            req(
                "h-firmware",
                "EndDeviceFirmware",
                {"EndDeviceFirmware": {"imageIdentifier": "X"}, "EndDevices": one},
                verb="create",
            ),
            "NounDisabled",
            "commands.enabled.EndDeviceFirmware",
        ),
        (
            "h-keys",
            "MeterConfig",
            req("h-keys", "MeterConfig", {"keyChange": {"EndDevices": one}}, verb="change"),
            "NounDisabled",
            "commands.enabled.keyChange",
        ),
        (
            "h-pushdest",
            "MeterConfig",
            req(
                "h-pushdest",
                "MeterConfig",
                {
                    "Settings": [
                        {
                            "EndDevices": one,
                            "class_id": 40,
                            "obis": "0.0.25.9.0.255",
                            "attribute": 3,
                            "value": {"type": "octet-string", "value": "00"},
                        }
                    ]
                },
                verb="change",
            ),
            "NotAllowed",
            "40",
        ),
        (
            "h-security",
            "MeterConfig",
            req(
                "h-security",
                "MeterConfig",
                {
                    "Settings": [
                        {
                            "EndDevices": one,
                            "class_id": 64,
                            "obis": "0.0.43.0.0.255",
                            "attribute": 2,
                            "value": {"type": "enum", "value": 0},
                        }
                    ]
                },
                verb="change",
            ),
            "NotAllowed",
            "64",
        ),
        (
            "h-deep",
            "MeterReadings",
            b'{"header": {"verb": "get", "correlationId": "h-deep"}, "payload": {"a": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}}",
            "BadJson",
            "nests too deeply",
        ),
        (
            "h-digits",
            "MeterReadings",
            b'{"header": {"verb": "get", "correlationId": "h-digits"}, "payload": {"a": '
            + b"7" * 6000
            + b"}}",
            "BadJson",
            "digits",
        ),
        (
            "h-big",
            "MeterReadings",
            b'{"header": {"verb": "get", "noun": "MeterReadings", "correlationId": "h-big"}, '
            b'"payload": {"pad": "' + b"x" * (2 << 20) + b'"}}',
            "RequestTooLarge",
            "commands.max_request_bytes",
        ),
        ("h-noun", "NoSuchNoun", req("h-noun", "NoSuchNoun", {}), "UnknownNoun", "NoSuchNoun"),
    ]


async def _send_with_correlation_data(broker: Broker, noun: str, body: bytes, cid: str) -> None:
    """A body the gateway cannot parse is answered on the MQTT v5 Correlation Data."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.CorrelationData = cid.encode()
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.publish(f"smmc/v1/{GW}/cmd/{noun}", body, qos=1, properties=props)


async def _stored_intervals(col: Any, broker: Broker, meter: str, start: str, cid: str) -> int:
    await send(
        broker,
        "CustomerMeterDataSet",
        request(
            cid,
            {
                "EndDevices": [{"mRID": meter}],
                "timeSchedule": {"start": start, "end": "2099-01-01T00:00:00Z"},
            },
            verb="get",
            noun="CustomerMeterDataSet",
        ),
    )
    doc = await reply(col, cid)
    assert doc["reply"]["result"] in ("OK", "PARTIAL"), doc["reply"]
    (mr,) = doc["payload"]["MeterReading"]
    return sum(len(b["IntervalReadings"]) for b in mr.get("IntervalBlocks", []))


async def test_hostile_requests_get_one_failed_reply_and_collection_goes_on(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=3)) as sim:
        ids = [str(i["meter_id"]) for i in sim.info]
        metrics_port = free_ports(1)[0]
        async with gateway(lab(sim, tmp_path, mosquitto, extra=EXTRA, metrics_port=metrics_port)):
            await online(col)
            await col.wait(lambda ms: all(on(col, f"meter/{m}/readings") for m in ids), 60)
            first = on(col, f"meter/{ids[0]}/readings")[0]
            start = first["payload"]["MeterReading"][0]["IntervalBlocks"][0]["IntervalReadings"][0][
                "timeStamp"
            ]
            before = await _stored_intervals(col, mosquitto, ids[0], start, "before")
            assert before > 0

            # one at a time, so that none of them is answered Busy instead
            for cid, noun, body, code, words in _hostile(ids):
                sent = time.monotonic()
                if code == "BadJson":
                    await _send_with_correlation_data(mosquitto, noun, body, cid)
                else:
                    await send(mosquitto, noun, body)
                doc = await reply(col, cid)
                took = time.monotonic() - sent
                assert took < 10, f"{cid}: answered after {took:.1f} s"
                assert doc["reply"]["result"] == "FAILED", (cid, doc["reply"])
                errors = doc["reply"]["errors"]
                assert any(e["code"] == code for e in errors), (cid, errors)
                assert words in " | ".join(e["details"] for e in errors), (cid, errors)

            # a correlationId that cannot be a topic: no reply possible, the gateway lives on
            await send(
                mosquitto,
                "MeterReadings",
                b'{"header": {"verb": "get", "correlationId": "\\ud800"}, "payload": {}}',
            )

            # a flood of cheap commands: each answered once (done or Busy)
            flood = [f"flood-{i}" for i in range(12)]
            ping = {
                "EndDeviceControl": [
                    {"EndDeviceControlType": {"ref": "ping"}, "EndDevices": [{"mRID": ids[1]}]}
                ]
            }
            await asyncio.gather(
                *(send(mosquitto, "EndDeviceControls", request(c, ping)) for c in flood)
            )
            results = [(await reply(col, c))["reply"] for c in flood]
            busy = [r for r in results if r["result"] == "FAILED"]
            assert busy and all(e["code"] == "Busy" for r in busy for e in r["errors"])
            assert any(r["result"] == "OK" for r in results)

            # the gateway still serves, still collects, and lost nothing it stored
            await send(mosquitto, "EndDeviceControls", request("after", ping))
            assert (await reply(col, "after"))["reply"]["result"] == "OK"
            seen = len(on(col, f"meter/{ids[2]}/readings"))
            await col.wait(lambda ms: len(on(col, f"meter/{ids[2]}/readings")) > seen, 90)
            after = await _stored_intervals(col, mosquitto, ids[0], start, "after-query")
            assert after >= before

            await asyncio.sleep(2.5)  # any second reply would have arrived by now
            # ... and the operator sees it: refusals and handled commands are counted
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            text = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
            assert 'smmc_command_refusals_total{reason="busy"}' in text
            assert 'smmc_command_refusals_total{reason="bad"}' in text
            assert 'smmc_commands_total{noun="ReadingsReport",result="FAILED"} 1.0' in text
            for cid, *_ in _hostile(ids):
                assert len(on(col, f"/reply/{cid}")) == 1, cid
            for c in flood:
                assert len(on(col, f"/reply/{c}")) == 1, c
            replies = [
                json.loads(m.payload)
                for m in col.messages  # type: ignore[arg-type]
                if "/reply/" in str(m.topic)
            ]
            assert all(r["reply"]["result"] in ("OK", "PARTIAL", "FAILED") for r in replies)
