"""MQTT noun EndDeviceControls (create/execute; cancel and get: scheduled ones).

``EndDeviceControl[].EndDeviceControlType.ref`` one of ``connect``, ``disconnect``,
``ping`` (OMS poll; ``EndDeviceGroups`` may name configured groups: multicast),
``clockSync``, ``limit`` (use case 14: Limiter threshold_normal from ``demandLimit {value,
unit W|kW}``, optional ``minOverThresholdDuration`` / ``minUnderThresholdDuration`` in s,
or ``off: true`` for no limit), ``demandResponse`` (use case 8: Limiter emergency profile;
``demandLimit`` is the emergency threshold, ``scheduledInterval {start, end}`` the window,
optional ``emergencyProfileId`` 1..65535, default 1); ``EndDevices[].mRID`` configured
meters. The customer-side types (``displayMessage``, ``priceSignal``,
``demandResponseEvent``, ``customerInterface``; use cases 4 and 8) go to
:mod:`~smmc_gateway.headend.commands.customer_controls` (not mixed with the others in a
request). ``connect``/``disconnect`` with an ``effectiveDateTime`` in the future are
scheduled (:mod:`~smmc_gateway.headend.commands.orders`); verb ``cancel`` cancels them,
``get`` lists them. Reply: one entry per control and meter with ``result`` OK/FAILED and
``details`` (``state`` for ping: energised | disconnected | unreachable; ``limiter`` for
limit and demandResponse: the values read back from the meter).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smmc_gateway.headend.commands.common import METER_ERRORS as _METER_ERRORS
from smmc_gateway.headend.commands.common import Invalid, NounHandler, control_items
from smmc_gateway.headend.commands.common import error_text as _error_text
from smmc_gateway.headend.commands.customer_controls import CustomerControls
from smmc_gateway.headend.commands.customer_controls import claims as customer_controls
from smmc_gateway.headend.commands.orders import EFFECTIVE_KINDS, OrderCommands, effective_at
from smmc_gateway.headend.effective import NewOrder
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.paging import iso
from smmc_gateway.headend.request_limits import EARLIEST, parse_utc, show
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError
from smmc_gateway.usecases.clock import describe as describe_clock

CONTROL_TYPES = ("connect", "disconnect", "ping", "clockSync", "limit", "demandResponse")
POWER_UNITS = {"W": 1, "kW": 1000}
_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class _Control:
    index: int
    mrid: str | None
    kind: str
    meters: list[str]
    params: dict[str, Any]


class EndDeviceControls(NounHandler):
    """``await EndDeviceControls(...)(verb, payload)`` -> the reply Outcome."""

    def __init__(
        self,
        headend: HeadEnd,
        commands: CommandsConfig,
        orders: OrderCommands,
        customer: CustomerControls,
        poll_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(headend)
        self.commands = commands
        self.orders = orders
        self.customer = customer
        self.poll_timeout_s = poll_timeout_s

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        return await self._controls(verb, payload)

    def _parse_controls(self, verb: str, payload: dict[str, Any]) -> list[_Control]:
        problems: list[str] = []
        if verb not in ("create", "execute"):
            problems.append(
                f"header.verb: {show(verb)}; EndDeviceControls takes create or "
                "execute (cancel: a scheduled connect/disconnect; get: the "
                "scheduled ones)"
            )
        items = payload.get("EndDeviceControl")
        if not isinstance(items, list) or not items:
            raise Invalid([*problems, "payload.EndDeviceControl: must be a non-empty array"])
        controls: list[_Control] = []
        for i, where, item, ref in control_items(items, problems):
            if ref not in CONTROL_TYPES:
                problems.append(
                    f"{where}.EndDeviceControlType.ref: {show(ref)} is not one of "
                    f"{', '.join(CONTROL_TYPES)}"
                )
            meters = self._meters(
                item,
                where,
                problems,
                groups=ref == "ping",
                refused=" (only ping takes groups: multicast)",
            )
            mrid = item.get("mRID") if isinstance(item.get("mRID"), str) else None
            params: dict[str, Any] = {}
            if ref == "limit":
                params = _limit_params(item, where, problems)
            elif ref == "demandResponse":
                params = _dr_params(item, where, problems)
            if "effectiveDateTime" in item and ref not in EFFECTIVE_KINDS:
                problems.append(
                    f"{where}.effectiveDateTime: taken by {' and '.join(EFFECTIVE_KINDS)} only"
                )
            elif "effectiveDateTime" in item:
                params["effective"] = effective_at(
                    item["effectiveDateTime"], f"{where}.effectiveDateTime", problems, self.commands
                )
            controls.append(_Control(i, mrid, str(ref)[:40], meters, params))
        if problems:
            raise Invalid(problems)
        return controls

    async def _controls(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if verb == "cancel":
            return await self.orders.cancel("EndDeviceControls", verb, payload)
        if verb == "get":
            return await self.orders.listing("EndDeviceControls", payload)
        if customer_controls(payload):
            return await self.customer(verb, payload)
        controls = self._parse_controls(verb, payload)
        entries: list[dict[str, Any]] = []
        # effective-dated controls are stored first (all or none, under their caps), so a
        # request over a cap does nothing at all
        later = [c for c in controls if c.params.get("effective") is not None]
        orders = (
            await self.orders.schedule(
                [
                    NewOrder(c.kind, m, c.params["effective"].timestamp(), c.mrid)
                    for c in later
                    for m in c.meters
                ]
            )
            if later
            else []
        )
        entries.extend(self.orders.control_entry(o, "scheduled") for o in orders)
        for c in controls:
            if c.params.get("effective") is not None:
                continue
            if c.kind == "ping":
                results = await self.headend.poll(c.meters, self.poll_timeout_s)
                for r in results:
                    entries.append(
                        self._entry(
                            c, r.meter_id, r.state != "unreachable", r.details, state=r.state
                        )
                    )
                continue
            if c.kind in ("limit", "demandResponse"):
                done = await asyncio.gather(*(self._limiter(c, m) for m in c.meters))
                for m, (ok, details, values) in zip(c.meters, done, strict=True):
                    extra = {"limiter": values} if values else {}
                    entries.append(self._entry(c, m, ok, details, **extra))
                continue
            outcomes = await asyncio.gather(*(self._one(c.kind, m) for m in c.meters))
            for m, (ok, details) in zip(c.meters, outcomes, strict=True):
                entries.append(self._entry(c, m, ok, details))
        good = sum(1 for e in entries if e["result"] == "OK")
        result = "OK" if good == len(entries) else ("FAILED" if good == 0 else "PARTIAL")
        errors: list[ReplyError] = [
            {"code": "MeterFailed", "details": f"{e['EndDevices'][0]['mRID']}: {e['details']}"}
            for e in entries
            if e["result"] != "OK"
        ]
        return Outcome(result, {"EndDeviceControl": entries}, errors)

    @staticmethod
    def _entry(c: _Control, meter: str, ok: bool, details: str, **extra: Any) -> dict[str, Any]:
        e: dict[str, Any] = {
            "EndDeviceControlType": {"ref": c.kind},
            "EndDevices": [{"mRID": meter}],
            "result": "OK" if ok else "FAILED",
            "details": details,
            **extra,
        }
        if c.mrid is not None:
            e["mRID"] = c.mrid
        return e

    async def _one(self, kind: str, meter: str) -> tuple[bool, str]:
        try:
            if kind in ("connect", "disconnect"):
                r = await self.headend.switch(meter, kind)  # type: ignore[arg-type]
                return True, (
                    f"output_state {r.after.output_state}, control_state {r.after.control_state}"
                )
            out = await self.headend.sync_clock(meter, Priority.COMMAND, force=False)
            if out.result is None:
                return False, f"refused: {out.refused}"
            if out.failed is not None:
                return False, out.failed
            return True, describe_clock(out.result) + out.last_sync_text()
        except _METER_ERRORS as exc:
            return False, _error_text(exc)

    async def _limiter(self, c: _Control, meter: str) -> tuple[bool, str, dict[str, Any]]:
        p = c.params
        try:
            if c.kind == "limit":
                st = await self.headend.limit(
                    meter,
                    p.get("threshold_w"),
                    p.get("min_over_s"),
                    p.get("min_under_s"),
                    off=p.get("off", False),
                )
                return (
                    True,
                    st.describe(),
                    {
                        "thresholdActive": st.threshold_active,
                        "thresholdNormal": st.threshold_normal,
                        "thresholdEmergency": st.threshold_emergency,
                        "minOverThresholdDuration": st.min_over_s,
                        "minUnderThresholdDuration": st.min_under_s,
                    },
                )
            em = await self.headend.emergency(
                meter, p["profile_id"], p["start"], p["duration_s"], p["threshold_w"]
            )
            return (
                True,
                em.describe(),
                {
                    "emergencyProfileId": em.profile_id,
                    "activationTime": em.activation.isoformat().replace("+00:00", "Z")
                    if em.activation
                    else None,
                    "duration": em.duration_s,
                    "emergencyProfileGroupIds": list(em.group_ids),
                    "thresholdEmergency": em.threshold_emergency,
                    "active": em.active,
                },
            )
        except _METER_ERRORS as exc:
            return False, _error_text(exc), {}


def _power(item: dict[str, Any], where: str, problems: list[str]) -> int | None:
    """``demandLimit {value, unit}`` in whole W (None and a problem when wrong)."""
    dl = item.get("demandLimit")
    if not isinstance(dl, dict):
        problems.append(
            f'{where}.demandLimit: missing; an object {{"value": number, '
            f'"unit": {" or ".join(POWER_UNITS)}}}'
        )
        return None
    value, unit = dl.get("value"), dl.get("unit")
    ok = True
    if not isinstance(unit, str) or unit not in POWER_UNITS:
        problems.append(
            f"{where}.demandLimit.unit: {show(unit)} is not one of {', '.join(POWER_UNITS)}"
        )
        ok = False
    if not isinstance(value, int | float) or isinstance(value, bool):
        problems.append(f"{where}.demandLimit.value: {show(value)} is not a number")
        return None
    if not ok:
        return None
    scaled = float(value) * POWER_UNITS[str(unit)] if math.isfinite(value) else math.inf
    if not (math.isfinite(scaled) and 1 <= round(scaled) < _U32):
        problems.append(
            f"{where}.demandLimit.value: {show(value)} {unit} is outside 1 W .. {_U32 - 1} W"
        )
        return None
    return round(scaled)


def _seconds(
    item: dict[str, Any], key: str, where: str, problems: list[str], high: int = _U32
) -> int | None:
    raw = item.get(key)
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= high:
        problems.append(f"{where}.{key}: {show(raw)} is not a whole number of seconds 0..{high}")
        return None
    return raw


def _limit_params(item: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    off = item.get("off", False)
    if not isinstance(off, bool):
        problems.append(f"{where}.off: {show(off)} is not true or false")
        off = False
    out: dict[str, Any] = {
        "off": off,
        "min_over_s": _seconds(item, "minOverThresholdDuration", where, problems),
        "min_under_s": _seconds(item, "minUnderThresholdDuration", where, problems),
    }
    if off:
        if "demandLimit" in item:
            problems.append(
                f"{where}.demandLimit: not allowed with off: true (off removes the limit)"
            )
    else:
        out["threshold_w"] = _power(item, where, problems)
    return out


def _dr_params(item: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"threshold_w": _power(item, where, problems)}
    pid = item.get("emergencyProfileId", 1)
    if not isinstance(pid, int) or isinstance(pid, bool) or not 1 <= pid <= 0xFFFF:
        problems.append(f"{where}.emergencyProfileId: {show(pid)} is not an integer 1..65535")
    out["profile_id"] = pid
    sched = item.get("scheduledInterval")
    if not isinstance(sched, dict):
        problems.append(
            f"{where}.scheduledInterval: missing; an object with start and end "
            "(UTC ISO-8601 like 2026-11-27T12:00:00Z)"
        )
        return out
    w = f"{where}.scheduledInterval"
    start = parse_utc(sched.get("start"), f"{w}.start", problems, earliest=EARLIEST)
    end = parse_utc(sched.get("end"), f"{w}.end", problems, earliest=EARLIEST)
    if start and end:
        if end <= start:
            problems.append(f"{where}.scheduledInterval.end: must be after start")
        elif end <= datetime.now(UTC):
            problems.append(f"{where}.scheduledInterval.end: {iso(end)} is in the past")
        elif (end - start).total_seconds() > _U32:
            problems.append(f"{where}.scheduledInterval: longer than {_U32} s")
        out.update(start=start, duration_s=int((end - start).total_seconds()))
    return out
