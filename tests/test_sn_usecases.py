"""Use cases against a simulated meter that serves short names only: clock
synchronisation (shift_time and SET of the clock, through the method's and
the attribute's short names), disconnect/reconnect with read-back (the
disconnect control's methods at base + 0x20 / + 0x28), and the limiter
threshold written and read back — the same use case code as with LN."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms import sn
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.usecases.clock import FixedTimeSource, synchronise
from smmc_gateway.usecases.connect import operate

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

PASSWORD = b"pw123456"
SYNCED = FixedTimeSource(synced=True)


@pytest.fixture(autouse=True)
def _forget_short_names() -> Iterator[None]:
    """Short names and learnt referencing are kept per meter id in the process:
    none leaks into other tests (the simulator's meter ids repeat)."""
    sn.forget_short_names()
    yield
    sn.forget_short_names()


@contextlib.asynccontextmanager
async def sn_session(offset: float = 0.0) -> AsyncIterator[tuple[RunningFleet, ClientSession]]:
    sn.forget_short_names()
    spec = FleetSpec(
        meters=1,
        auth="lls",
        password=PASSWORD,
        history_days=0,
        referencing="sn",
        time_offset_s=offset,
    )
    settings = SessionSettings(
        client_sap=1, security=Security.lls(PASSWORD), referencing="auto", response_timeout=5
    )
    async with running_fleet(spec) as sim:
        transport = WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1)
        async with ClientSession(transport, settings, meter_id="sn-0") as s:
            assert s.referencing == "sn"
            yield sim, s


@pytest.mark.parametrize(("offset", "method"), [(40.0, "shift_time"), (2000.0, "set")])
async def test_clock_sync_with_short_names(offset: float, method: str) -> None:
    async with sn_session(offset) as (_sim, s):
        r = await synchronise(s, "sn-0", SYNCED, tolerance_s=2, shift_limit_s=900)
    assert r.method == method
    assert abs(r.before_s - offset) < 1.5
    assert r.after_s is not None and abs(r.after_s) < 1.5


async def test_disconnect_and_reconnect_with_short_names() -> None:
    async with sn_session() as (sim, s):
        off = await operate(s, "sn-0", "disconnect")
        assert off.confirmed and not off.after.output_state
        assert not sim.fleet.meters[0].meter.disconnect.output_state
        on = await operate(s, "sn-0", "connect")
        assert on.confirmed


async def test_limiter_threshold_with_short_names() -> None:
    async with sn_session() as (sim, s):
        await s.set(71, "0.0.17.0.0.255", 4, {"type": "double-long-unsigned", "value": 4321})
        assert _core.decode(await s.get_raw(71, "0.0.17.0.0.255", 4))["value"] == 4321
        assert sim.fleet.meters[0].meter.limiter.threshold_normal == 4321
