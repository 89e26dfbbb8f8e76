"""MQTT noun EndDeviceConfig, verbs create / change / delete (issue 11 item 5), and
get with ``keyBundle`` (item 6): meters provisioned over MQTT, keys escrowed on request.

``create`` / ``change``::

    {"EndDevices": [{"mRID": "m-0001", "model": "default",
                     "connection": {"kind": "tcp", "host": "10.1.2.3", "port": 4059},
                     "addresses": {"client": 1, "server_logical": 1},
                     "security": {"level": "hls-gmac", "keys": {<bundle wrapped with the
                                  gateway's KEK: ek, ak, masterKey, systemTitle>}},
                     "groups": ["feeder-7"]}]}

An item may carry ``schedule``: the meter's own read schedule, the fields of a
``MeterReadSchedule`` without ``mRID`` and meters (``{"ReadingTypes": [...],
"TimeSchedule": {"recurrencePeriod": 900, "window": {...}}}``), checked by the same rules
and caps. It is kept as the read schedule ``meter:<mRID>`` (listed by MeterReadSchedule
get; changed only here): a change item with ``schedule`` replaces it, ``"schedule": null``
drops it, a change without it keeps it; deleting the meter deletes it. The configured
``[schedules]`` keep running for every meter beside it.

``delete``: ``{"EndDevices": [{"mRID": "m-0001"}]}``. The items are validated like
``[[meters]]`` tables (:mod:`~smmc_gateway.headend.provisioning`); a change replaces the
top-level fields it gives. All or nothing: any problem answers FAILED (one error per
problem, each with a code: ``InvalidRequest``, ``AlreadyExists``, ``NotProvisioned`` —
the meter is the configuration files', ``UnknownMeter``, ``KeyChangePending``,
``KeyChangeRunning``) and changes nothing. Else the change is persisted, applied live
(:mod:`~smmc_gateway.headend.fleet_manager`) and answered OK with ``Provisioning``: per
meter ``{"mRID", "change": "added" | "changed" | "unchanged" | "removed"}`` and
``meterCount``. A removed meter's keys are wiped from the gateway (its row, a settled key
journal entry). Served only with ``[commands.enabled] provisioning = true`` (off by
default: adding or removing meters is as sensitive as MeterConfig).

``get`` with ``keyBundle: true`` (``EndDevices`` / ``EndDeviceGroups`` as for get): the
named meters' current keys wrapped with the central KEK (:mod:`~smmc_gateway.headend.escrow`),
published on ``meter/{meter}/keys`` and carried in the reply as ``KeyBundle``. Served
only with ``[commands.enabled] keyEscrow = true`` and an ``[escrow]`` section.
"""

from __future__ import annotations

from typing import Any

from smmc_gateway.headend.escrow import Escrow
from smmc_gateway.headend.fleet_manager import FleetManager
from smmc_gateway.headend.read_schedules import (
    OWNED_PREFIX,
    ReadSchedule,
    ReadSchedules,
    parse,
    resolve,
)
from smmc_gateway.headend.request_limits import (
    MAX_READING_TYPES,
    LimitExceeded,
    show,
    target_meters,
)
from smmc_gateway.ops.config_model import CommandsConfig, ModelConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError


def _failed(code: str, details: str) -> Outcome:
    return Outcome("FAILED", errors=[{"code": code, "details": details}])


class ProvisioningCommands:
    """``await ProvisioningCommands(manager, commands)(verb, payload)`` -> Outcome."""

    def __init__(
        self,
        manager: FleetManager,
        commands: CommandsConfig,
        schedules: ReadSchedules | None = None,
    ) -> None:
        self.manager = manager
        self.commands = commands
        self.schedules = schedules

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if not self.commands.serves("provisioning"):
            return _failed(
                "NounDisabled",
                "EndDeviceConfig create/change/delete "
                "(provisioning) is disabled on this gateway; the operator turns it "
                "on on purpose with [commands.enabled] provisioning = true",
            )
        extra = sorted(set(payload) - {"EndDevices"})
        if extra:
            return _failed(
                "InvalidRequest",
                f"payload: unknown field(s) {extra}; {verb} "
                "takes EndDevices only (groups are not expanded here)",
            )
        items = payload.get("EndDevices")
        if not isinstance(items, list) or not items:
            return _failed(
                "InvalidRequest",
                f"payload.EndDevices: {show(items)} is not a non-empty array of meters",
            )
        problems: list[str] = []
        over: list[str] = []
        plans = self._schedules(verb, items, problems, over)
        if problems:
            return Outcome(
                "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
            )
        if over:
            raise LimitExceeded("; ".join(over))
        bare = [
            {k: val for k, val in i.items() if k != "schedule"} if isinstance(i, dict) else i
            for i in items
        ]
        change, errors = await self.manager.provision(verb, bare)
        if change is None:
            return Outcome(
                "FAILED", errors=[{"code": e.code, "details": e.details} for e in errors]
            )
        await self._apply_schedules(verb, items, plans)
        status = {
            **{m: "added" for m in change.added},
            **{m: "changed" for m in change.changed},
            **{m: "removed" for m in change.removed},
        }
        out: list[dict[str, Any]] = []
        for i in items:
            entry: dict[str, Any] = {
                "mRID": str(i["mRID"]),
                "change": status.get(str(i["mRID"]), "unchanged"),
            }
            kept = (
                self.schedules.get(OWNED_PREFIX + str(i["mRID"]))
                if self.schedules is not None and verb != "delete"
                else None
            )
            if kept is not None:
                entry["schedule"] = kept.mrid
            out.append(entry)
        return Outcome("OK", {"Provisioning": out, "meterCount": len(self.manager.fleet)})

    # -- the meters' own read schedules ------------------------------------------------
    def _schedules(
        self, verb: str, items: list[Any], problems: list[str], over: list[str]
    ) -> dict[str, ReadSchedule | None]:
        """The schedule each create/change item gives (None: drop it), checked like a
        MeterReadSchedule request; problems are named from the item's path, caps passed
        in ``over``."""
        plans: dict[str, ReadSchedule | None] = {}
        new = 0
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "schedule" not in item:
                continue
            where = f"payload.EndDevices[{i}].schedule"
            meter_id = item.get("mRID")
            if verb == "delete":
                problems.append(
                    f"{where}: delete takes only mRID (the meter's schedule goes with it)"
                )
                continue
            if self.schedules is None:
                problems.append(f"{where}: read schedules are not served by this gateway")
                continue
            if not isinstance(meter_id, str) or not meter_id:
                continue  # the manager names the missing mRID
            raw = item["schedule"]
            if raw is None:
                if verb == "create":
                    problems.append(
                        f"{where}: null drops a meter's schedule on change; leave it out on create"
                    )
                plans[meter_id] = None
                continue
            if not isinstance(raw, dict):
                problems.append(
                    f"{where}: {show(raw)} is not an object {{ReadingTypes, TimeSchedule}}"
                )
                continue
            extra = sorted(set(raw) - {"ReadingTypes", "TimeSchedule"})
            if extra:
                problems.append(
                    f"{where}: unknown field(s) {extra}; a meter's schedule "
                    "takes ReadingTypes and TimeSchedule (the meter is the item)"
                )
            mine: list[str] = []
            c = self.commands
            spec = {**raw, "mRID": OWNED_PREFIX + meter_id, "EndDevices": [{"mRID": meter_id}]}
            schedule = parse(
                spec, mine, min_period_s=c.min_read_interval_s, max_types=MAX_READING_TYPES
            )
            model = self._model(verb, item, meter_id)
            if schedule is not None and model is not None:
                resolve(model, schedule.reading_types, problems=mine)
            problems.extend(
                p.replace("payload.", f"{where}.", 1)
                if p.startswith("payload.")
                else p.replace("payload", where, 1)
                for p in mine
            )
            if schedule is None or mine:
                continue
            plans[meter_id] = schedule
            if self.schedules.get(schedule.mrid) is None:
                new += 1
            have = self.schedules.per_meter(excluding=schedule.mrid)[meter_id]
            if have + 1 > c.max_read_schedules_per_meter:
                over.append(
                    f"{where}: meter {meter_id} would be read by more than "
                    "commands.max_read_schedules_per_meter = "
                    f"{c.max_read_schedules_per_meter} schedules"
                )
        if self.schedules is not None and new:
            kept = len(self.schedules.all())
            if kept + new > self.commands.max_read_schedules:
                over.append(
                    f"payload: {new} new schedule(s) over the {kept} kept pass "
                    "commands.max_read_schedules = "
                    f"{self.commands.max_read_schedules}"
                )
        return plans

    def _model(self, verb: str, item: dict[str, Any], meter_id: str) -> ModelConfig | None:
        """The model an item's schedule is resolved against (None: the manager will name a
        bad model)."""
        name = item.get("model")
        if name is None:
            fleet = self.manager.fleet
            name = (
                fleet.meter(meter_id).model
                if verb == "change" and fleet.has(meter_id)
                else "default"
            )
        return self.manager.config.models.get(name) if isinstance(name, str) else None

    async def _apply_schedules(
        self, verb: str, items: list[Any], plans: dict[str, ReadSchedule | None]
    ) -> None:
        if self.schedules is None:
            return
        for item in items:
            meter_id = str(item["mRID"])
            mrid = OWNED_PREFIX + meter_id
            if verb == "delete" or (meter_id in plans and plans[meter_id] is None):
                if self.schedules.get(mrid) is not None:
                    await self.schedules.delete(mrid)
            elif plans.get(meter_id) is not None:
                await self.schedules.put(plans[meter_id])  # type: ignore[arg-type]


class EscrowCommands:
    """EndDeviceConfig get with ``keyBundle: true``."""

    def __init__(self, escrow: Escrow | None, commands: CommandsConfig) -> None:
        self.escrow = escrow
        self.commands = commands

    async def __call__(self, payload: dict[str, Any]) -> Outcome:
        if not self.commands.serves("keyEscrow"):
            return _failed(
                "NounDisabled",
                "EndDeviceConfig get with keyBundle (key escrow) is "
                "disabled on this gateway; the operator turns it on on purpose "
                "with [commands.enabled] keyEscrow = true",
            )
        if self.escrow is None:
            return _failed(
                "EscrowNotConfigured",
                "this gateway has no [escrow] section (the "
                "central key-encryption key): it cannot hand out wrapped keys",
            )
        problems: list[str] = []
        if payload.get("keyBundle") is not True:
            problems.append(
                f"payload.keyBundle: {show(payload.get('keyBundle'))}; true asks "
                "for the key bundles"
            )
        if payload.get("refresh"):
            problems.append("payload.refresh: not with keyBundle; send two requests")
        meters = target_meters(self.escrow.fleet, payload, "payload", problems)
        if problems:
            return Outcome(
                "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
            )
        bundles, refused = await self.escrow.publish(meters, "request")
        errors: list[ReplyError] = [
            {"code": "NoKeys", "details": f"{m}: {why}"} for m, why in refused
        ]
        result = "OK" if not errors else ("FAILED" if not bundles else "PARTIAL")
        return Outcome(result, {"KeyBundle": bundles} if bundles else {}, errors)
