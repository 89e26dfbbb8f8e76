"""HAN discovery at the head-end (use case 4) without a broker: the channels read, compared
with what is kept (fleet.sqlite), and only changes published; an alarm push triggers one
refresh; the periodic poll skips meters without an M-Bus client."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.dlms.errors import SessionError
from smmc_gateway.dlms.push import PushEvent
from smmc_gateway.headend.commands.han_linkage import HanCommands
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.uplink.topics import Topics
from smmc_gateway.usecases.clock import FixedTimeSource
from uplink_helpers import validate

from tests.support_sim import FleetSpec, running_fleet


@dataclass
class Recorder:
    topics: Topics = field(default_factory=lambda: Topics("gw-han"))
    events: list[str] = field(default_factory=list)
    linkages: list[dict[str, Any]] = field(default_factory=list)

    async def publish_reading(self, *a: Any, **kw: Any) -> str:
        return "r"

    async def publish_bulk(self, *a: Any) -> str:
        return "b"

    async def publish_event(self, meter: str, events: Any) -> str:
        self.events += [e["name"] for e in events]
        return "e"

    async def publish(self, drafts: Any) -> list[str]:
        for d in drafts:
            assert d.topic.endswith("/linkage") and d.retain and d.noun == "MasterDataLinkageConfig"
            doc = json.loads(d.payload)
            validate(doc, "master-data-linkage-config")
            self.linkages.append(doc["MasterDataLinkageConfig"][0])
        return ["d"] * len(drafts)


async def test_refresh_publishes_changes_only_and_keeps_them_across_restarts(
    tmp_path: Path,
) -> None:
    async with running_fleet(FleetSpec(meters=1, han_devices=2)) as sim:
        info = [{**i, "port": p} for i, p in zip(sim.info, sim.ports, strict=True)]
        cfg = load_config(write_lab_config(tmp_path / "gw", info, broker=("127.0.0.1", 1)))
        m = info[0]["meter_id"]
        for run in (1, 2):  # a second head-end on the same fleet.sqlite: a restart
            fleet = await Fleet.open(cfg.meters, tmp_path / "gw" / "state" / "fleet.sqlite")
            up = Recorder()
            head = HeadEnd(
                fleet,
                Scheduler(
                    fleet,
                    SessionFactory({}, response_timeout=5),
                    max_tcp_sessions=2,
                    retry_attempts=0,
                ),
                up,
                cfg.models,
                time_source=FixedTimeSource(),
            )
            han = HanCommands(head)
            try:
                entry = await han.refresh(m, "hanPoll")
                assert [d["serialNumber"] for d in entry["EndDevice"]] == [
                    d["identification"] for d in sim.info[0]["han"]
                ]
                if run == 1:
                    assert up.events == ["smmc.han.deviceJoined"] * 2 and len(up.linkages) == 1
                    await han.refresh(m, "hanPoll")
                    assert len(up.linkages) == 1  # nothing changed: nothing published
                    sim.fleet.han_leave(0, int(sim.info[0]["han"][1]["identification"]))
                    await han.refresh(m, "hanPoll")
                    assert up.events[-1] == "smmc.han.deviceUnreachable"
                    assert [d["reachable"] for d in up.linkages[-1]["EndDevice"]] == [True, False]
                else:
                    assert up.events == [] and up.linkages == []  # kept across the restart
                    # an alarm push with an M-Bus bit refreshes once; others do nothing
                    han.on_push(_push(m, 1 << 2))
                    assert not han._pending
                    sim.fleet.han_join(0, 1)
                    han.on_push(_push(m, 1 << 25))
                    han.on_push(_push(m, 1 << 25))  # folded into the running one
                    assert len(han._pending) == 1
                    await asyncio.gather(*han._pending.values())
                    assert up.events == ["smmc.han.deviceReachable"]
                    assert up.linkages[-1]["ConfigurationEvent"]["reason"] == "hanAlarm"
            finally:
                await fleet.close()


def _push(meter: str, bits: int) -> PushEvent:
    from datetime import UTC, datetime

    body = {
        "type": "structure",
        "value": [
            {"type": "octet-string", "value": "0004190900ff"},
            {"type": "octet-string", "value": "00"},
            {"type": "double-long-unsigned", "value": bits},
        ],
    }
    return PushEvent(
        meter_id=meter,
        received_at=datetime.now(UTC),
        meter_time=None,
        body=body,
        long_invoke_id=1,
        ciphered=True,
        system_title=None,
        invocation_counter=None,
        peer="127.0.0.1",
    )


async def test_the_poll_skips_meters_discovered_without_an_mbus_client(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tests.security.requests_support import dead_fleet

    async with dead_fleet(tmp_path, meters=2) as lab:
        han = lab.dispatcher.han
        jobs: list[Any] = []
        lab.head.scheduler.every = lambda name, every, job, **kw: jobs.append(  # type: ignore[method-assign]
            (name, every, job, kw["last_success"]("m0"))
        )
        han.schedule(900.0)
        ((name, every, job, last),) = jobs
        assert (name, every) == ("han", 900.0) and last is not None  # first run a period on
        await lab.head.fleet.save_discovery(
            "m0",
            datetime.now(UTC),
            {"objects": [{"classId": 8, "version": 0, "obis": "0.0.1.0.0.255"}]},
        )
        await job("m0")  # no M-Bus client: no session (the meter would refuse to connect)
        with pytest.raises(SessionError, match="cannot open tcp"):
            await job("m1")  # never discovered: polled (its failure is the scheduler's)
