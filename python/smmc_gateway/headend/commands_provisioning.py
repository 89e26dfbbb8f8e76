"""MQTT noun EndDeviceConfig, verbs create / change / delete (issue 11 item 5), and
get with ``keyBundle`` (item 6): meters provisioned over MQTT, keys escrowed on request.

``create`` / ``change``::

    {"EndDevices": [{"mRID": "m-0001", "model": "default",
                     "connection": {"kind": "tcp", "host": "10.1.2.3", "port": 4059},
                     "addresses": {"client": 1, "server_logical": 1},
                     "security": {"level": "hls-gmac", "keys": {<bundle wrapped with the
                                  gateway's KEK: ek, ak, masterKey, systemTitle>}},
                     "groups": ["feeder-7"]}]}

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
from smmc_gateway.headend.request_limits import show, target_meters
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError


def _failed(code: str, details: str) -> Outcome:
    return Outcome("FAILED", errors=[{"code": code, "details": details}])


class ProvisioningCommands:
    """``await ProvisioningCommands(manager, commands)(verb, payload)`` -> Outcome."""

    def __init__(self, manager: FleetManager, commands: CommandsConfig) -> None:
        self.manager = manager
        self.commands = commands

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if not self.commands.serves("provisioning"):
            return _failed("NounDisabled", "EndDeviceConfig create/change/delete "
                           "(provisioning) is disabled on this gateway; the operator turns it "
                           "on on purpose with [commands.enabled] provisioning = true")
        extra = sorted(set(payload) - {"EndDevices"})
        if extra:
            return _failed("InvalidRequest", f"payload: unknown field(s) {extra}; {verb} "
                           "takes EndDevices only (groups are not expanded here)")
        items = payload.get("EndDevices")
        if not isinstance(items, list) or not items:
            return _failed("InvalidRequest", f"payload.EndDevices: {show(items)} is not a "
                           "non-empty array of meters")
        change, errors = await self.manager.provision(verb, items)
        if change is None:
            return Outcome("FAILED", errors=[{"code": e.code, "details": e.details}
                                             for e in errors])
        status = {**{m: "added" for m in change.added}, **{m: "changed" for m in change.changed},
                  **{m: "removed" for m in change.removed}}
        out = [{"mRID": str(i["mRID"]), "change": status.get(str(i["mRID"]), "unchanged")}
               for i in items]
        return Outcome("OK", {"Provisioning": out, "meterCount": len(self.manager.fleet)})


class EscrowCommands:
    """EndDeviceConfig get with ``keyBundle: true``."""

    def __init__(self, escrow: Escrow | None, commands: CommandsConfig) -> None:
        self.escrow = escrow
        self.commands = commands

    async def __call__(self, payload: dict[str, Any]) -> Outcome:
        if not self.commands.serves("keyEscrow"):
            return _failed("NounDisabled", "EndDeviceConfig get with keyBundle (key escrow) is "
                           "disabled on this gateway; the operator turns it on on purpose "
                           "with [commands.enabled] keyEscrow = true")
        if self.escrow is None:
            return _failed("EscrowNotConfigured", "this gateway has no [escrow] section (the "
                           "central key-encryption key): it cannot hand out wrapped keys")
        problems: list[str] = []
        if payload.get("keyBundle") is not True:
            problems.append(f"payload.keyBundle: {show(payload.get('keyBundle'))}; true asks "
                            "for the key bundles")
        if payload.get("refresh"):
            problems.append("payload.refresh: not with keyBundle; send two requests")
        meters = target_meters(self.escrow.fleet, payload, "payload", problems)
        if problems:
            return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p}
                                             for p in problems])
        bundles, refused = await self.escrow.publish(meters, "request")
        errors: list[ReplyError] = [{"code": "NoKeys", "details": f"{m}: {why}"}
                                    for m, why in refused]
        result = "OK" if not errors else ("FAILED" if not bundles else "PARTIAL")
        return Outcome(result, {"KeyBundle": bundles} if bundles else {}, errors)
