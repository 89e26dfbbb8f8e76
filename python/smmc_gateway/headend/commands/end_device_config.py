"""MQTT noun EndDeviceConfig, verb get (use case 1): the discovered configuration of meters.

Verbs create / change / delete (meters provisioned over MQTT) and get with ``keyBundle``
(key escrow) are served by :mod:`~smmc_gateway.headend.commands.provisioning` when the
daemon attached it (:attr:`DiscoveryCommands.provisioning`, :attr:`DiscoveryCommands.escrow`).

::

    {"EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "g"}], "refresh": false}

Per meter, the summary kept from the last discovery (object list, identification,
clock time zone, model mismatches, and ``modelProposal``: the shipped device model that
fits the meter best, with what each candidate lacks and leaves unused, docs/models.md;
see :mod:`smmc_gateway.usecases.discovery`); a meter
never discovered, or every meter when ``refresh`` is true, is discovered now (and its
EndDeviceConfig published on ``meter/{meter}/config`` as after any discovery). Reply
``EndDeviceConfig``: one summary per meter that answered; meters that did not are named
in the errors (PARTIAL or FAILED).

The meters named (groups expanded) are capped by ``[commands] max_meters_per_request``
(checked by the dispatcher before this runs), and the reply by ``max_reply_bytes``: a
summary that would make it larger is left out, with a ``Truncated`` error naming the
meter (ask for it in a request of its own; discovery was done and is kept).
"""

from __future__ import annotations

from typing import Any

from smmc_gateway.dlms.errors import SessionError
from smmc_gateway.headend.commands.provisioning import EscrowCommands, ProvisioningCommands
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.paging import MIN_PART_BYTES, dumps, reply_budget, truncated
from smmc_gateway.headend.request_limits import show, target_meters
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError

METER_ERRORS = (SessionError, OSError, TimeoutError)


class DiscoveryCommands:
    """``await DiscoveryCommands(headend)(verb, payload)`` -> the reply Outcome."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig | None = None) -> None:
        self.headend = headend
        self.commands = commands or CommandsConfig()
        self.provisioning: ProvisioningCommands | None = None
        """create / change / delete (set by the daemon)."""
        self.escrow: EscrowCommands | None = None
        """get with keyBundle (set by the daemon)."""

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb in ("create", "change", "delete"):
            if self.provisioning is None:
                return Outcome(
                    "FAILED",
                    errors=[
                        {
                            "code": "NotImplemented",
                            "details": f"EndDeviceConfig {verb}: provisioning is not served here",
                        }
                    ],
                )
            return await self.provisioning(verb, payload)
        if verb == "get" and "keyBundle" in payload:
            if self.escrow is None:
                return Outcome(
                    "FAILED",
                    errors=[
                        {
                            "code": "NotImplemented",
                            "details": "EndDeviceConfig get keyBundle: key escrow is not served "
                            "here",
                        }
                    ],
                )
            return await self.escrow(payload)
        if verb != "get":
            problems.append(
                f"header.verb: {show(verb)}; EndDeviceConfig takes get, create, change or delete"
            )
        refresh = payload.get("refresh", False)
        if not isinstance(refresh, bool):
            problems.append(f"payload.refresh: {show(refresh)} is not true or false")
        meters = target_meters(self.headend.fleet, payload, "payload", problems)
        if problems:
            return Outcome(
                "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
            )
        items: list[dict[str, Any]] = []
        errors: list[ReplyError] = []
        whole = self.commands.max_reply_bytes
        left = reply_budget(whole, len(meters))
        for m in meters:
            summary = None if refresh else await self.headend.fleet.discovery(m)
            if summary is None:
                try:
                    summary = await self.headend.discover(m, Priority.COMMAND)
                except METER_ERRORS as exc:
                    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    errors.append({"code": "MeterFailed", "details": f"{m}: {text}"})
                    continue
            size = len(dumps(summary)) + 1
            if size > left or left < MIN_PART_BYTES:
                errors.append(
                    truncated(
                        m,
                        "its configuration",
                        None,
                        f"{size} bytes; the reply reached commands.max_reply_bytes = {whole}",
                    )
                )
                continue
            left -= size
            items.append(summary)
        result = "OK" if not errors else ("FAILED" if not items else "PARTIAL")
        return Outcome(result, {"EndDeviceConfig": items} if items else {}, errors)
