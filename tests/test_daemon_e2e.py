"""The daemon end to end: a real Mosquitto, simulated meters, the gateway in this loop.

Readings arrive on the right topics with payloads valid against docs/schemas;
connect/disconnect/ping/clockSync commands get one reply each, plus events; bad
commands get FAILED replies that name the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from conftest import Broker, Collector
from smmc_gateway.headend.daemon import DaemonOptions, run_daemon
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.clock import FixedTimeSource
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

GW = "gw-test"


def lab(sim: RunningFleet, tmp: Path, broker: Broker, **kw: Any) -> Path:
    meters = [{**info, "port": port} for info, port in zip(sim.info, sim.ports, strict=True)]
    groups = {m["meter_id"]: "all" for m in meters}
    return write_lab_config(
        tmp / "gw",
        meters,
        broker=(broker.host, broker.port),
        gateway_id=GW,
        groups=groups,
        schedules='load_profile_every = "60s"\nload_profile_jitter = "2s"\n'
        'clock_drift_threshold = "0s"',
        **kw,
    )


@contextlib.asynccontextmanager
async def gateway(config_path: Path, **kw: Any) -> AsyncIterator[asyncio.Task[int]]:
    stop = asyncio.Event()
    opts = DaemonOptions(
        time_source=FixedTimeSource(synced=True), stop_event=stop, first_read_s=4 * 3600, **kw
    )
    task = asyncio.get_running_loop().create_task(run_daemon(load_config(config_path), opts))
    try:
        yield task
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def send(broker: Broker, noun: str, body: bytes) -> None:
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.publish(f"smmc/v1/{GW}/cmd/{noun}", body, qos=1)


def request(
    cid: str, payload: dict[str, Any], verb: str = "create", noun: str = "EndDeviceControls"
) -> bytes:
    return json.dumps(
        {"header": {"verb": verb, "noun": noun, "correlationId": cid}, "payload": payload}
    ).encode()


def iso(offset_s: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def control(ref: str, meters: list[str], groups: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "EndDeviceControlType": {"ref": ref},
        "EndDevices": [{"mRID": m} for m in meters],
    }
    if groups:
        item["EndDeviceGroups"] = [{"mRID": g} for g in groups]
    return {"EndDeviceControl": [item]}


def on(col: Collector, suffix: str) -> list[dict[str, Any]]:
    return [
        json.loads(m.payload)
        for m in col.messages  # type: ignore[arg-type]
        if str(m.topic).endswith(suffix)
    ]


async def online(col: Collector) -> None:
    """Wait until the gateway serves commands. It says online just before it subscribes,
    and on its very first start the broker has no session to queue commands in, so probe:
    a request it refuses at once, repeated until one is answered."""
    await col.wait(
        lambda ms: any(str(m.topic).endswith("/status") and b'"online"' in m.payload for m in ms),
        30,
    )  # type: ignore[operator]
    for n in range(60):
        cid = f"probe-{n}"
        await send(
            col.broker, "MeterReadings", request(cid, {}, verb="create", noun="MeterReadings")
        )
        try:
            await col.wait(
                lambda ms, c=cid: any(
                    str(m.topic).endswith(f"/reply/{c}")  # type: ignore[misc]
                    for m in ms
                ),
                0.5,
            )
            return
        except AssertionError:
            continue
    raise AssertionError("the gateway never answered a probe request")


async def reply(col: Collector, cid: str) -> dict[str, Any]:
    await col.wait(lambda ms: any(str(m.topic).endswith(f"/reply/{cid}") for m in ms), 30)
    (doc,) = [d for d in on(col, f"/reply/{cid}")]
    return doc


async def test_readings_from_the_fleet_arrive_valid_on_their_topics(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from uplink_helpers import wait_until

    from tests.support_sim import free_ports

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    port = free_ports(1)[0]
    async with (
        running_fleet(FleetSpec(meters=3)) as sim,
        gateway(lab(sim, tmp_path, mosquitto, metrics_port=port)),
    ):
        ids = [i["meter_id"] for i in sim.info]
        await col.wait(
            lambda ms: all(
                any(str(m.topic) == f"smmc/v1/{GW}/meter/{i}/readings" for m in ms) for i in ids
            ),
            30,
        )
        text = ""

        def scraped() -> bool:
            nonlocal text
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
            return "smmc_meters_reachable 3.0" in text

        await wait_until(scraped, 15)
        assert 'smmc_reads_total{result="ok",use_case="collect"} 3.0' in text
        assert "smmc_meters_configured 3.0" in text
        # one session per collect, plus the event-log polls (use case 7) that run beside them
        sessions = re.search(r'smmc_session_duration_seconds_count\{transport="tcp"\} (\S+)', text)
        assert sessions is not None and float(sessions.group(1)) >= 3.0
        assert "smmc_mqtt_connected 1.0" in text
    for m in col.messages:
        topic = str(m.topic)
        if topic.endswith("/readings"):
            doc = validate_message(m.payload)  # type: ignore[arg-type]
            (mr,) = doc["payload"]["MeterReading"]
            assert topic == f"smmc/v1/{GW}/meter/{mr['Meter']['mRID']}/readings"
            assert len(mr["Readings"]) == 4 and mr["IntervalBlocks"]
            rows = len(mr["IntervalBlocks"][0]["IntervalReadings"])
            assert 15 <= rows <= 17  # four hours of 15-minute rows
        elif topic.endswith("/status"):
            validate(json.loads(m.payload), "status")  # type: ignore[arg-type]


async def test_commands_get_one_reply_each_and_events(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with (
        running_fleet(FleetSpec(meters=3, time_offset_s=30)) as sim,
        gateway(lab(sim, tmp_path, mosquitto)),
    ):
        a, b, c = (i["meter_id"] for i in sim.info)
        await online(col)
        await send(mosquitto, "EndDeviceControls", request("off-1", control("disconnect", [a])))
        off = await reply(col, "off-1")
        assert off["reply"]["result"] == "OK"
        assert off["payload"]["EndDeviceControl"][0]["details"].startswith("output_state False")
        assert sim.fleet.meters[0].meter is not None

        await send(mosquitto, "EndDeviceControls", request("ping-1", control("ping", [], ["all"])))
        ping = await reply(col, "ping-1")
        states = {
            e["EndDevices"][0]["mRID"]: e["state"] for e in ping["payload"]["EndDeviceControl"]
        }
        assert states == {a: "disconnected", b: "energised", c: "energised"}

        await send(mosquitto, "EndDeviceControls", request("on-1", control("connect", [a])))
        assert (await reply(col, "on-1"))["reply"]["result"] == "OK"

        await send(mosquitto, "EndDeviceControls", request("clk-1", control("clockSync", [b])))
        clk = await reply(col, "clk-1")
        assert clk["reply"]["result"] == "OK"
        assert "method shift_time" in clk["payload"]["EndDeviceControl"][0]["details"]

        get_1 = {
            "EndDevices": [{"mRID": c}],
            "ReadingTypes": [{"obis": "1.0.1.8.0.255"}],
            "timeSchedule": {"start": iso(-3600), "end": iso(0)},
        }
        validate(get_1, "meter-readings-request")
        await send(
            mosquitto, "MeterReadings", request("get-1", get_1, verb="get", noun="MeterReadings")
        )
        got = await reply(col, "get-1")
        assert got["reply"]["result"] == "OK"
        (mr,) = got["payload"]["MeterReading"]
        assert [r["ReadingType"]["obis"] for r in mr["Readings"]] == ["1.0.1.8.0.255"]
        # A+ register in the standard's 18-part code (bulk quantity, forward, energy, Wh)
        assert mr["Readings"][0]["ReadingType"]["ref"] == "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"
        assert len(mr["IntervalBlocks"][0]["IntervalReadings"]) in (4, 5)  # the last hour
        validate(got["payload"], "meter-readings")

        await col.wait(
            lambda ms: (
                len([m for m in ms if str(m.topic).endswith(f"{b}/events")]) >= 1
                and len([m for m in ms if str(m.topic).endswith(f"{a}/events")]) >= 2
            )
        )
    for m in col.messages:
        if "/reply/" in str(m.topic) or str(m.topic).endswith("/events"):
            validate_message(m.payload)  # type: ignore[arg-type]
    for cid in ("off-1", "ping-1", "on-1", "clk-1", "get-1"):
        assert len(on(col, f"/reply/{cid}")) == 1
    for d in on(col, "/events"):
        for e in d["payload"]["EndDeviceEvent"]:
            kind = e["EndDeviceEventType"]
            # the gateway's own event types, or the meters' (event logs, alarms: use case 7),
            # each name with its IEC 61968-9 code
            validate(
                kind,
                "meter-event-types"
                if kind["name"].startswith(("smmc.meter.", "smmc.alarm."))
                else "gateway-event-types",
            )
    refs = [
        e["EndDeviceEventType"]["name"]
        for d in on(col, f"{a}/events")
        for e in d["payload"]["EndDeviceEvent"]
        if not e["EndDeviceEventType"]["name"].startswith("smmc.meter.")
    ]
    assert refs == ["smmc.switch.disconnected", "smmc.switch.connected"]
    (clock_ev,) = [
        e
        for d in on(col, f"{b}/events")
        for e in d["payload"]["EndDeviceEvent"]
        if e["EndDeviceEventType"]["name"].startswith("smmc.clock.")
    ]
    assert clock_ev["EndDeviceEventType"] == {"ref": "3.36.116.24", "name": "smmc.clock.adjusted"}
    found = re.match(r"deviation before ([-+][\d.]+)s, after ([-+][\d.]+)s", clock_ev["details"])
    assert found is not None, clock_ev["details"]
    assert abs(float(found[1]) - 30) < 1.5 and abs(float(found[2])) < 1.5


async def test_bad_commands_get_failed_replies_naming_the_problem(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        m = sim.info[0]["meter_id"]
        await online(col)
        cases = {
            "bad-meter": (
                "EndDeviceControls",
                request("bad-meter", control("connect", ["nope"])),
                "meter 'nope' is not configured",
            ),
            "bad-type": (
                "EndDeviceControls",
                request("bad-type", control("explode", [m])),
                "'explode' is not one of",
            ),
            "bad-empty": (
                "EndDeviceControls",
                request("bad-empty", {"EndDeviceControl": []}),
                "must be a non-empty array",
            ),
            "bad-verb": (
                "MeterReadings",
                request(
                    "bad-verb", {"EndDevices": [{"mRID": m}]}, verb="create", noun="MeterReadings"
                ),
                "MeterReadings takes get",
            ),
            "bad-obis": (
                "MeterReadings",
                request(
                    "bad-obis",
                    {"EndDevices": [{"mRID": m}], "ReadingTypes": [{"obis": "1.8.0"}]},
                    verb="get",
                    noun="MeterReadings",
                ),
                "'1.8.0' is not an OBIS code",
            ),
            "bad-sched": (
                "MeterReadSchedule",
                request("bad-sched", {}, verb="execute", noun="MeterReadSchedule"),
                "MeterReadSchedule takes create, change, delete, get",
            ),
            "bad-json": (
                "EndDeviceControls",
                b'{"header": {"correlationId": "bad-json"',
                "not JSON",
            ),
        }
        for noun, body, _ in cases.values():
            await send(mosquitto, noun, body)
        for cid, (_, _, text) in cases.items():
            if cid == "bad-json":
                continue  # no correlationId can be read from it: logged and counted only
            doc = await reply(col, cid)
            validate_message(json.dumps(doc).encode())
            assert doc["reply"]["result"] == "FAILED"
            assert any(text in e["details"] for e in doc["reply"]["errors"]), doc["reply"]
        # nothing was done to the meter by the refused connect
        assert not on(col, f"{m}/events")


async def test_daily_bulk_export_carries_every_collected_meter(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from smmc_gateway.headend.daemon import Gateway

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=3)) as sim:
        gw = Gateway(
            load_config(lab(sim, tmp_path, mosquitto)),
            DaemonOptions(time_source=FixedTimeSource(), first_read_s=2 * 3600),
        )
        await gw.start()
        try:
            ids = {i["meter_id"] for i in sim.info}
            await col.wait(
                lambda ms: (
                    len({str(m.topic) for m in ms if str(m.topic).endswith("/readings")}) == 3
                ),
                30,
            )
            assert await gw.headend.bulk_export() == 3
            assert await gw.headend.bulk_export() == 0  # exported rows are gone
            await col.wait(lambda ms: any(str(m.topic).endswith("/bulk/readings") for m in ms))
            first = sorted(ids)[0]
            regs = await gw.headend.read_registers(first)  # the hourly register read
            assert len(regs) == 4
            await col.wait(
                lambda ms: len([m for m in ms if str(m.topic).endswith(f"{first}/readings")]) == 2
            )
        finally:
            await gw.stop()
    only_registers = on(col, f"{first}/readings")[1]["payload"]["MeterReading"][0]
    assert "IntervalBlocks" not in only_registers and len(only_registers["Readings"]) == 4
    (bulk,) = on(col, "/bulk/readings")
    validate_message(json.dumps(bulk).encode())
    parts = bulk["payload"]["MeterReading"]
    assert {p["Meter"]["mRID"] for p in parts} == ids
    for p in parts:
        assert len(p["Readings"]) == 4
        assert all(len(b["IntervalReadings"]) in (8, 9) for b in p["IntervalBlocks"])


async def test_meter_pushes_become_events(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from tests.support_sim import free_ports

    push_port = free_ports(1)[0]
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    spec = FleetSpec(meters=2, push_destination=f"127.0.0.1:{push_port}")
    async with (
        running_fleet(spec) as sim,
        gateway(lab(sim, tmp_path, mosquitto, push_port=push_port)),
    ):
        a = sim.info[0]["meter_id"]
        await online(col)
        sim.fleet.power_outage(0)  # last gasp: a ciphered data-notification to the gateway
        await col.wait(lambda ms: any(str(m.topic).endswith(f"{a}/events") for m in ms), 30)
        sim.fleet.power_restored(0)
        await col.wait(
            lambda ms: len([m for m in ms if str(m.topic).endswith(f"{a}/events")]) >= 2, 30
        )

    def pushed(meter: str) -> list[list[dict[str, Any]]]:
        """The event lists published for pushes (the notification, then its named alarms);
        the event-log polls of use case 7 publish on the same topic and are left out."""
        out = []
        for d in on(col, f"{meter}/events"):
            validate_message(json.dumps(d).encode())
            evs = d["payload"]["EndDeviceEvent"]
            if evs[0]["EndDeviceEventType"]["name"] == "smmc.push.dataNotification":
                out.append(evs)
        return out

    pushes = pushed(a)
    assert len(pushes) >= 2
    for evs in pushes:
        assert evs[0]["reason"] == "ciphered" and evs[0]["details"]
    alarms = {e["EndDeviceEventType"]["name"] for evs in pushes for e in evs[1:]}
    assert {"smmc.alarm.outage", "smmc.alarm.restoration"} <= alarms, alarms
    # in the standard's codes: power off 3.26.0.85, power restored 3.26.0.216
    codes = {e["EndDeviceEventType"]["ref"] for evs in pushes for e in evs[1:]}
    assert {"3.26.0.85", "3.26.0.216"} <= codes, codes
    assert {evs[0]["EndDeviceEventType"]["ref"] for evs in pushes} == {"3.1.0.60"}
    assert not pushed(sim.info[1]["meter_id"])


async def test_scheduled_clock_sync_refuses_then_adjusts(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from smmc_gateway.headend.daemon import Gateway

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2, time_offset_s=-45)) as sim:
        gw = Gateway(
            load_config(lab(sim, tmp_path, mosquitto)),
            DaemonOptions(time_source=FixedTimeSource(synced=False)),
        )
        await gw.start()
        try:
            ids = [i["meter_id"] for i in sim.info]
            await gw.sync_all_clocks()  # the host clock is not synchronised: refuse
            gw.headend.time_source = FixedTimeSource(synced=True)
            await gw.sync_all_clocks()
            # the scheduled event-log poll may publish the meters' own rows (e.g.
            # smmc.meter.clockAdjustedOldTime) on the same topics: count the gateway's
            await col.wait(lambda ms: sum(len(_clock_refs(col, m)) for m in ids) >= 4)
            assert all(abs(gw.fleet.state(m).clock_deviation_s or 99) < 1.5 for m in ids)
        finally:
            await gw.stop()
    for m in ids:
        refs = _clock_refs(col, m)
        assert [r for r, _ in refs] == ["smmc.clock.syncRefused", "smmc.clock.adjusted"]
        assert "not synchronised" in refs[0][1]
        assert "before -4" in refs[1][1] and "method shift_time" in refs[1][1]


def _clock_refs(col: Any, meter: str) -> list[tuple[str, str]]:
    """(type, details) of the gateway's clock events for ``meter``."""
    return [
        (e["EndDeviceEventType"]["name"], e["details"])
        for d in on(col, f"{meter}/events")
        for e in d["payload"]["EndDeviceEvent"]
        if e["EndDeviceEventType"]["name"].startswith("smmc.clock.")
    ]
