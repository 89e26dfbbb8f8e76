"""Use case 6 against the simulator: disconnect, reconnect, state read back."""

from __future__ import annotations

import pytest
from smmc_gateway.usecases.connect import operate, read_state
from test_usecase_support import session_to

from tests.support_sim import FleetSpec, running_fleet


async def test_disconnect_then_reconnect_is_confirmed_by_read_back() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        start = await read_state(s, "0.0.96.3.10.255")
        assert start.output_state is True and start.control_state == "connected"
        off = await operate(s, "m", "disconnect")
        assert off.confirmed and off.after.output_state is False
        assert off.after.control_state == "disconnected"
        assert off.before.control_mode is not None
        on = await operate(s, "m", "connect")
        assert on.confirmed
        assert on.after.control_state in ("connected", "ready_for_reconnection")
        assert sim.fleet.meters[0].meter is not None


async def test_unknown_operation_is_refused_before_touching_the_meter() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        with pytest.raises(ValueError, match="'toggle'"):
            await operate(s, "m", "toggle")  # type: ignore[arg-type]
        assert (await read_state(s, "0.0.96.3.10.255")).output_state is True


async def test_a_disconnect_with_read_back_is_five_request_response_pairs() -> None:
    """HLS-GMAC association (AARQ, reply_to_HLS_authentication), the state
    before (one GET with-list), the method, the read-back (one GET with-list)."""
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        assert s.with_list
        result = await operate(s, "m", "disconnect")
        assert result.confirmed
        assert s.counters.apdus_sent == 5, s.counters
        assert s.counters.apdus_received == 5
