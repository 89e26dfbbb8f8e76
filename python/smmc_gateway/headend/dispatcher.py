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
  The customer-side types ``displayMessage``, ``priceSignal``, ``demandResponseEvent`` and
  ``customerInterface`` (use cases 4 and 8) go to
  :mod:`~smmc_gateway.headend.commands_customer` (not mixed with the others in a request).
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
  Reply: one entry per meter listing the steps done; events for each step. A request with
  reason ``hanInstall``/``hanRemove`` or verb ``get`` is about HAN devices instead (use
  case 4): :mod:`~smmc_gateway.headend.commands_han`.
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

* ``MeterReadSchedule`` (create/change/delete/get, issue 11): read schedules per meter or
  group, kept in the fleet database and applied by the scheduler:
  :mod:`~smmc_gateway.headend.commands_schedule`; :meth:`Dispatcher.background` loads them
  at start.
* Effective dates (issue 11): ``connect``/``disconnect`` items and account moves with an
  ``effectiveDateTime`` in the future are scheduled (reply status ``scheduled``, an
  ``orderId`` per meter) and run then; verb ``cancel`` on EndDeviceControls or
  MasterDataLinkageConfig cancels them: :mod:`~smmc_gateway.headend.commands_orders`, the
  runner :meth:`Dispatcher.background`.

Other nouns of the contract get a FAILED reply ``NotImplemented`` naming the noun; a
served noun the configuration turns off (``[commands.enabled]``; MeterConfig, keyChange
and EndDeviceFirmware are off by default) gets FAILED ``NounDisabled`` naming the key.

Every request is bounded before it runs (:mod:`~smmc_gateway.headend.request_limits`):
the meters it reaches over all its items, groups expanded, by ``[commands]
max_meters_per_request``; its arrays by fixed bounds; a live MeterReadings profile read
by window / the model's capture period, summed over the meters, against
``max_query_intervals``; the data-store nouns likewise (see
:mod:`~smmc_gateway.headend.commands_store`). Over a bound: FAILED ``LimitExceeded``
naming the limit and the count, no meter touched. A reply is kept under
``max_reply_bytes`` by paging (``Truncated``), and its error list is clipped.
A request that arrives while the gateway is stopping is not answered now: it stays in
the journal and is served after the restart.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.commands_config import MeterConfigCommands, PricingCommands
from smmc_gateway.headend.commands_customer import CustomerControls
from smmc_gateway.headend.commands_customer import claims as customer_controls
from smmc_gateway.headend.commands_discovery import DiscoveryCommands
from smmc_gateway.headend.commands_firmware import FirmwareCommands
from smmc_gateway.headend.commands_han import HanCommands
from smmc_gateway.headend.commands_orders import EFFECTIVE_KINDS, OrderCommands, effective_at
from smmc_gateway.headend.commands_schedule import ReadScheduleCommands
from smmc_gateway.headend.commands_store import (
    CustomerDataCommands,
    ReadingsReportCommands,
    StoredOrLiveReadings,
)
from smmc_gateway.headend.effective import NewOrder
from smmc_gateway.headend.paging import MIN_PART_BYTES, fit_blocks, reply_budget, truncated
from smmc_gateway.headend.read_schedules import ReadSchedules
from smmc_gateway.headend.request_limits import (
    EARLIEST,
    FUTURE_SLACK_S,
    MAX_READING_TYPES,
    LimitExceeded,
    clip_errors,
    count_meters,
    parse_utc,
    show,
    target_meters,
    work_problem,
)
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import MeterReadingPart, ReplyError, meter_readings_payload
from smmc_gateway.uplink.store import StoreClosed
from smmc_gateway.usecases.clock import describe as describe_clock
from smmc_gateway.usecases.connect import SwitchNotConfirmed
from smmc_gateway.usecases.limiter import LimiterNotConfirmed

log = structlog.get_logger("smmc_gateway.dispatcher")

CONTROL_TYPES = ("connect", "disconnect", "ping", "clockSync", "limit", "demandResponse")
MOVES = ("moveOut", "moveIn")
POWER_UNITS = {"W": 1, "kW": 1000}
_U32 = 0xFFFFFFFF
_METER_ERRORS = (SessionError, OSError, TimeoutError, SwitchNotConfirmed, LimiterNotConfirmed)
_OBIS = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", re.ASCII)


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

    def __init__(self, headend: HeadEnd, *, commands: CommandsConfig | None = None,
                 poll_timeout_s: float = 30.0) -> None:
        self.headend = headend
        self.commands = commands if commands is not None else CommandsConfig()
        self.poll_timeout_s = poll_timeout_s
        c = self.commands
        self.customer = CustomerControls(headend)  # EndDeviceControls, customer side
        self.han = HanCommands(headend, c)  # MasterDataLinkageConfig, HAN devices
        self.discovery = DiscoveryCommands(headend, c)  # EndDeviceConfig (+ provisioning)
        self.orders = OrderCommands(headend, c)  # effective-dated controls and moves
        self.read_schedules = ReadSchedules(headend.fleet, headend.scheduler, headend.model_of,
                                            headend.scheduled_read)
        self._nouns: dict[str, Callable[[str, dict[str, Any]], Awaitable[Outcome]]] = {
            "EndDeviceControls": self._controls,
            "MeterReadings": StoredOrLiveReadings(headend, self._readings, c),
            "MasterDataLinkageConfig": self._linkage,
            "EndDeviceFirmware": FirmwareCommands(headend),
            "MeterConfig": MeterConfigCommands(headend, c),
            "PricingStructureConfig": PricingCommands(headend),
            "EndDeviceConfig": self.discovery,
            "CustomerMeterDataSet": CustomerDataCommands(headend, c),
            "ReadingsReport": ReadingsReportCommands(headend, c),
            "MeterReadSchedule": ReadScheduleCommands(self.read_schedules, c),
        }

    async def background(self, ready: asyncio.Event | None = None) -> None:
        """What runs beside the requests, until cancelled: the stored read schedules
        applied to the scheduler, and effective-dated orders run when due (overdue ones
        once the uplink is ``ready``, so queued cancellations come first)."""
        try:
            count = await self.read_schedules.load()
            log.info("read_schedules_loaded", schedules=count)
        except (sqlite3.Error, StoreClosed) as exc:  # orders still run; schedules after restart
            log.error("read_schedules_not_loaded", error=str(exc))
        await self.orders.orders.run(ready)

    async def __call__(self, noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        handler = self._nouns.get(noun)
        if handler is None:
            return failed("NotImplemented", f"noun {show(noun)} is not served by this gateway "
                          f"yet; served: {', '.join(sorted(self._nouns))}")
        if not self.commands.serves(noun):
            return failed("NounDisabled", f"noun {noun} is disabled on this gateway; the "
                          f"operator turns it on with commands.enabled.{noun} = true in the "
                          "gateway configuration")
        if not isinstance(payload, dict):
            return failed("InvalidRequest", f"payload: {show(payload)} is not an object")
        try:
            count_meters(noun, payload, self.headend.fleet, self.commands)
            outcome = await handler(verb, payload)
        except Invalid as exc:
            return Outcome("FAILED", errors=self._clip([{"code": "InvalidRequest", "details": p}
                                                        for p in exc.problems]))
        except LimitExceeded as exc:
            log.info("command_over_limit", noun=noun, details=str(exc)[:300])
            return Outcome("FAILED", errors=self._clip([{"code": "LimitExceeded", "details": p}
                                                        for p in exc.problems]))
        except GatewayStopping:
            # Checkpoint: leave it journaled and unreplied; the uplink cancels this task as
            # it stops, and the next start dispatches the request again (one reply in all).
            log.info("command_parked_for_restart", noun=noun)
            await asyncio.Event().wait()
            raise AssertionError("unreachable") from None
        return Outcome(outcome.result, outcome.payload, self._clip(outcome.errors))

    def _clip(self, errors: Sequence[ReplyError]) -> list[ReplyError]:
        """Errors echo the request: at most a quarter of the reply's bytes."""
        return clip_errors(errors, self.commands.max_reply_bytes // 4)

    # -- validation helpers ------------------------------------------------------------
    def _meters(self, item: dict[str, Any], where: str, problems: list[str],
                groups: bool = False, key: str = "EndDevices", refused: str = "") -> list[str]:
        return target_meters(self.headend.fleet, item, where, problems, key=key, groups=groups,
                             groups_refused=refused)

    # -- EndDeviceControls ---------------------------------------------------------------
    def _parse_controls(self, verb: str, payload: dict[str, Any]) -> list[_Control]:
        problems: list[str] = []
        if verb not in ("create", "execute"):
            problems.append(f"header.verb: {show(verb)}; EndDeviceControls takes create or "
                            "execute (cancel: a scheduled connect/disconnect; get: the "
                            "scheduled ones)")
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
                problems.append(f"{where}.EndDeviceControlType.ref: {show(ref)} is not one of "
                                f"{', '.join(CONTROL_TYPES)}")
            meters = self._meters(item, where, problems, groups=ref == "ping",
                                  refused=" (only ping takes groups: multicast)")
            mrid = item.get("mRID") if isinstance(item.get("mRID"), str) else None
            params: dict[str, Any] = {}
            if ref == "limit":
                params = _limit_params(item, where, problems)
            elif ref == "demandResponse":
                params = _dr_params(item, where, problems)
            if "effectiveDateTime" in item and ref not in EFFECTIVE_KINDS:
                problems.append(f"{where}.effectiveDateTime: taken by "
                                f"{' and '.join(EFFECTIVE_KINDS)} only")
            elif "effectiveDateTime" in item:
                params["effective"] = effective_at(item["effectiveDateTime"],
                                                   f"{where}.effectiveDateTime", problems,
                                                   self.commands)
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
        orders = await self.orders.schedule([
            NewOrder(c.kind, m, c.params["effective"].timestamp(), c.mrid)
            for c in later for m in c.meters]) if later else []
        entries.extend(self.orders.control_entry(o, "scheduled") for o in orders)
        for c in controls:
            if c.params.get("effective") is not None:
                continue
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
            if out.failed is not None:
                return False, out.failed
            return True, describe_clock(out.result) + out.last_sync_text()
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
        if verb == "cancel":
            return await self.orders.cancel("MasterDataLinkageConfig", verb, payload)
        if self.han.claims(verb, payload):
            return await self.han(verb, payload)
        if verb == "get":  # ConfigurationEvent.reason moveOut / moveIn: the scheduled moves
            return await self.orders.listing("MasterDataLinkageConfig", payload)
        problems: list[str] = []
        if verb not in ("create", "change"):
            problems.append(f"header.verb: {show(verb)}; MasterDataLinkageConfig takes create "
                            "or change (cancel: a scheduled move; get with reason "
                            "moveOut/moveIn: the scheduled moves)")
        ev = payload.get("ConfigurationEvent")
        move = ev.get("reason") if isinstance(ev, dict) else None
        if move not in MOVES:
            problems.append(f"payload.ConfigurationEvent.reason: {show(move)} is not one of "
                            f"{', '.join(MOVES)}")
        meters = self._meters(payload, "payload", problems, key="Meter")
        effective = None
        if isinstance(ev, dict) and "effectiveDateTime" in ev:
            effective = effective_at(ev["effectiveDateTime"],
                                     "payload.ConfigurationEvent.effectiveDateTime", problems,
                                     self.commands)
        mrid = ev.get("mRID") if isinstance(ev, dict) else None
        if mrid is not None and (not isinstance(mrid, str) or not mrid):
            problems.append(f"payload.ConfigurationEvent.mRID: {show(mrid)} is not a string")
        if problems:
            raise Invalid(problems)
        if effective is not None:
            orders = await self.orders.schedule([NewOrder(str(move), m, effective.timestamp(),
                                                          mrid) for m in meters])
            return Outcome("OK", {"MasterDataLinkageConfig": [
                self.orders.move_entry(o, "scheduled") for o in orders]})
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
            problems.append(f"header.verb: {show(verb)}; MeterReadings takes get")
        meters = self._meters(payload, "payload", problems)
        obis: list[str] = []
        types = payload.get("ReadingTypes", [])
        if not isinstance(types, list):
            problems.append("payload.ReadingTypes: must be an array of {\"obis\": ...}")
            types = []
        elif len(types) > MAX_READING_TYPES:
            problems.append(f"payload.ReadingTypes: {len(types)} entries; at most "
                            f"{MAX_READING_TYPES}")
            types = []
        for j, rt in enumerate(types):
            o = rt.get("obis") if isinstance(rt, dict) else None
            if not isinstance(o, str) or not _OBIS.fullmatch(o):
                problems.append(f"payload.ReadingTypes[{j}].obis: {show(o)} is not an OBIS "
                                "code like 1.0.1.8.0.255")
            else:
                obis.append(o)
        start, end = _schedule(payload, problems)
        if problems:
            raise Invalid(problems)
        if start is not None:
            # the work bound first (a window back to year 1 is over it), then the dates a
            # profile read can take
            self._check_profile_work(meters, start, end)
            for key, moment in (("start", start), ("end", end)):
                if moment is not None and moment < EARLIEST:
                    problems.append(f"payload.timeSchedule.{key}: {iso(moment)} is before "
                                    f"{iso(EARLIEST)}; no meter holds a profile that old")
            if problems:
                raise Invalid(problems)
        parts: list[MeterReadingPart] = []
        errors: list[ReplyError] = []
        cap = f"commands.max_reply_bytes = {self.commands.max_reply_bytes}"
        left = reply_budget(self.commands.max_reply_bytes, len(meters))
        for m in meters:
            if left < MIN_PART_BYTES:
                errors.append(truncated(m, "its readings", None, f"the reply reached {cap}"))
                continue
            try:
                r = await self.headend.read_on_demand(m, obis or None, start, end)
            except (SessionError, OSError, TimeoutError) as exc:
                errors.append({"code": "MeterFailed", "details": f"{m}: {_error_text(exc)}"})
                continue
            part = MeterReadingPart(meter=m, readings=r.readings)
            left -= len(meter_readings_payload([part]))
            if r.profile is not None and r.profile.interval_blocks is not None:
                # up to max_query_intervals rows: parsed and cut off the event loop
                blocks, cut = await asyncio.to_thread(_fit_profile,
                                                      r.profile.interval_blocks, left)
                part["interval_blocks"] = blocks
                left -= sum(len(json.dumps(b, separators=(",", ":"))) for b in blocks)
                if cut is not None:
                    errors.append(truncated(m, f"load profile cut ({cap})", cut))
            parts.append(part)
        if not parts:
            return Outcome("FAILED", {}, errors)
        body = json.loads(meter_readings_payload(parts))
        return Outcome("PARTIAL" if errors else "OK", body, errors)

    def _check_profile_work(self, meters: list[str], start: datetime,
                            end: datetime | None) -> None:
        """A live profile read asks each meter for window / its capture period intervals
        (the window up to now, or tomorrow at the latest: a meter holds nothing later):
        bounded by ``max_query_intervals`` before any session is opened."""
        latest = datetime.now(UTC) + timedelta(seconds=FUTURE_SLACK_S)
        end = min(end, latest) if end is not None else datetime.now(UTC)
        seconds = max(0.0, (end - start).total_seconds())
        work = sum(math.ceil(seconds / max(1.0, self.headend.model_of(m).capture_period_s))
                   for m in meters)
        problem = work_problem(work, self.commands,
                               f"payload.timeSchedule: {iso(start)} .. {iso(end)} / the capture "
                               f"period x {len(meters)} meter(s)",
                               "narrow timeSchedule or name fewer meters")
        if problem is not None:
            raise LimitExceeded(problem)


def _fit_profile(raw: bytes, budget: int) -> tuple[list[dict[str, Any]], datetime | None]:
    return fit_blocks(json.loads(raw), budget)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _schedule(payload: dict[str, Any], problems: list[str]
              ) -> tuple[datetime | None, datetime | None]:
    """``timeSchedule`` of a live read: start and optional end, both inclusive (the
    profile entries stamped in [start, end]; end = start is the one entry then, which
    is where the last page of a cut profile may start); without an end the read runs to
    now, so a start in the future is a problem too."""
    sched = payload.get("timeSchedule")
    if sched is None:
        return None, None
    if not isinstance(sched, dict):
        problems.append("payload.timeSchedule: must be an object with start/end")
        return None, None
    where = "payload.timeSchedule"
    if "start" not in sched:
        problems.append(f"{where}.start: missing")
        return None, None
    start = parse_utc(sched["start"], f"{where}.start", problems)
    end = parse_utc(sched["end"], f"{where}.end", problems) \
        if sched.get("end") is not None else None
    if start is None:
        return None, None
    if end is not None and end < start:
        problems.append(f"{where}.end: {iso(end)} is before start {iso(start)}")
    elif end is None and start >= datetime.now(UTC):
        problems.append(f"{where}.start: {iso(start)} is in the future; with no end the "
                        "read runs up to now")
    return start, end


def _power(item: dict[str, Any], where: str, problems: list[str]) -> int | None:
    """``demandLimit {value, unit}`` in whole W (None and a problem when wrong)."""
    dl = item.get("demandLimit")
    if not isinstance(dl, dict):
        problems.append(f"{where}.demandLimit: missing; an object {{\"value\": number, "
                        f"\"unit\": {' or '.join(POWER_UNITS)}}}")
        return None
    value, unit = dl.get("value"), dl.get("unit")
    ok = True
    if not isinstance(unit, str) or unit not in POWER_UNITS:
        problems.append(f"{where}.demandLimit.unit: {show(unit)} is not one of "
                        f"{', '.join(POWER_UNITS)}")
        ok = False
    if not isinstance(value, int | float) or isinstance(value, bool):
        problems.append(f"{where}.demandLimit.value: {show(value)} is not a number")
        return None
    if not ok:
        return None
    scaled = float(value) * POWER_UNITS[str(unit)] if math.isfinite(value) else math.inf
    if not (math.isfinite(scaled) and 1 <= round(scaled) < _U32):
        problems.append(f"{where}.demandLimit.value: {show(value)} {unit} is outside 1 W .. "
                        f"{_U32 - 1} W")
        return None
    return round(scaled)


def _seconds(item: dict[str, Any], key: str, where: str, problems: list[str],
             high: int = _U32) -> int | None:
    raw = item.get(key)
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= high:
        problems.append(f"{where}.{key}: {show(raw)} is not a whole number of seconds "
                        f"0..{high}")
        return None
    return raw


def _limit_params(item: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    off = item.get("off", False)
    if not isinstance(off, bool):
        problems.append(f"{where}.off: {show(off)} is not true or false")
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
        problems.append(f"{where}.emergencyProfileId: {show(pid)} is not an integer "
                        "1..65535")
    out["profile_id"] = pid
    sched = item.get("scheduledInterval")
    if not isinstance(sched, dict):
        problems.append(f"{where}.scheduledInterval: missing; an object with start and end "
                        "(UTC ISO-8601 like 2026-11-27T12:00:00Z)")
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


def meters_of(entries: Sequence[dict[str, Any]]) -> list[str]:
    return [e["EndDevices"][0]["mRID"] for e in entries]
