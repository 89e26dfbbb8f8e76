"""The crash window of a scheduled collection: the reading is stored in the outbox but
the meter's progress (last stored profile entry) is not saved. The re-read of the same
interval must carry the SAME messageId (MQTT.md: consumers de-duplicate on it): while
the first is pending nothing new is stored; once delivered, the repeat has the same id.

Simulated meters over TCP, a real Mosquitto, the head-end and uplink of the daemon.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from smmc_gateway.headend.daemon import uplink_config
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.uplink import MessageClass, Uplink
from smmc_gateway.usecases.clock import FixedTimeSource
from uplink_helpers import running

from tests.support_sim import FleetSpec, running_fleet

GW = "gw-reread"


def readings(col: Collector, meter: str) -> list[dict[str, Any]]:
    out = []
    for m in col.messages:
        if str(m.topic) == f"smmc/v1/{GW}/meter/{meter}/readings":
            assert isinstance(m.payload, bytes)
            out.append(json.loads(m.payload))
    return out


def blocks(msg: dict[str, Any]) -> Any:
    return msg["payload"]["MeterReading"][0]["IntervalBlocks"]


async def test_reread_after_crash_keeps_the_message_id(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    async with running_fleet(FleetSpec(meters=1, auth="hls-gmac")) as sim:
        meters = [{**info, "port": port} for info, port in zip(sim.info, sim.ports, strict=True)]
        cfg = load_config(
            write_lab_config(
                tmp_path / "gw", meters, gateway_id=GW, broker=(mosquitto.host, mosquitto.port)
            )
        )
        meter = sim.info[0]["meter_id"]
        cfg.outbox.path.parent.mkdir(parents=True, exist_ok=True)
        fleet = await Fleet.open(cfg.meters, tmp_path / "gw" / "state" / "fleet.sqlite")
        sched = Scheduler(
            fleet, SessionFactory(dict(cfg.buses), response_timeout=5), max_tcp_sessions=4
        )
        uplink = Uplink(uplink_config(cfg))
        head = HeadEnd(
            fleet,
            sched,
            uplink,
            cfg.models,
            time_source=FixedTimeSource(synced=True),
            first_read_s=4 * 3600,
        )
        try:
            before: datetime | None = fleet.state(meter).last_entry

            async def crash_and_reread() -> list[bytes]:
                """Collect, then 'crash' before the progress is saved (reset last_entry);
                repeated until two collections read the same interval rows (an interval
                boundary may pass between two reads; then the rows differ and so do ids)."""
                outcome: list[bytes] = []
                for _ in range(4):
                    result = await head.collect(meter)
                    assert result.profile is not None and result.profile.rows > 0
                    assert result.profile.interval_blocks is not None
                    outcome.append(result.profile.interval_blocks)
                    state = fleet.state(meter)
                    state.last_entry = before
                    await fleet.save(state)
                    if len(outcome) >= 2 and outcome[-1] == outcome[-2]:
                        return outcome
                raise AssertionError("no two collections read the same intervals")

            # 1. uplink not connected yet: the re-read stores nothing new.
            reads = await crash_and_reread()
            backlog = await uplink.outbox.backlog()
            pending = [
                r for r in await uplink.outbox.next_batch(100) if r.topic.endswith("/readings")
            ]
            ids = {r.message_id for r in pending}
            # every distinct interval set was stored once; the repeat added no row
            assert len(pending) == len(ids) == len(set(reads)) < len(reads)
            assert backlog[MessageClass.TELEMETRY].depth == len(pending)
            col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/#")
            async with running(uplink):
                await col.wait(lambda _: len(readings(col, meter)) == len(pending))
                first = readings(col, meter)[-1]
                # 2. delivered; crash again: the repeat is sent again with the same id.
                await crash_and_reread()
                await col.wait(lambda _: len(readings(col, meter)) >= len(pending) + 1)
            got = readings(col, meter)
            same = [m for m in got if blocks(m) == blocks(first)]
            assert len(same) >= 2
            assert {m["header"]["messageId"] for m in same} == {first["header"]["messageId"]}
            # different interval data never shares an id
            by_id: dict[str, Any] = {}
            for m in got:
                assert by_id.setdefault(m["header"]["messageId"], blocks(m)) == blocks(m)
        finally:
            await uplink.store.close()
            await fleet.close()
