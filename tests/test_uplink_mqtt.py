"""The uplink against a real Mosquitto: topics, schemas, broker restarts, commands."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
from conftest import Broker, Collector
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from smmc_gateway.uplink import ClassLimit, MessageClass, Outcome, Uplink, UplinkConfig
from smmc_gateway.uplink.envelope import event
from uplink_helpers import ids_on, running, validate, validate_message, wait_until

GW = "gw-0001"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
A_PLUS = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"  # IEC 61968-9 ReadingType of 1.0.1.8.0.255 Wh


def config(broker: Broker, tmp_path: Path, **kw: Any) -> UplinkConfig:
    return UplinkConfig(
        gateway_id=GW, db_path=tmp_path / "uplink.db", host=broker.host, port=broker.port, **kw
    )


def status_states(msgs: list[aiomqtt.Message]) -> list[str]:
    return [
        json.loads(m.payload)["state"]
        for m in msgs  # type: ignore[arg-type]
        if str(m.topic) == f"smmc/v1/{GW}/status"
    ]


async def test_messages_arrive_on_their_topics_valid(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto)
    up = Uplink(config(mosquitto, tmp_path))
    async with running(up):
        await col.wait(lambda m: status_states(m) == ["online"])
        r = await up.publish_reading(
            "m1",
            [{"ref": A_PLUS, "obis": "1.0.1.8.0.255", "unit": "Wh", "timestamp": NOW, "value": 42}],
            b'[{"ReadingType":{"ref":"' + A_PLUS.encode() + b'"},"IntervalReadings":[]}]',
        )
        e = await up.publish_event(
            "m1", [event("smmc.alarm.outage", mrid="ev-1", created=NOW, reason="powerDown")]
        )
        b = await up.publish_bulk([{"meter": "m1"}, {"meter": "m2"}])
        await col.wait(lambda m: len(ids_on(m)) == 3)
        by_topic = {str(m.topic): m for m in col.messages}
        assert (
            json.loads(by_topic[f"smmc/v1/{GW}/meter/m1/readings"].payload)["header"]["messageId"]
            == r
        )  # type: ignore[arg-type]
        assert (
            json.loads(by_topic[f"smmc/v1/{GW}/meter/m1/events"].payload)["header"]["messageId"]
            == e
        )  # type: ignore[arg-type]
        assert (
            json.loads(by_topic[f"smmc/v1/{GW}/bulk/readings"].payload)["header"]["messageId"] == b
        )  # type: ignore[arg-type]
        for m in col.messages:
            assert m.qos == 1 or str(m.topic).endswith("/status")
            if str(m.topic).endswith("/status"):
                validate(json.loads(m.payload), "status")  # type: ignore[arg-type]
            else:
                validate_message(m.payload)  # type: ignore[arg-type]
        await wait_until(lambda: up.counters.published == 3)  # PUBACKs handled, rows deleted
        st = await up.status()
        assert st["connected"] is True and st["backlog"]["TELEMETRY"]["depth"] == 0
    await col.wait(lambda m: status_states(m)[-1:] == ["offline"])
    # a fresh subscriber sees the retained status
    late: Collector = await collector(mosquitto, f"smmc/v1/{GW}/status")
    await late.wait(lambda m: status_states(m) == ["offline"] and m[0].retain)


async def test_broker_restart_mid_flow_loses_nothing(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/meter/#")
    up = Uplink(config(mosquitto, tmp_path))
    sent: list[str] = []
    async with running(up):
        for i in range(100):
            sent.append(await up.publish_reading(f"m{i % 7}"))
        await col.wait(lambda m: len(ids_on(m)) >= 20)
        mosquitto.stop()  # broker away: the outbox keeps everything
        await wait_until(lambda: not up.connected.is_set())
        for i in range(100, 200):
            sent.append(await up.publish_reading(f"m{i % 7}"))
        backlog = (await up.status())["backlog"]["TELEMETRY"]
        assert backlog["depth"] >= 100 and backlog["oldest_age_s"] is not None
        mosquitto.start()
        await col.wait(lambda m: set(ids_on(m)) >= set(sent), timeout=30)
    assert up.counters.connects >= 2
    assert up.counters.refused == 0


async def send_request(
    broker: Broker, noun: str, body: bytes, correlation_data: bytes | None = None
) -> None:
    props = None
    if correlation_data is not None:
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation_data
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.publish(f"smmc/v1/{GW}/cmd/{noun}", body, qos=1, properties=props)


def request(cid: str | None, verb: str = "execute", **payload: Any) -> bytes:
    header: dict[str, Any] = {"verb": verb}
    if cid is not None:
        header["correlationId"] = cid
    return json.dumps({"header": header, "payload": payload}).encode()


async def test_command_gets_exactly_one_reply(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    async def handler(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        calls.append((noun, verb, payload))
        return Outcome(
            "OK", {"EndDeviceControl": [{"EndDevices": [{"mRID": "m1"}], "result": "OK"}]}
        )

    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    up = Uplink(config(mosquitto, tmp_path), handler)
    async with running(up):
        body = request(
            "c-1",
            EndDeviceControl=[
                {"EndDeviceControlType": {"ref": "disconnect"}, "EndDevices": [{"mRID": "m1"}]}
            ],
        )
        await send_request(mosquitto, "EndDeviceControls", body)
        await col.wait(lambda m: len(m) == 1)
        await send_request(mosquitto, "EndDeviceControls", body)  # duplicate delivery
        await wait_until(lambda: up.counters.duplicate_commands == 1)
    doc = validate_message(col.messages[0].payload)  # type: ignore[arg-type]
    assert str(col.messages[0].topic) == f"smmc/v1/{GW}/reply/c-1"
    assert doc["header"]["correlationId"] == "c-1" and doc["reply"]["result"] == "OK"
    assert calls == [("EndDeviceControls", "execute", json.loads(body)["payload"])]
    assert len(col.messages) == 1


async def test_bad_commands_get_failed_replies(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    async def handler(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        raise RuntimeError("meter m1 unreachable")

    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    up = Uplink(config(mosquitto, tmp_path), handler)
    async with running(up):
        await send_request(mosquitto, "NoSuchNoun", request("c-noun"))
        await send_request(mosquitto, "MeterReadings", b"{bad json", correlation_data=b"c-json")
        await send_request(mosquitto, "MeterReadings", request("c-verb", verb="close"))
        await send_request(mosquitto, "MeterReadings", request(None))  # nobody to answer
        await send_request(mosquitto, "MeterReadings", request("c-boom", verb="get"))
        await col.wait(lambda m: len(m) == 4)
        await wait_until(lambda: up.counters.unanswerable_commands == 1)
    replies = {}
    for m in col.messages:
        doc = validate_message(m.payload)  # type: ignore[arg-type]
        assert str(m.topic).endswith("/" + doc["header"]["correlationId"])
        replies[doc["header"]["correlationId"]] = doc["reply"]
    assert {k: (v["result"], v["errors"][0]["code"]) for k, v in replies.items()} == {
        "c-noun": ("FAILED", "UnknownNoun"),
        "c-json": ("FAILED", "BadJson"),
        "c-verb": ("FAILED", "InvalidVerb"),
        "c-boom": ("FAILED", "HandlerError"),
    }
    assert "NoSuchNoun" in replies["c-noun"]["errors"][0]["details"]
    assert "meter m1 unreachable" in replies["c-boom"]["errors"][0]["details"]
    assert up.counters.bad_commands == 4


async def test_command_survives_restart_between_receipt_and_reply(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    started = asyncio.Event()

    async def stuck(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        started.set()
        await asyncio.Event().wait()  # the daemon dies before it answers
        raise AssertionError("unreachable")

    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    first = Uplink(config(mosquitto, tmp_path), stuck)
    async with running(first, stop_deadline_s=0.5):
        await send_request(mosquitto, "EndDeviceControls", request("c-r", ref="ping"))
        await asyncio.wait_for(started.wait(), 10)
    assert col.messages == []

    calls: list[str] = []

    async def ok(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        calls.append(payload["ref"])
        return Outcome("OK")

    second = Uplink(config(mosquitto, tmp_path), ok)
    async with running(second):
        await col.wait(lambda m: len(m) == 1)
    # the broker did not re-deliver it (it was acked after journaling) and we replied once
    assert calls == ["ping"]
    assert len(col.messages) == 1
    assert json.loads(col.messages[0].payload)["reply"]["result"] == "OK"  # type: ignore[arg-type]


async def test_telemetry_ages_out_while_events_are_kept(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    mosquitto.stop()  # nothing can be sent: the outbox must hold and trim
    drops: list[int] = []
    cfg = config(mosquitto, tmp_path, limits={MessageClass.TELEMETRY: ClassLimit(max_rows=5)})
    up = Uplink(cfg, on_drop=lambda c, n: drops.append(n))
    readings = [await up.publish_reading(f"m{i}") for i in range(20)]
    events = [
        await up.publish_event("m1", [event("smmc.alarm.outage", mrid=f"e{i}", created=NOW)])
        for i in range(20)
    ]
    mosquitto.start()
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/meter/#")
    async with running(up):
        await col.wait(lambda m: len(ids_on(m)) == 25)
    got = ids_on(col.messages)
    assert set(got) == set(readings[-5:]) | set(events)
    assert got[:20] == events  # events jump ahead of telemetry
    assert sum(drops) == 15 and up.outbox.counters.dropped[MessageClass.TELEMETRY] == 15
