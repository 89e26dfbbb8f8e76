"""One RS-485 bus (a real pty pair via socat, 9600 baud): the scheduler runs one session at
a time on it, and a command waiting for the bus goes before a waiting read."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.uplink import MessageClass, Uplink, UplinkConfig
from smmc_gateway.usecases.clock import FixedTimeSource

from tests.support_sim import FleetSpec, running_serial_fleet


def bus_config(tmp: Path, device: str, info: list[dict[str, str]]) -> Path:
    keys = tmp / "keys.toml"
    keys.write_text(
        "".join(f'["k{i}"]\nek = "{m["ek"]}"\nak = "{m["ak"]}"\n' for i, m in enumerate(info))
    )
    keys.chmod(0o600)
    meters = "".join(
        f"""
[[meters]]
id = "{m["meter_id"]}"
connection = {{ kind = "serial", bus = "rs485-1" }}
addresses = {{ client = 1, server_logical = 1, server_physical = {m["hdlc_address"]} }}
security = {{ level = "hls-gmac", key_id = "k{i}" }}
"""
        for i, m in enumerate(info)
    )
    path = tmp / "gateway.toml"
    path.write_text(f"""
[gateway]
id = "gw-bus"
state_dir = "{tmp / "state"}"
key_file = "{keys}"
client_system_title = "534d4d4300000002"
[broker]
host = "127.0.0.1"
[[buses]]
name = "rs485-1"
device = "{device}"
baud = 9600
{meters}""")
    return path


async def test_one_session_at_a_time_and_commands_first(tmp_path: Path) -> None:
    spec = FleetSpec(meters=3, auth="hls-gmac", baud=9600, history_days=1)
    async with running_serial_fleet(spec) as sim:
        cfg = load_config(bus_config(tmp_path, sim.device, sim.info))
        (tmp_path / "state").mkdir()
        fleet = await Fleet.open(cfg.meters, tmp_path / "state" / "fleet.sqlite")
        spans: list[tuple[str, float, float]] = []
        loop = asyncio.get_running_loop()

        def on_session(meter: str, ok: bool, seconds: float, tx: int, rx: int) -> None:
            assert ok and tx > 0 and rx > 0
            spans.append((meter, loop.time() - seconds, loop.time()))

        sched = Scheduler(
            fleet,
            SessionFactory(dict(cfg.buses), response_timeout=5),
            max_tcp_sessions=8,
            on_session=on_session,
        )
        uplink = Uplink(UplinkConfig("gw-bus", tmp_path / "state" / "outbox.sqlite"))
        head = HeadEnd(
            fleet, sched, uplink, cfg.models, time_source=FixedTimeSource(), first_read_s=3600
        )
        a, b, c = (m["meter_id"] for m in sim.info)
        gate = sched.gate_for(a)
        assert gate is sched.gate_for(c) and gate.capacity == 1

        read_a = asyncio.create_task(head.collect(a))
        while gate.in_use == 0:  # noqa: ASYNC110 - the gate has no event to wait on
            await asyncio.sleep(0.01)
        read_b = asyncio.create_task(head.collect(b))
        while gate.waiting == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        ping_c = asyncio.create_task(head.poll([c], timeout_s=30))
        while gate.waiting < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        results = await asyncio.wait_for(asyncio.gather(read_a, read_b, ping_c), 90)
        assert results[2][0].state == "energised"
        assert [s[0] for s in spans] == [a, c, b]  # the command jumped the waiting read
        for (_, _, end), (_, start, _) in itertools.pairwise(spans):
            assert start >= end - 0.01  # never two sessions on the bus at once
        backlog = await uplink.outbox.backlog()
        assert backlog[MessageClass.TELEMETRY].depth == 2
        assert all(fleet.state(m).reachable for m in (a, b, c))
        await uplink.store.close()
        await fleet.close()
