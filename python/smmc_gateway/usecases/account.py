"""Use case 12 — customer account move: the final read at move-out, the opening read at move-in.

Move-out: close the billing period on the meter, read the entry it captured, read the
registers, then disconnect. The billing period is closed by executing the
end-of-billing Script table (class 9) 0.0.10.0.1.255, method 1 ``execute`` with the
script id as long-unsigned; IDIS uses script 1 for the end of billing period (an
installation may configure another id). A meter without that script table (the
simulator has none) gets the same effect from method 2 ``capture`` (parameter integer 0)
of the billing profile 0.0.98.1.0.255; which one was used is reported. The newest row of
the billing profile (selective access by entry: the last one) is returned as
(clock, {column obis: value}). Move-in: reconnect and read the registers (opening read).

Only the session API is used; switching goes through :mod:`connect`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from smmc_gateway.cim.reading_types import Reading
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.objects import ProfileGeneric, ScriptTable
from smmc_gateway.dlms.session import ClientSession, DataAccessError, SessionError
from smmc_gateway.jsonvalue import JsonObject
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.usecases import connect as connect_uc
from smmc_gateway.usecases.meter_clock import MeterClock
from smmc_gateway.usecases.readings import ReadingsUseCase

Move = Literal["moveOut", "moveIn"]
# IDIS: script 1 of 0.0.10.0.1.255 ends the billing period. Public head-end code is not
# unanimous (some execute script 0 for the "MD reset"), so it is a parameter; a meter that
# refuses the execute still gets its period closed by the capture fallback.
END_OF_BILLING_SCRIPT_ID = 1


@dataclass
class MoveResult:
    meter_id: str
    move: Move
    steps: list[str] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    billing_row: JsonObject | None = None
    switch: connect_uc.SwitchResult | None = None
    error: str | None = None
    """Set when the switching step failed after the read (the read is still published)."""


async def close_billing_period(
    session: ClientSession, model: ModelConfig, script_id: int = END_OF_BILLING_SCRIPT_ID
) -> str:
    """Execute end-of-billing, or capture on the billing profile; says which."""
    script = model.obis["end_of_billing_script"]
    try:
        await session.action(
            *ScriptTable(script).execute, {"type": "long-unsigned", "value": script_id}
        )
        return f"end-of-billing script {script} executed (script {script_id})"
    except DataAccessError as exc:
        billing = model.obis["billing_profile"]
        await session.action(*ProfileGeneric(billing).capture, {"type": "integer", "value": 0})
        return f"billing profile {billing} captured (script table {script}: {exc.result or exc})"


async def last_billing_row(session: ClientSession, model: ModelConfig) -> JsonObject | None:
    """The newest billing-profile row as {"clock": iso, obis: value...}."""
    billing = model.obis["billing_profile"]
    profile = ProfileGeneric(billing)
    entries_value, capture_value = await session.get_all(
        [profile.entries_in_use, profile.capture_objects]
    )
    entries = int(entries_value["value"])
    if entries <= 0:
        return None
    capture = capture_value["value"]
    names = [str(Obis.from_bytes(bytes.fromhex(c["value"][1]["value"]))) for c in capture]
    rows = await session.read_profile(
        billing, from_entry=entries, to_entry=entries, capture_period=0
    )
    if not rows:
        return None
    out: JsonObject = {}
    clock = MeterClock(model.clock, model.name)
    for name, value in zip(names, rows[-1], strict=False):
        if isinstance(value, datetime):
            out["clock"] = clock.stamp_to_utc(value).isoformat()
        else:
            out[name] = value
    return out


async def move_out(
    session: ClientSession,
    meter_id: str,
    model: ModelConfig,
    readings: ReadingsUseCase,
    now: datetime | None = None,
) -> MoveResult:
    result = MoveResult(meter_id, "moveOut")
    result.steps.append(await close_billing_period(session, model))
    result.billing_row = await last_billing_row(session, model)
    result.steps.append(
        "last billing entry read" if result.billing_row else "billing profile is empty"
    )
    result.readings = await readings.read_registers(
        session, model.registers, now or datetime.now(UTC), model=model.name
    )
    result.steps.append(f"final read: {len(result.readings)} register(s)")
    try:
        result.switch = await connect_uc.operate(
            session, meter_id, "disconnect", obis=model.obis["disconnect_control"]
        )
    except (SessionError, connect_uc.SwitchNotConfirmed) as exc:
        # the final read is taken: it must reach the uplink even though the switch failed
        result.error = f"disconnect failed: {type(exc).__name__}: {exc}"
        result.steps.append(result.error)
        return result
    result.steps.append(f"disconnected (control_state {result.switch.after.control_state})")
    return result


async def move_in(
    session: ClientSession,
    meter_id: str,
    model: ModelConfig,
    readings: ReadingsUseCase,
    now: datetime | None = None,
) -> MoveResult:
    result = MoveResult(meter_id, "moveIn")
    result.switch = await connect_uc.operate(
        session, meter_id, "connect", obis=model.obis["disconnect_control"]
    )
    after = result.switch.after.control_state
    result.steps.append(
        "reconnected (control_state connected)"
        if after == "connected"
        else f"reconnection armed, the customer's button closes it (control_state {after})"
    )
    result.readings = await readings.read_registers(
        session, model.registers, now or datetime.now(UTC), model=model.name
    )
    result.steps.append(f"opening read: {len(result.readings)} register(s)")
    return result
