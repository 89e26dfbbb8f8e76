"""MQTT noun MasterDataLinkageConfig: customer account moves (use case 12) and HAN devices.

create/change: the account move of ``Meter[].mRID`` with ``ConfigurationEvent.reason``
``moveOut`` (end-of-billing, final read published as MeterReadings, disconnect) or
``moveIn`` (reconnect, opening read). Reply: one entry per meter listing the steps done;
events for each step. With ``ConfigurationEvent.effectiveDateTime`` in the future the move
is scheduled (:mod:`~smmc_gateway.headend.commands.orders`; verb ``cancel`` cancels it,
``get`` with reason moveOut/moveIn lists the scheduled ones). A request with reason
``hanInstall``/``hanRemove`` or verb ``get`` is about HAN devices instead (use case 4):
:mod:`~smmc_gateway.headend.commands.han_linkage`.
"""

from __future__ import annotations

from typing import Any

from smmc_gateway.headend.commands.common import METER_ERRORS as _METER_ERRORS
from smmc_gateway.headend.commands.common import Invalid, NounHandler
from smmc_gateway.headend.commands.common import error_text as _error_text
from smmc_gateway.headend.commands.han_linkage import HanCommands
from smmc_gateway.headend.commands.orders import OrderCommands, effective_at
from smmc_gateway.headend.effective import NewOrder
from smmc_gateway.headend.request_limits import show
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError

MOVES = ("moveOut", "moveIn")


class MasterDataLinkageConfigCommands(NounHandler):
    """``await MasterDataLinkageConfigCommands(...)(verb, payload)`` -> the reply Outcome."""

    def __init__(
        self, headend: HeadEnd, commands: CommandsConfig, orders: OrderCommands, han: HanCommands
    ) -> None:
        super().__init__(headend)
        self.commands = commands
        self.orders = orders
        self.han = han

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        return await self._linkage(verb, payload)

    async def _linkage(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if verb == "cancel":
            return await self.orders.cancel("MasterDataLinkageConfig", verb, payload)
        if self.han.claims(verb, payload):
            return await self.han(verb, payload)
        if verb == "get":  # ConfigurationEvent.reason moveOut / moveIn: the scheduled moves
            return await self.orders.listing("MasterDataLinkageConfig", payload)
        problems: list[str] = []
        if verb not in ("create", "change"):
            problems.append(
                f"header.verb: {show(verb)}; MasterDataLinkageConfig takes create "
                "or change (cancel: a scheduled move; get with reason "
                "moveOut/moveIn: the scheduled moves)"
            )
        ev = payload.get("ConfigurationEvent")
        move = ev.get("reason") if isinstance(ev, dict) else None
        if move not in MOVES:
            problems.append(
                f"payload.ConfigurationEvent.reason: {show(move)} is not one of {', '.join(MOVES)}"
            )
        meters = self._meters(payload, "payload", problems, key="Meter")
        effective = None
        if isinstance(ev, dict) and "effectiveDateTime" in ev:
            effective = effective_at(
                ev["effectiveDateTime"],
                "payload.ConfigurationEvent.effectiveDateTime",
                problems,
                self.commands,
            )
        mrid = ev.get("mRID") if isinstance(ev, dict) else None
        if mrid is not None and (not isinstance(mrid, str) or not mrid):
            problems.append(f"payload.ConfigurationEvent.mRID: {show(mrid)} is not a string")
        if problems:
            raise Invalid(problems)
        if effective is not None:
            orders = await self.orders.schedule(
                [NewOrder(str(move), m, effective.timestamp(), mrid) for m in meters]
            )
            return Outcome(
                "OK",
                {
                    "MasterDataLinkageConfig": [
                        self.orders.move_entry(o, "scheduled") for o in orders
                    ]
                },
            )
        entries: list[dict[str, Any]] = []
        errors: list[ReplyError] = []
        for m in meters:
            entry: dict[str, Any] = {"Meter": {"mRID": m}, "reason": move}
            try:
                r = await self.headend.move(m, move)  # type: ignore[arg-type]
            except _METER_ERRORS as exc:
                errors.append({"code": "MeterFailed", "details": f"{m}: {_error_text(exc)}"})
                entries.append({**entry, "result": "FAILED", "details": _error_text(exc)})
                continue
            entry.update(
                result="FAILED" if r.error else "OK", steps=r.steps, registers=len(r.readings)
            )
            if r.error:
                entry["details"] = r.error
                errors.append({"code": "MeterFailed", "details": f"{m}: {r.error}"})
            if r.billing_row is not None:
                entry["billingEntry"] = r.billing_row
            entries.append(entry)
        good = len(entries) - len(errors)
        result = "OK" if not errors else ("FAILED" if good == 0 else "PARTIAL")
        return Outcome(result, {"MasterDataLinkageConfig": entries}, errors)
