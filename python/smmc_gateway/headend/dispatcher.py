"""Command dispatch: an inbound request (noun, verb, payload) -> use cases -> one Outcome.

The uplink has already parsed the envelope, journaled the request and will publish
exactly one reply with what this returns. Here the payload is validated against
what the noun needs (every problem named with its JSON path and the allowed values)
before any meter is touched; a request that fails validation gets a FAILED reply and
does nothing.

Served:

* ``EndDeviceControls`` (create/execute): ``EndDeviceControl[].EndDeviceControlType.ref``
  one of ``connect``, ``disconnect``, ``ping`` (OMS poll; ``EndDeviceGroups`` may name
  configured groups: multicast), ``clockSync``, ``limit`` (use case 14: Limiter
  threshold_normal from ``demandLimit {value, unit W|kW}``, optional
  ``minOverThresholdDuration`` / ``minUnderThresholdDuration`` in s, or ``off: true`` for no
  limit), ``demandResponse`` (use case 8: Limiter emergency profile; ``demandLimit`` is the
  emergency threshold, ``scheduledInterval {start, end}`` the window, optional
  ``emergencyProfileId`` 1..65535, default 1); ``EndDevices[].mRID`` configured meters.
  Reply: one entry per control and meter with ``result`` OK/FAILED and ``details``
  (``state`` for ping: energised | disconnected | unreachable; ``limiter`` for limit and
  demandResponse: the values read back from the meter).
* ``MeterReadings`` (get): on-demand read of ``EndDevices[].mRID``: registers (all of the
  model's, or ``ReadingTypes[].obis``) and, with ``timeSchedule.start`` (and ``end``),
  the load profile in that range. Reply: a MeterReadings payload. With ``fromStore: true``
  the stored data instead, never the meter (see ``CustomerMeterDataSet`` below).
* ``MasterDataLinkageConfig`` (create/change): customer account move (use case 12) of
  ``Meter[].mRID`` with ``ConfigurationEvent.reason`` ``moveOut`` (end-of-billing, final
  read published as MeterReadings, disconnect) or ``moveIn`` (reconnect, opening read).
  Reply: one entry per meter listing the steps done; events for each step.
* ``EndDeviceFirmware``, ``MeterConfig``, ``PricingStructureConfig``: handled by
  :mod:`~smmc_gateway.headend.commands_firmware` and
  :mod:`~smmc_gateway.headend.commands_config` (their docstrings say what they take;
  MeterConfig also carries ``keyChange``).
* ``EndDeviceConfig`` (get): the discovered configuration of meters (use case 1), from
  :mod:`~smmc_gateway.headend.commands_discovery`; ``refresh`` re-discovers.
* ``CustomerMeterDataSet`` (get, use case 3: stored readings of a range, never the meter;
  bounded, PARTIAL ``Truncated`` says how to page) and ``ReadingsReport`` (get, use case 11:
  expected vs received intervals, gaps, reads ok/failed, event counts), from
  :mod:`~smmc_gateway.headend.commands_store` (answered from the data store only).

Other nouns of the contract get a FAILED reply ``NotImplemented`` naming the noun.
A request that arrives while the gateway is stopping is not answered now: it stays in
the journal and is served after the restart.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.commands_config import MeterConfigCommands, PricingCommands
from smmc_gateway.headend.commands_discovery import DiscoveryCommands
from smmc_gateway.headend.commands_firmware import FirmwareCommands
from smmc_gateway.headend.commands_store import (
    CustomerDataCommands,
    ReadingsReportCommands,
    StoredOrLiveReadings,
)
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import MeterReadingPart, ReplyError, meter_readings_payload
from smmc_gateway.usecases.clock import describe as describe_clock
from smmc_gateway.usecases.connect import SwitchNotConfirmed
from smmc_gateway.usecases.limiter import LimiterNotConfirmed

log = structlog.get_logger("smmc_gateway.dispatcher")

CONTROL_TYPES = ("connect", "disconnect", "ping", "clockSync", "limit", "demandResponse")
MOVES = ("moveOut", "moveIn")
POWER_UNITS = {"W": 1, "kW": 1000}
_U32 = 0xFFFFFFFF
_METER_ERRORS = (SessionError, OSError, TimeoutError, SwitchNotConfirmed, LimiterNotConfirmed)
_OBIS = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


class Invalid(Exception):
    """The request payload is invalid; ``problems`` name path and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def failed(code: str, details: str) -> Outcome:
    return Outcome("FAILED", errors=[{"code": code, "details": details}])


@dataclass(frozen=True)
class _Control:
    index: int
    mrid: str | None
    kind: str
    meters: list[str]
    params: dict[str, Any]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Dispatcher:
    """The uplink's command handler: ``await dispatcher(noun, verb, payload)``."""

    def __init__(self, headend: HeadEnd, *, poll_timeout_s: float = 30.0) -> None:
        self.headend = headend
        self.poll_timeout_s = poll_timeout_s
        self._nouns: dict[str, Callable[[str, dict[str, Any]], Awaitable[Outcome]]] = {
            "EndDeviceControls": self._controls,
            "MeterReadings": StoredOrLiveReadings(headend, self._readings),
            "MasterDataLinkageConfig": self._linkage,
            "EndDeviceFirmware": FirmwareCommands(headend),
            "MeterConfig": MeterConfigCommands(headend),
            "PricingStructureConfig": PricingCommands(headend),
            "EndDeviceConfig": DiscoveryCommands(headend),
            "CustomerMeterDataSet": CustomerDataCommands(headend),
            "ReadingsReport": ReadingsReportCommands(headend),
        }

    async def __call__(self, noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        handler = self._nouns.get(noun)
        if handler is None:
            return failed("NotImplemented", f"noun {noun!r} is not served by this gateway yet; "
                          f"served: {', '.join(sorted(self._nouns))}")
        try:
            return await handler(verb, payload)
        except Invalid as exc:
            return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p}
                                             for p in exc.problems])
        except GatewayStopping:
            # Checkpoint: leave it journaled and unreplied; the uplink cancels this task as
            # it stops, and the next start dispatches the request again (one reply in all).
            log.info("command_parked_for_restart", noun=noun)
            await asyncio.Event().wait()
            raise AssertionError("unreachable") from None

    # -- validation helpers ------------------------------------------------------------
    def _meters(self, item: dict[str, Any], where: str, problems: list[str],
                groups: bool = False, key: str = "EndDevices") -> list[str]:
        out: list[str] = []
        devices = item.get(key, [])
        if not isinstance(devices, list):
            problems.append(f"{where}.{key}: must be an array of {{\"mRID\": ...}}")
            devices = []
        for j, d in enumerate(devices):
            mrid = d.get("mRID") if isinstance(d, dict) else None
            if not isinstance(mrid, str) or not mrid:
                problems.append(f"{where}.{key}[{j}].mRID: missing or not a string")
            elif not self.headend.fleet.has(mrid):
                problems.append(f"{where}.{key}[{j}].mRID: meter {mrid!r} is not "
                                "configured on this gateway")
            else:
                out.append(mrid)
        raw_groups = item.get("EndDeviceGroups", []) if groups else []
        if not isinstance(raw_groups, list):
            problems.append(f"{where}.EndDeviceGroups: must be an array of {{\"mRID\": ...}}")
            raw_groups = []
        for j, g in enumerate(raw_groups):
            name = g.get("mRID") if isinstance(g, dict) else None
            members = self.headend.fleet.group(name) if isinstance(name, str) else []
            if not members:
                problems.append(f"{where}.EndDeviceGroups[{j}].mRID: {name!r} is not a "
                                "configured group (no meter names it)")
            out.extend(m for m in members if m not in out)
        if not out and not any(p.startswith(where) for p in problems):
            problems.append(f"{where}: names no meter ({key}"
                            f"{' or EndDeviceGroups' if groups else ''} is empty)")
        return out

    # -- EndDeviceControls ---------------------------------------------------------------
    def _parse_controls(self, verb: str, payload: dict[str, Any]) -> list[_Control]:
        problems: list[str] = []
        if verb not in ("create", "execute"):
            problems.append(f"header.verb: {verb!r}; EndDeviceControls takes create or execute")
        items = payload.get("EndDeviceControl")
        if not isinstance(items, list) or not items:
            raise Invalid([*problems, "payload.EndDeviceControl: must be a non-empty array"])
        controls: list[_Control] = []
        for i, item in enumerate(items):
            where = f"payload.EndDeviceControl[{i}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: must be an object")
                continue
            ctype = item.get("EndDeviceControlType")
            ref = ctype.get("ref") if isinstance(ctype, dict) else None
            if ref not in CONTROL_TYPES:
                problems.append(f"{where}.EndDeviceControlType.ref: {ref!r} is not one of "
                                f"{', '.join(CONTROL_TYPES)}")
            meters = self._meters(item, where, problems, groups=ref == "ping")
            mrid = item.get("mRID") if isinstance(item.get("mRID"), str) else None
            params: dict[str, Any] = {}
            if ref == "limit":
                params = _limit_params(item, where, problems)
            elif ref == "demandResponse":
                params = _dr_params(item, where, problems)
            controls.append(_Control(i, mrid, str(ref), meters, params))
        if problems:
            raise Invalid(problems)
        return controls

    async def _controls(self, verb: str, payload: dict[str, Any]) -> Outcome:
        controls = self._parse_controls(verb, payload)
        entries: list[dict[str, Any]] = []
        for c in controls:
            if c.kind == "ping":
                results = await self.headend.poll(c.meters, self.poll_timeout_s)
                for r in results:
                    entries.append(self._entry(c, r.meter_id, r.state != "unreachable",
                                               r.details, state=r.state))
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
            for e in entries if e["result"] != "OK"]
        return Outcome(result, {"EndDeviceControl": entries}, errors)

    @staticmethod
    def _entry(c: _Control, meter: str, ok: bool, details: str, **extra: Any) -> dict[str, Any]:
        e: dict[str, Any] = {"EndDeviceControlType": {"ref": c.kind},
                             "EndDevices": [{"mRID": meter}],
                             "result": "OK" if ok else "FAILED", "details": details, **extra}
        if c.mrid is not None:
            e["mRID"] = c.mrid
        return e

    async def _one(self, kind: str, meter: str) -> tuple[bool, str]:
        try:
            if kind in ("connect", "disconnect"):
                r = await self.headend.switch(meter, kind)  # type: ignore[arg-type]
                return True, (f"output_state {r.after.output_state}, control_state "
                              f"{r.after.control_state}")
            from smmc_gateway.headend.gates import Priority

            out = await self.headend.sync_clock(meter, Priority.COMMAND, force=False)
            if out.result is None:
                return False, f"refused: {out.refused}"
            return True, describe_clock(out.result)
        except _METER_ERRORS as exc:
            return False, _error_text(exc)

    async def _limiter(self, c: _Control, meter: str) -> tuple[bool, str, dict[str, Any]]:
        p = c.params
        try:
            if c.kind == "limit":
                st = await self.headend.limit(meter, p.get("threshold_w"), p.get("min_over_s"),
                                              p.get("min_under_s"), off=p.get("off", False))
                return True, st.describe(), {
                    "thresholdActive": st.threshold_active, "thresholdNormal":
                    st.threshold_normal, "thresholdEmergency": st.threshold_emergency,
                    "minOverThresholdDuration": st.min_over_s,
                    "minUnderThresholdDuration": st.min_under_s}
            em = await self.headend.emergency(meter, p["profile_id"], p["start"],
                                              p["duration_s"], p["threshold_w"])
            return True, em.describe(), {
                "emergencyProfileId": em.profile_id,
                "activationTime": em.activation.isoformat().replace("+00:00", "Z")
                if em.activation else None,
                "duration": em.duration_s, "emergencyProfileGroupIds": list(em.group_ids),
                "thresholdEmergency": em.threshold_emergency, "active": em.active}
        except _METER_ERRORS as exc:
            return False, _error_text(exc), {}

    # -- MasterDataLinkageConfig (account move) -----------------------------------------
    async def _linkage(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb not in ("create", "change"):
            problems.append(f"header.verb: {verb!r}; MasterDataLinkageConfig takes create or "
                            "change")
        ev = payload.get("ConfigurationEvent")
        move = ev.get("reason") if isinstance(ev, dict) else None
        if move not in MOVES:
            problems.append(f"payload.ConfigurationEvent.reason: {move!r} is not one of "
                            f"{', '.join(MOVES)}")
        meters = self._meters(payload, "payload", problems, key="Meter")
        if problems:
            raise Invalid(problems)
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
            entry.update(result="FAILED" if r.error else "OK", steps=r.steps,
                         registers=len(r.readings))
            if r.error:
                entry["details"] = r.error
                errors.append({"code": "MeterFailed", "details": f"{m}: {r.error}"})
            if r.billing_row is not None:
                entry["billingEntry"] = r.billing_row
            entries.append(entry)
        good = len(entries) - len(errors)
        result = "OK" if not errors else ("FAILED" if good == 0 else "PARTIAL")
        return Outcome(result, {"MasterDataLinkageConfig": entries}, errors)

    # -- MeterReadings get -----------------------------------------------------------
    async def _readings(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb != "get":
            problems.append(f"header.verb: {verb!r}; MeterReadings takes get")
        meters = self._meters(payload, "payload", problems)
        obis: list[str] = []
        for j, rt in enumerate(payload.get("ReadingTypes", []) or []):
            o = rt.get("obis") if isinstance(rt, dict) else None
            if not isinstance(o, str) or not _OBIS.match(o):
                problems.append(f"payload.ReadingTypes[{j}].obis: {o!r} is not an OBIS code "
                                "like 1.0.1.8.0.255")
            else:
                obis.append(o)
        start = end = None
        sched = payload.get("timeSchedule")
        if sched is not None:
            if not isinstance(sched, dict):
                problems.append("payload.timeSchedule: must be an object with start/end")
            else:
                start = _time(sched, "start", problems, required=True)
                end = _time(sched, "end", problems, required=False)
                if start and end and end <= start:
                    problems.append("payload.timeSchedule.end: must be after start")
        if problems:
            raise Invalid(problems)
        parts: list[MeterReadingPart] = []
        errors: list[ReplyError] = []
        for m in meters:
            try:
                r = await self.headend.read_on_demand(m, obis or None, start, end)
            except (SessionError, OSError, TimeoutError) as exc:
                errors.append({"code": "MeterFailed", "details": f"{m}: {_error_text(exc)}"})
                continue
            part = MeterReadingPart(meter=m, readings=r.readings)
            if r.profile is not None and r.profile.interval_blocks is not None:
                part["interval_blocks"] = r.profile.interval_blocks
            parts.append(part)
        if not parts:
            return Outcome("FAILED", {}, errors)
        body = json.loads(meter_readings_payload(parts))
        return Outcome("PARTIAL" if errors else "OK", body, errors)


def _time(t: dict[str, Any], key: str, problems: list[str], required: bool) -> datetime | None:
    raw = t.get(key)
    if raw is None:
        if required:
            problems.append(f"payload.timeSchedule.{key}: missing")
        return None
    if not isinstance(raw, str) or not _ISO.match(raw):
        problems.append(f"payload.timeSchedule.{key}: {raw!r} is not UTC ISO-8601 like "
                        "2026-11-27T12:00:00Z")
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def _power(item: dict[str, Any], where: str, problems: list[str]) -> int | None:
    """``demandLimit {value, unit}`` in whole W (None and a problem when wrong)."""
    dl = item.get("demandLimit")
    if not isinstance(dl, dict):
        problems.append(f"{where}.demandLimit: missing; an object {{\"value\": number, "
                        f"\"unit\": {' or '.join(POWER_UNITS)}}}")
        return None
    value, unit = dl.get("value"), dl.get("unit")
    ok = True
    if unit not in POWER_UNITS:
        problems.append(f"{where}.demandLimit.unit: {unit!r} is not one of "
                        f"{', '.join(POWER_UNITS)}")
        ok = False
    if not isinstance(value, int | float) or isinstance(value, bool):
        problems.append(f"{where}.demandLimit.value: {value!r} is not a number")
        return None
    if not ok:
        return None
    watts = round(value * POWER_UNITS[str(unit)])
    if not 1 <= watts < _U32:
        problems.append(f"{where}.demandLimit.value: {value!r} {unit} is outside 1 W .. "
                        f"{_U32 - 1} W")
        return None
    return watts


def _seconds(item: dict[str, Any], key: str, where: str, problems: list[str],
             high: int = _U32) -> int | None:
    raw = item.get(key)
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= high:
        problems.append(f"{where}.{key}: {raw!r} is not a whole number of seconds 0..{high}")
        return None
    return raw


def _limit_params(item: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    off = item.get("off", False)
    if not isinstance(off, bool):
        problems.append(f"{where}.off: {off!r} is not true or false")
        off = False
    out: dict[str, Any] = {"off": off,
                           "min_over_s": _seconds(item, "minOverThresholdDuration", where,
                                                  problems),
                           "min_under_s": _seconds(item, "minUnderThresholdDuration", where,
                                                   problems)}
    if off:
        if "demandLimit" in item:
            problems.append(f"{where}.demandLimit: not allowed with off: true (off removes "
                            "the limit)")
    else:
        out["threshold_w"] = _power(item, where, problems)
    return out


def _dr_params(item: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"threshold_w": _power(item, where, problems)}
    pid = item.get("emergencyProfileId", 1)
    if not isinstance(pid, int) or isinstance(pid, bool) or not 1 <= pid <= 0xFFFF:
        problems.append(f"{where}.emergencyProfileId: {pid!r} is not an integer 1..65535")
    out["profile_id"] = pid
    sched = item.get("scheduledInterval")
    if not isinstance(sched, dict):
        problems.append(f"{where}.scheduledInterval: missing; an object with start and end "
                        "(UTC ISO-8601 like 2026-11-27T12:00:00Z)")
        return out
    sub: list[str] = []
    start = _time(sched, "start", sub, required=True)
    end = _time(sched, "end", sub, required=True)
    problems.extend(p.replace("payload.timeSchedule", f"{where}.scheduledInterval")
                    for p in sub)
    if start and end:
        if end <= start:
            problems.append(f"{where}.scheduledInterval.end: must be after start")
        elif end <= datetime.now(UTC):
            problems.append(f"{where}.scheduledInterval.end: {sched['end']} is in the past")
        elif (end - start).total_seconds() > _U32:
            problems.append(f"{where}.scheduledInterval: longer than {_U32} s")
        out.update(start=start, duration_s=int((end - start).total_seconds()))
    return out


def meters_of(entries: Sequence[dict[str, Any]]) -> list[str]:
    return [e["EndDevices"][0]["mRID"] for e in entries]
