"""Shared by the issue 11 tests (read schedules, effective dates, bulk parts, drift, export):
a head-end whose uplink records what it is given, over a simulated fleet or meters that
never answer, and the schema checks of what it publishes."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from smmc_gateway.headend.dispatcher import Dispatcher
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.headend.sessions import BatchedCounterStore, SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.envelope import Draft, Event, Reading
from smmc_gateway.uplink.topics import Topics
from smmc_gateway.usecases.clock import FixedTimeSource
from uplink_helpers import validate

from tests.security.requests_support import closed_port

GW = "gw-i11"


@dataclass
class RecordingUplink:
    """The publisher a head-end hands its messages to; keeps them (as the envelope
    renders their payloads) for the test to look at."""

    topics: Topics = field(default_factory=lambda: Topics(GW))
    readings: list[tuple[str, list[Reading], Any]] = field(default_factory=list)
    events: list[tuple[str, Event]] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)

    async def publish_reading(
        self,
        meter: str,
        readings: Sequence[Reading] = (),
        interval_blocks: Any = None,
        message_id: str | None = None,
    ) -> str:
        draft = envelope.meter_readings(self.topics, meter, readings, interval_blocks, message_id)
        validate(json.loads(draft.payload), "meter-readings")
        self.readings.append((meter, list(readings), interval_blocks))
        return message_id or str(uuid.uuid4())

    async def publish_event(self, meter: str, events: Sequence[Event]) -> str:
        draft = envelope.end_device_events(self.topics, meter, events)
        validate(json.loads(draft.payload), "end-device-events")
        self.events.extend((meter, e) for e in events)
        return str(uuid.uuid4())

    async def publish_bulk(self, parts: Sequence[Any]) -> str:
        raise AssertionError("bulk goes out in parts through publish()")

    async def publish(self, drafts: Sequence[Draft]) -> list[str]:
        self.drafts.extend(drafts)
        return [d.message_id or str(uuid.uuid4()) for d in drafts]

    def named(self, name: str, meter: str | None = None) -> list[Event]:
        return [e for m, e in self.events if e["name"] == name and meter in (None, m)]


@dataclass
class Lab:
    head: HeadEnd
    dispatcher: Dispatcher
    uplink: RecordingUplink
    meters: list[str]
    fleet: Fleet
    scheduler: Scheduler


@contextlib.asynccontextmanager
async def lab(
    tmp: Path,
    sim: Any = None,
    *,
    meters: int = 3,
    commands: Mapping[str, Any] | None = None,
    head: Mapping[str, Any] | None = None,
    extra: str = "",
) -> AsyncIterator[Lab]:
    """A head-end on the simulated fleet ``sim`` (or ``meters`` meters that never answer),
    groups ``all`` (every meter) and ``pair`` (the first two)."""
    if sim is not None:
        info = [{**i, "port": port} for i, port in zip(sim.info, sim.ports, strict=True)]
    else:
        port = closed_port()
        info = [
            {"meter_id": f"m{i}", "port": port, "ek": "00" * 16, "ak": "11" * 16}
            for i in range(meters)
        ]
    groups = {m["meter_id"]: "all;pair" if i < 2 else "all" for i, m in enumerate(info)}
    cfg = load_config(
        write_lab_config(
            tmp / "gw",
            info,
            broker=("127.0.0.1", 1),
            gateway_id=GW,
            groups=groups,
            response_timeout="2s",
            extra=extra,
        )
    )
    fleet = await Fleet.open(cfg.meters, tmp / "gw" / "state" / "fleet.sqlite")
    # counters kept like the daemon's: a second lab on the same state is a restart
    counters = BatchedCounterStore(str(tmp / "gw" / "state" / "invocation-counters.sqlite"))
    sched = Scheduler(
        fleet,
        SessionFactory(dict(cfg.buses), response_timeout=2, ic_store=counters),
        max_tcp_sessions=4,
        retry_attempts=0,
    )
    up = RecordingUplink()
    he = HeadEnd(
        fleet,
        sched,
        up,
        cfg.models,
        time_source=FixedTimeSource(),
        first_read_s=3600,
        **(head or {}),
    )
    cmd = replace(cfg.commands, **(commands or {}))
    try:
        yield Lab(
            he,
            Dispatcher(he, commands=cmd, poll_timeout_s=2),
            up,
            [m.id for m in cfg.meters],
            fleet,
            sched,
        )
    finally:
        await sched.stop(1)
        await fleet.close()
        counters.close()
