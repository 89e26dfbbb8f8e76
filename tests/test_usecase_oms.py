"""Use case 7 (first part): a group polled concurrently; every meter gets one state."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import ClientSession
from smmc_gateway.usecases.connect import operate
from smmc_gateway.usecases.oms import poll
from test_usecase_support import session_to

from tests.support_sim import FleetSpec, free_ports, running_fleet


async def test_group_poll_reports_energised_disconnected_and_unreachable() -> None:
    dead = free_ports(1)[0]
    async with running_fleet(FleetSpec(meters=3)) as sim:
        where = {
            info["meter_id"]: (port, info) for port, info in zip(sim.ports, sim.info, strict=True)
        }
        ids = list(where)
        store = InvocationCounterStore(":memory:")
        async with session_to(*where[ids[1]], store) as s:
            await operate(s, ids[1], "disconnect")

        @contextlib.asynccontextmanager
        async def open_session(meter_id: str) -> AsyncIterator[ClientSession]:
            port, info = where.get(meter_id, (dead, sim.info[0]))
            async with session_to(port, info, store) as s:
                yield s

        t0 = time.monotonic()
        results = await poll(
            open_session,
            [*ids, "ghost"],
            clock_obis=lambda m: "0.0.1.0.0.255",
            disconnect_obis=lambda m: "0.0.96.3.10.255",
            timeout_s=3,
        )
        assert time.monotonic() - t0 < 10
        states = {r.meter_id: r.state for r in results}
        assert states == {
            ids[0]: "energised",
            ids[1]: "disconnected",
            ids[2]: "energised",
            "ghost": "unreachable",
        }
        assert [r.meter_id for r in results] == [*ids, "ghost"]
        ghost = results[-1]
        assert ghost.details and ghost.rtt_s is None
