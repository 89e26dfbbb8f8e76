"""Scheduler: due times with stable jitter and back-fill, bus/TCP gates, failures recorded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.scheduler import GatewayStopping, Scheduler, stable_jitter
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from test_headend_fleet import config

from tests.support_sim import free_ports


def test_stable_jitter_is_deterministic_and_in_range() -> None:
    values = [stable_jitter(f"m-{i}", "collect", 600) for i in range(200)]
    assert values == [stable_jitter(f"m-{i}", "collect", 600) for i in range(200)]
    assert all(0 <= v < 600 for v in values)
    assert max(values) - min(values) > 300  # spread, not bunched
    assert stable_jitter("m-1", "collect", 0) == 0


async def test_missed_meters_are_due_now_and_recent_ones_wait(tmp_path: Path) -> None:
    cfg = config(tmp_path, 4)
    fleet = await Fleet.open(cfg.meters, tmp_path / "f.sqlite")
    sched = Scheduler(fleet, SessionFactory(), max_tcp_sessions=2)
    now = time.time()
    last = {"m-0000": None, "m-0001": now - 7200, "m-0002": now - 60, "m-0003": now - 10}
    ran: list[str] = []
    two = asyncio.Event()

    async def job(meter_id: str) -> None:
        ran.append(meter_id)
        if len(ran) == 2:
            two.set()

    sched.every("collect", 3600, job, jitter_s=20, last_success=lambda m: last[m])
    assert sched.due_count(horizon_s=1.0) == 2
    runner = asyncio.create_task(sched.run())
    await asyncio.wait_for(two.wait(), 5)
    await sched.stop(1)
    await asyncio.wait_for(runner, 5)
    assert sorted(ran) == ["m-0000", "m-0001"]  # never read, and 2 h behind: back-fill now
    await fleet.close()


async def test_meters_on_one_bus_share_a_gate_of_one(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "gateway.toml").write_text(f"""
[gateway]
id = "gw-t"
state_dir = "{tmp_path / "state"}"
[broker]
host = "127.0.0.1"
[[buses]]
name = "rs485-1"
device = "/dev/null"
baud = 9600
[[meters]]
id = "a"
connection = {{ kind = "serial", bus = "rs485-1" }}
addresses = {{ client = 16, server_logical = 1, server_physical = 17, size = 4 }}
[[meters]]
id = "b"
connection = {{ kind = "serial", bus = "rs485-1" }}
addresses = {{ client = 16, server_logical = 1, server_physical = 18, size = 4 }}
[[meters]]
id = "c"
connection = {{ kind = "tcp", host = "127.0.0.1", port = 4059, framing = "wrapper" }}
addresses = {{ client = 16, server_logical = 1 }}
[limits]
max_tcp_sessions = 7
""")
    cfg = load_config(d / "gateway.toml")
    fleet = await Fleet.open(cfg.meters, tmp_path / "f.sqlite")
    sched = Scheduler(
        fleet, SessionFactory(dict(cfg.buses)), max_tcp_sessions=cfg.limits.max_tcp_sessions
    )
    assert sched.gate_for("a") is sched.gate_for("b")
    assert sched.gate_for("a").capacity == 1
    assert sched.gate_for("c") is sched.tcp_gate and sched.tcp_gate.capacity == 7
    await fleet.close()


async def test_an_unreachable_meter_fails_in_time_and_is_recorded(tmp_path: Path) -> None:
    dead = free_ports(1)[0]  # nothing listens here
    meters = [{"meter_id": "m-0000", "port": dead, "auth": "none"}]
    cfg = load_config(write_lab_config(tmp_path / "gw", meters, broker=("127.0.0.1", 1883)))
    fleet = await Fleet.open(cfg.meters, tmp_path / "f.sqlite")
    factory = SessionFactory(response_timeout=1.0)
    sched = Scheduler(fleet, factory)
    t0 = time.monotonic()
    with pytest.raises((SessionError, OSError)):
        async with sched.session("m-0000") as s:
            await s.get(8, "0.0.1.0.0.255", 2)
    assert time.monotonic() - t0 < 15
    st = fleet.state("m-0000")
    assert st.reachable is False and st.consecutive_failures == 1 and st.last_error
    await sched.stop(1)
    with pytest.raises(GatewayStopping):
        async with sched.session("m-0000"):
            pass
    await fleet.close()


async def test_a_failed_job_is_retried_with_backoff_then_left_to_the_next_period(
    tmp_path: Path,
) -> None:
    from smmc_gateway.dlms.session import MeterTimeout

    cfg = config(tmp_path, 2)
    fleet = await Fleet.open(cfg.meters, tmp_path / "f.sqlite")
    sched = Scheduler(
        fleet,
        SessionFactory(),
        retry_attempts=2,
        backoff_initial_s=0.05,
        backoff_multiplier=2.0,
        backoff_max_s=0.1,
    )
    assert [sched.retry_delay(n) for n in (1, 2, 3)] == [0.05, 0.1, 0.1]
    calls: dict[str, list[float]] = {"m-0000": [], "m-0001": []}
    done = asyncio.Event()

    async def job(meter_id: str) -> None:
        calls[meter_id].append(time.monotonic())
        if len(calls["m-0000"]) == 3 and calls["m-0001"]:
            done.set()
        if meter_id == "m-0000":
            raise MeterTimeout("GetResponse", 1.0)  # what a silent meter's session raises

    sched.every("collect", 3600, job, last_success=lambda _m: None)
    runner = asyncio.create_task(sched.run())
    await asyncio.wait_for(done.wait(), 5)
    # nothing more is due before the next period: the run loop idles
    assert sched.due_count(horizon_s=60) == 0
    await sched.stop(1)
    await asyncio.wait_for(runner, 5)
    t = calls["m-0000"]
    assert len(t) == 3 and len(calls["m-0001"]) == 1  # 1 try + 2 retries; the good one once
    assert t[1] - t[0] >= 0.04 and t[2] - t[1] >= 0.09
    await fleet.close()


class _FakeSession:
    """Stands in for a meter session: opening and closing it cost nothing."""

    async def __aenter__(self) -> _FakeSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _FakeSessions:
    def session(self, meter: object) -> _FakeSession:
        return _FakeSession()


async def test_a_flood_of_commands_leaves_collection_its_reserved_sessions(tmp_path: Path) -> None:
    """12 commands on 4 meters against 4 TCP sessions, a quarter reserved: 3 commands run,
    the rest wait, and collection of the other meters goes on in the reserved session."""
    from smmc_gateway.headend.gates import Priority

    cfg = config(tmp_path, 8)
    fleet = await Fleet.open(cfg.meters, tmp_path / "f.sqlite")
    sched = Scheduler(
        fleet,
        _FakeSessions(),
        max_tcp_sessions=4,  # type: ignore[arg-type]
        reserved_for_collection=0.25,
    )
    busy = ["m-0000", "m-0001", "m-0002", "m-0003"]
    release = asyncio.Event()
    commands_in: list[str] = []
    inside = peak = 0

    async def command(meter_id: str) -> None:
        nonlocal inside, peak
        async with sched.session(meter_id, Priority.COMMAND):
            commands_in.append(meter_id)
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1

    flood = [asyncio.create_task(command(busy[i % 4])) for i in range(12)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(commands_in) == 3 and sched.tcp_gate.waiting == 1  # 1 at the gate, 8 at locks
    collected: list[str] = []
    others = {f"m-{i:04d}" for i in range(4, 8)}
    all_others = asyncio.Event()

    async def collect(meter_id: str) -> None:
        async with sched.session(meter_id):
            collected.append(meter_id)
        if others <= set(collected):
            all_others.set()

    sched.every("collect", 3600, collect, last_success=lambda _m: None)
    runner = asyncio.create_task(sched.run())
    await asyncio.wait_for(all_others.wait(), 10)  # while the flood holds its sessions
    assert len(commands_in) == 3 and not any(t.done() for t in flood)
    release.set()
    await asyncio.wait_for(asyncio.gather(*flood), 10)
    assert len(commands_in) == 12 and peak == 3  # commands never held the reserved session
    await sched.stop(5)
    await asyncio.wait_for(runner, 5)
    await fleet.close()
