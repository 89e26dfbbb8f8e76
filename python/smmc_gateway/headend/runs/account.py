"""Use case 12: a customer account's move-out (final read, disconnect) or move-in."""

from __future__ import annotations

import json

from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.runs.base import (
    EV_ACCOUNT_STEP,
    EV_CONNECTED,
    EV_DISCONNECTED,
    EV_FINAL_READ,
    EV_OPENING_READ,
    Runner,
    event,
)
from smmc_gateway.usecases import account as account_uc


class AccountRuns(Runner):
    """One move of one meter: its steps in one session, the readings and events after."""

    async def move(self, meter_id: str, move: account_uc.Move) -> account_uc.MoveResult:
        """Move-out (final read published as MeterReadings, then disconnect) or move-in
        (reconnect, opening read); one event per step, naming the readings message."""
        head = self.head
        model = head.model_of(meter_id)
        state = head.fleet.state(meter_id)
        async with self.session(meter_id, Priority.COMMAND) as s:
            if move == "moveOut":
                result = await account_uc.move_out(s, meter_id, model, head.readings)
            else:
                result = await account_uc.move_in(s, meter_id, model, head.readings)
        if result.switch is not None:
            state.energised = result.switch.after.output_state
            await head.fleet.save(state)
        message = await head.publisher.publish_reading(meter_id, result.readings)  # even on error
        kind = EV_FINAL_READ if move == "moveOut" else EV_OPENING_READ
        evs = [event(EV_ACCOUNT_STEP, move, step) for step in result.steps]
        evs.append(
            event(
                kind,
                move,
                f"MeterReadings message {message}: "
                f"{len(result.readings)} register(s)"
                + (
                    f"; last billing entry {json.dumps(result.billing_row)}"
                    if result.billing_row
                    else ""
                ),
            )
        )
        if result.switch is not None:
            evs.append(
                event(
                    EV_DISCONNECTED if move == "moveOut" else EV_CONNECTED,
                    move,
                    f"control_state {result.switch.before.control_state} -> "
                    f"{result.switch.after.control_state}",
                )
            )
        await self.publish_events(meter_id, *evs)
        return result
