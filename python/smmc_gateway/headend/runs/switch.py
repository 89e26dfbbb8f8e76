"""Use cases 6 and 7: connect/disconnect, and the OMS poll (is the meter there, energised?)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.runs.base import EV_CONNECTED, EV_DISCONNECTED, Runner, event
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.usecases import connect as connect_uc
from smmc_gateway.usecases import oms as oms_uc


class SwitchRuns(Runner):
    """The disconnect control: operate it, or ask many meters for its state at once."""

    async def switch(
        self, meter_id: str, operation: connect_uc.Operation
    ) -> connect_uc.SwitchResult:
        head = self.head
        state = head.fleet.state(meter_id)
        async with self.session(meter_id, Priority.COMMAND) as s:
            result = await connect_uc.operate(
                s, meter_id, operation, obis=head.obis(meter_id, "disconnect_control")
            )
        state.energised = result.after.output_state
        await head.fleet.save(state)
        kind = EV_DISCONNECTED if operation == "disconnect" else EV_CONNECTED
        await self.publish_events(
            meter_id,
            event(
                kind,
                operation,
                f"output_state {result.before.output_state} -> "
                f"{result.after.output_state}, control_state {result.before.control_state} -> "
                f"{result.after.control_state}",
            ),
        )
        return result

    async def poll(
        self, meter_ids: Sequence[str], timeout_s: float = 30.0
    ) -> list[oms_uc.PollResult]:
        head = self.head
        if head.scheduler.stopping:
            raise GatewayStopping("the gateway is stopping; the poll is served after restart")

        def open_session(m: str) -> Any:
            return head.scheduler.session(m, Priority.COMMAND)

        results = await oms_uc.poll(
            open_session,
            meter_ids,
            clock_obis=lambda m: head.obis(m, "clock"),
            disconnect_obis=lambda m: head.obis(m, "disconnect_control"),
            timeout_s=timeout_s,
        )
        for r in results:
            st = head.fleet.state(r.meter_id)
            if r.state != "unreachable":
                st.energised = r.state == "energised"
        await head.fleet.save(*(head.fleet.state(r.meter_id) for r in results))
        return results
