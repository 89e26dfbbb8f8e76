"""Use case 6 — remote connect / disconnect through the Disconnect control (class 70).

``remote_disconnect`` is method 1 and ``remote_reconnect`` method 2 (both take an
integer 0). The outcome is confirmed by reading back attribute 2 (output_state:
true = connected) and attribute 3 (control_state: 0 disconnected, 1 connected,
2 ready_for_reconnection), each read in one GET with-list where the meter agreed
multiple-references: with HLS-GMAC a disconnect is five request/response pairs
(AARQ, reply_to_HLS_authentication, the state before, the method, the read-back)
before the release. A meter in a control mode where remote reconnect only
arms the switch (control_state 2, the customer presses the button) is reported
as such, not as a failure of the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smmc_gateway.cosem.objects import DisconnectControl
from smmc_gateway.dlms.session import ClientSession

DISCONNECT_CLASS = DisconnectControl.class_id
CONTROL_STATES = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
Operation = Literal["connect", "disconnect"]


class SwitchNotConfirmed(RuntimeError):
    """The read-back state does not match the operation."""


@dataclass(frozen=True)
class SwitchState:
    output_state: bool
    control_state: str
    control_mode: int | None = None


@dataclass(frozen=True)
class SwitchResult:
    meter_id: str
    operation: Operation
    before: SwitchState
    after: SwitchState

    @property
    def confirmed(self) -> bool:
        if self.operation == "disconnect":
            return not self.after.output_state and self.after.control_state == "disconnected"
        return self.after.control_state in ("connected", "ready_for_reconnection")


async def read_state(session: ClientSession, obis: str, with_mode: bool = False) -> SwitchState:
    """output_state, control_state (and control_mode): one GET with-list when agreed."""
    dc = DisconnectControl(obis)
    refs = [dc.output_state, dc.control_state]
    values = await session.get_all([*refs, dc.control_mode] if with_mode else refs)
    mode = int(values[2]["value"]) if with_mode else None
    code = int(values[1]["value"])
    return SwitchState(bool(values[0]["value"]), CONTROL_STATES.get(code, f"state-{code}"), mode)


async def operate(
    session: ClientSession, meter_id: str, operation: Operation, *, obis: str = "0.0.96.3.10.255"
) -> SwitchResult:
    """Disconnect or reconnect, then read the state back; SwitchNotConfirmed if it did not take."""
    if operation not in ("connect", "disconnect"):
        raise ValueError(f"operation {operation!r}: expected connect or disconnect")
    before = await read_state(session, obis, with_mode=True)
    dc = DisconnectControl(obis)
    method = dc.remote_disconnect if operation == "disconnect" else dc.remote_reconnect
    await session.action(*method, {"type": "integer", "value": 0})
    after = await read_state(session, obis)
    after = SwitchState(after.output_state, after.control_state, before.control_mode)
    result = SwitchResult(meter_id, operation, before, after)
    if not result.confirmed:
        raise SwitchNotConfirmed(
            f"{operation} of {meter_id}: read back output_state={after.output_state}, "
            f"control_state={after.control_state} (control_mode {before.control_mode})"
        )
    return result
