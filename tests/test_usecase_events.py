"""Use case 7 (events and alarms): event logs polled on a schedule into EndDeviceEvents,
resumed from the stored mark after a restart, and alarm pushes decoded into named events.
A real Mosquitto, the simulator, the gateway's own parts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import PushEvent, PushListener
from smmc_gateway.headend.daemon import DaemonOptions, Gateway
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.pushes import PushRouting
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.clock import FixedTimeSource
from smmc_gateway.usecases.events import (
    LogMark,
    LogMissing,
    _rows_after,
    alarm_bits,
    named_alarms,
    read_log,
)
from test_daemon_e2e import GW, lab, on
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, free_ports, running_fleet

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _refs(col: Any, meter: str) -> list[str]:
    return [
        e["EndDeviceEventType"]["name"]
        for d in on(col, f"{meter}/events")
        for e in d["payload"]["EndDeviceEvent"]
    ]


@contextlib.asynccontextmanager
async def started(config: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(
        load_config(config),
        DaemonOptions(time_source=FixedTimeSource(synced=True), first_read_s=3600),
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def test_rows_at_the_same_second_are_neither_lost_nor_repeated() -> None:
    t1 = T0 + timedelta(seconds=1)
    rows = [(T0, 4), (T0, 5), (t1, 50)]
    fresh, mark = _rows_after(rows[:2], LogMark())
    assert [v for _, v in fresh] == [4, 5] and mark == LogMark(T0, 2)
    fresh, mark = _rows_after([*rows[:2], (T0, 47)], mark)  # a third row in that second
    assert [v for _, v in fresh] == [47] and mark == LogMark(T0, 3)
    fresh, mark = _rows_after([(T0, 4), (T0, 5), (T0, 47), (t1, 50)], mark)
    assert [v for _, v in fresh] == [50] and mark == LogMark(t1, 1)
    assert _rows_after([(t1, 50)], mark) == ([], mark)


def test_alarm_bits_are_named_once_and_repeats_are_marked() -> None:
    body = {
        "type": "structure",
        "value": [
            {"type": "octet-string", "value": "0004190900ff"},
            {"type": "octet-string", "value": "534d43"},
            {"type": "double-long-unsigned", "value": 0b101},
        ],
    }
    assert alarm_bits(body) == 5
    assert (
        alarm_bits(
            {"type": "structure", "value": [{"type": "octet-string", "value": "0000190900ff"}]}
        )
        is None
    )  # not the alarm push
    assert [k for k, _, _ in named_alarms(0b101, 0b100)] == ["smmc.alarm.outage"]
    assert [r for _, r, _ in named_alarms(0b101, 0b101)] == [
        "powerDownRepeated",
        "limiterThresholdExceededRepeated",
    ]
    assert named_alarms(1 << 9, 0)[0][:2] == ("smmc.alarm.bit9", "alarmBit9")


async def test_scheduled_event_poll_publishes_the_limiter_trip_and_resumes_after_restart(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        config = lab(sim, tmp_path, mosquitto)
        async with started(config) as gw:
            gw.headend.schedule_events(1.0)
            await gw.headend.limit(m, 1, 1, 3600)  # 1 W: the meter's load trips it in 1 s
            await col.wait(lambda ms: "smmc.meter.limiterThresholdExceeded" in _refs(col, m), 30)
        refs = _refs(col, m)
        assert refs[0] == "smmc.limiter.configured"
        assert refs.count("smmc.meter.limiterThresholdExceeded") == 1
        assert "smmc.meter.limiterThresholdChanged" in refs
        assert "smmc.meter.localDisconnection" in refs  # the limiter opened the switch
        for d in on(col, f"{m}/events"):
            validate_message(json.dumps(d).encode())
            for e in d["payload"]["EndDeviceEvent"]:
                validate(e["EndDeviceEventType"], "meter-event-types")
        trip = next(
            e
            for d in on(col, f"{m}/events")
            for e in d["payload"]["EndDeviceEvent"]
            if e["EndDeviceEventType"]["name"] == "smmc.meter.limiterThresholdExceeded"
        )
        assert trip["reason"] == "disconnector" and "0.0.99.98.2.255: code 53" in trip["details"]
        assert trip["EndDeviceEventType"]["ref"] == "3.15.261.139"  # load limit exceeded
        seen = len(refs)

        # a restart resumes from the stored marks: nothing again, then only what is new
        async with started(config) as gw:
            assert await gw.headend.poll_events(m) == []
            sim.fleet.power_outage(0)
            sim.fleet.power_restored(0)
            new = await gw.headend.poll_events(m)
            assert [e["name"] for e in new] == ["smmc.meter.powerDown", "smmc.meter.powerUp"]
            await col.wait(lambda ms: len(_refs(col, m)) >= seen + 2, 30)
        assert _refs(col, m)[seen:] == ["smmc.meter.powerDown", "smmc.meter.powerUp"]


async def test_alarm_pushes_become_named_outage_restoration_and_limiter_events(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    spec = FleetSpec(meters=1, push_destination=f"127.0.0.1:{port}")
    async with running_fleet(spec) as sim:
        m = sim.info[0]["meter_id"]
        config = lab(sim, tmp_path, mosquitto)
        async with started(config) as gw:
            routing = PushRouting(gw.config.meters)
            pushed: asyncio.Queue[PushEvent] = asyncio.Queue()

            async def on_push(event: PushEvent) -> None:  # the daemon's wiring, decoded
                await gw.uplink.publish_event(
                    event.meter_id, [routing.event(event), *gw.headend.alarm_events(event)]
                )
                pushed.put_nowait(event)

            listener = PushListener(
                routing.lookup,
                on_push,
                host="127.0.0.1",
                port=port,
                ic_store=InvocationCounterStore(":memory:"),
            )
            async with listener:
                await gw.headend.limit(m, 1, 1, 3600)
                await asyncio.wait_for(pushed.get(), 30)
                sim.fleet.power_outage(0)
                await asyncio.wait_for(pushed.get(), 30)
                sim.fleet.power_restored(0)
                await asyncio.wait_for(pushed.get(), 30)
                await col.wait(lambda ms: "smmc.alarm.restoration" in _refs(col, m), 30)
    named = [r for r in _refs(col, m) if r.startswith("smmc.alarm.")]
    assert named == ["smmc.alarm.limiterTrip", "smmc.alarm.outage", "smmc.alarm.restoration"]
    kinds = [
        e["EndDeviceEventType"]
        for d in on(col, f"{m}/events")
        for e in d["payload"]["EndDeviceEvent"]
        if e["EndDeviceEventType"]["name"] in named
    ]
    assert [k["ref"] for k in kinds] == ["3.15.261.139", "3.26.0.85", "3.26.0.216"]
    for k in kinds:
        validate(k, "meter-event-types")


async def test_a_log_the_meter_lacks_is_named_and_the_others_still_read(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    from smmc_gateway.cosem.obis import Obis

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim:
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        del meter.objects[Obis(0, 0, 99, 98, 4, 255)]  # no power-quality log on this meter
        async with started(lab(sim, tmp_path, mosquitto)) as gw:
            async with gw.scheduler.session(m, Priority.COMMAND) as s:
                with pytest.raises(LogMissing, match=r"powerQuality log 0.0.99.98.4.255"):
                    await read_log(
                        s,
                        "event_log_power_quality",
                        "0.0.99.98.4.255",
                        LogMark(),
                        datetime.now(UTC),
                    )
            sim.fleet.power_outage(0)
            sim.fleet.power_restored(0)
            got = await gw.headend.poll_events(m)
            # The daemon's own scheduled poll (due at start) may run just before ours
            # and publish the two rows itself; either way they are published once, in order.
            assert [e["name"] for e in got] in (["smmc.meter.powerDown", "smmc.meter.powerUp"], [])
            await col.wait(
                lambda ms: _refs(col, m)[-2:] == ["smmc.meter.powerDown", "smmc.meter.powerUp"], 30
            )
