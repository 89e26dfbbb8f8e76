"""A Dispatcher on a real HeadEnd whose meters never answer: their TCP port is closed, so
every meter session fails at once (ConnectionRefused). Used by the request-bound tests
(tests/security/test_requests_*.py): requests go straight to the dispatcher, no broker.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.headend.dispatcher import Dispatcher
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.topics import Topics
from smmc_gateway.usecases.clock import FixedTimeSource

GW = "gw-limits"
P = 900  # the default model's capture period


@dataclass
class FakeUplink:
    """The publisher the head-end hands readings and events to; keeps nothing."""

    topics: Topics = field(default_factory=lambda: Topics(GW))
    published: int = 0

    async def publish_reading(
        self,
        meter: str,
        readings: Sequence[Any] = (),
        interval_blocks: Any = None,
        message_id: str | None = None,
    ) -> str:
        self.published += 1
        return f"r{self.published}"

    async def publish_event(self, meter: str, events: Sequence[Any]) -> str:
        self.published += 1
        return f"e{self.published}"

    async def publish_bulk(self, parts: Sequence[Any]) -> str:
        self.published += 1
        return f"b{self.published}"

    async def publish(self, drafts: Sequence[Any]) -> list[str]:
        self.published += len(drafts)
        return [f"d{i}" for i in range(len(drafts))]


@dataclass
class Lab:
    dispatcher: Dispatcher
    head: HeadEnd
    meters: list[str]

    async def __call__(self, noun: str, verb: str, payload: Any) -> Outcome:
        out: Outcome = await self.dispatcher(noun, verb, payload)
        return out

    def with_commands(self, **changes: Any) -> Dispatcher:
        """Another dispatcher on the same head-end, its [commands] changed."""
        return Dispatcher(
            self.head, commands=replace(self.dispatcher.commands, **changes), poll_timeout_s=2
        )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def dead_fleet(
    tmp: Path,
    meters: int = 3,
    *,
    enable: Sequence[str] = (),
    commands: Mapping[str, Any] | None = None,
) -> AsyncIterator[Lab]:
    """``meters`` configured meters (group ``all``; the first two also in ``pair``) that
    never answer; ``commands``: fields of CommandsConfig to change."""
    port = closed_port()
    info = [
        {"meter_id": f"m{i}", "port": port, "ek": "00" * 16, "ak": "11" * 16} for i in range(meters)
    ]
    groups = {f"m{i}": "all;pair" if i < 2 else "all" for i in range(meters)}
    cfg = load_config(
        write_lab_config(
            tmp / "gw",
            info,
            broker=("127.0.0.1", 1),
            gateway_id=GW,
            groups=groups,
            response_timeout="1s",
            enable=enable,
        )
    )
    fleet = await Fleet.open(cfg.meters, tmp / "gw" / "state" / "fleet.sqlite")
    sched = Scheduler(
        fleet,
        SessionFactory(dict(cfg.buses), response_timeout=1),
        max_tcp_sessions=4,
        retry_attempts=0,
    )
    head = HeadEnd(
        fleet, sched, FakeUplink(), cfg.models, time_source=FixedTimeSource(), first_read_s=3600
    )
    cmd = replace(cfg.commands, **(commands or {})) if commands else cfg.commands
    try:
        yield Lab(
            Dispatcher(head, commands=cmd, poll_timeout_s=2), head, [m.id for m in cfg.meters]
        )
    finally:
        await fleet.close()


@contextlib.asynccontextmanager
async def live_fleet(tmp: Path, *, commands: Mapping[str, Any] | None = None) -> AsyncIterator[Lab]:
    """One simulated meter (two days of load profile) that answers."""
    from tests.support_sim import FleetSpec, running_fleet

    async with running_fleet(FleetSpec(meters=1)) as sim:
        info = [{**i, "port": port} for i, port in zip(sim.info, sim.ports, strict=True)]
        cfg = load_config(
            write_lab_config(tmp / "gw", info, broker=("127.0.0.1", 1), gateway_id=GW)
        )
        fleet = await Fleet.open(cfg.meters, tmp / "gw" / "state" / "fleet.sqlite")
        sched = Scheduler(
            fleet,
            SessionFactory(dict(cfg.buses), response_timeout=5),
            max_tcp_sessions=2,
            retry_attempts=0,
        )
        head = HeadEnd(
            fleet, sched, FakeUplink(), cfg.models, time_source=FixedTimeSource(), first_read_s=3600
        )
        cmd = replace(cfg.commands, **(commands or {}))
        try:
            yield Lab(Dispatcher(head, commands=cmd), head, [m.id for m in cfg.meters])
        finally:
            await fleet.close()


#: short names of the energy registers a test profile captures -> (OBIS code, unit)
REGISTERS = {
    "A+": ("1.0.1.8.0.255", "Wh"),
    "A-": ("1.0.2.8.0.255", "Wh"),
    "R+": ("1.0.3.8.0.255", "varh"),
    "R-": ("1.0.4.8.0.255", "varh"),
}


def blocks(stamps: Sequence[datetime], base: int = 100, refs: Sequence[str] = ("A+",)) -> bytes:
    """IntervalBlocks JSON of the registers ``refs`` (short names) with one reading per
    stamp, each block's ref the IEC 61968-9 ReadingType code, as the gateway sends it."""
    out = []
    for short in refs:
        obis, unit = REGISTERS[short]
        out.append(
            {
                "ReadingType": {
                    "ref": reading_type(obis, unit, measuring_period_s=P),
                    "obis": obis,
                    "unit": unit,
                },
                "IntervalReadings": [
                    {"timeStamp": s.isoformat().replace("+00:00", "Z"), "value": base + i}
                    for i, s in enumerate(stamps)
                ],
            }
        )
    return json.dumps(out).encode()


def recent(count: int, skip: Sequence[int] = (), period: int = P) -> list[datetime]:
    """``count`` aligned stamps ending an hour ago, without the indexes in ``skip``."""
    last = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(seconds=period * (count - 1))
    return [first + timedelta(seconds=period * i) for i in range(count) if i not in skip]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def details(outcome: Outcome) -> str:
    return " | ".join(f"{e['code']}: {e['details']}" for e in outcome.errors)


def codes(outcome: Outcome) -> set[str]:
    return {e["code"] for e in outcome.errors}


def commands_with(**changes: Any) -> CommandsConfig:
    return replace(CommandsConfig(), **changes)
