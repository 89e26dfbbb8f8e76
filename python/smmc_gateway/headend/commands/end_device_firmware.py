"""MQTT noun EndDeviceFirmware (use case 9): a firmware campaign, one reply at its end.

Request (verb create)::

    {"EndDeviceFirmware": {"imageIdentifier": "SMMC-SIM-2.0.0",
                           "activationTime": "2027-01-01T02:00:00Z",   # optional: now
                           "maxConcurrent": 4},                          # optional, 1..64
     "EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "north"}]}

The image is looked up by identifier in the gateway's firmware directory,
``{state_dir}/firmware/`` (``IMAGE`` + ``IMAGE.manifest.json``, see
firmware-images/README.md), and its signed manifest is verified against the keys in
``{state_dir}/firmware/trusted-keys/*.pub`` before any meter is touched: an unknown,
unsigned, untrusted or tampered image gets a FAILED reply (code ``ImageRefused``).

Progress: EndDeviceEvents per meter named ``smmc.firmware.STEP`` (``EndDeviceEventType``:
the IEC 61968-9 code and the name, docs/event-codes.md), STEP one of started, progress
(details "N% (bytes)"), verified, activationScheduled, activated, failed (details: the
reason); see docs/schemas/firmware-event-types.schema.json.
Reply: exactly one, when every meter has ended (activated or failed):
``EndDeviceFirmware`` echoes the image, ``results`` has one entry per meter (result,
step, details, version, attempts); result OK / PARTIAL / FAILED. A campaign interrupted
by a gateway stop is not answered: the request stays journaled, is served again after
the restart, and each meter resumes its transfer where the meter says it stopped.

Checked before anything is read or sent: the meters (groups expanded) against
``[commands] max_meters_per_request`` (by the dispatcher), ``imageIdentifier`` 1..128
printable ASCII characters, ``activationTime`` a real UTC time from 1970 on, unknown
fields of ``EndDeviceFirmware`` refused. The noun is off unless
``[commands.enabled] EndDeviceFirmware = true``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from smmc_gateway.dlms.client import ClientSession
from smmc_gateway.firmware.manifest import ImageRefused, find_image, trusted_keys
from smmc_gateway.headend.commands.meter_config import invalid
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.request_limits import EARLIEST, parse_utc, show, target_meters
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError, event
from smmc_gateway.usecases.firmware_campaign import CampaignImage, CampaignObjects, run_campaign

log = structlog.get_logger("smmc_gateway.firmware")
MAX_IDENT = 128
_IDENT = re.compile(rf"[\x21-\x7e][\x20-\x7e]{{0,{MAX_IDENT - 1}}}")
SPEC_KEYS = ("imageIdentifier", "activationTime", "maxConcurrent")
#: campaign step -> event name (each has its IEC 61968-9 code in smmc_gateway.cim)
STEP_EVENTS = {
    "started": "smmc.firmware.started",
    "progress": "smmc.firmware.progress",
    "verified": "smmc.firmware.verified",
    "activationScheduled": "smmc.firmware.activationScheduled",
    "activated": "smmc.firmware.activated",
    "failed": "smmc.firmware.failed",
}


def firmware_dir(headend: HeadEnd) -> Path:
    """``{state_dir}/firmware`` (the state dir is where fleet.sqlite lives)."""
    return headend.fleet.store.path.parent / "firmware"


class FirmwareCommands:
    """``await FirmwareCommands(headend)(verb, payload)`` -> the reply Outcome."""

    def __init__(
        self, headend: HeadEnd, directory: Path | None = None, retry_delay_s: float = 2.0
    ) -> None:
        self.headend = headend
        self.directory = directory  # None: firmware_dir(headend), resolved per request
        self.retry_delay_s = retry_delay_s

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb != "create":
            problems.append(f"header.verb: {show(verb)}; EndDeviceFirmware takes create")
        spec = payload.get("EndDeviceFirmware")
        ident: Any = None
        activation: datetime | None = None
        parallel = 4
        if not isinstance(spec, dict):
            problems.append(
                "payload.EndDeviceFirmware: must be an object with "
                "imageIdentifier (and optional activationTime, maxConcurrent)"
            )
        else:
            unknown = sorted(str(k) for k in spec if k not in SPEC_KEYS)
            if unknown:
                problems.append(
                    f"payload.EndDeviceFirmware: unknown field(s) "
                    f"{show(unknown[:10])}; allowed: {', '.join(SPEC_KEYS)}"
                )
            ident = spec.get("imageIdentifier")
            if not isinstance(ident, str) or not _IDENT.fullmatch(ident):
                problems.append(
                    f"payload.EndDeviceFirmware.imageIdentifier: {show(ident)}; "
                    "the identifier of an image in the firmware directory "
                    f"(1..{MAX_IDENT} printable characters)"
                )
            at = spec.get("activationTime")
            if at is not None:
                activation = parse_utc(
                    at,
                    "payload.EndDeviceFirmware.activationTime",
                    problems,
                    fractions=False,
                    earliest=EARLIEST,
                )
            mc = spec.get("maxConcurrent", 4)
            if not isinstance(mc, int) or isinstance(mc, bool) or not 1 <= mc <= 64:
                problems.append(
                    f"payload.EndDeviceFirmware.maxConcurrent: {show(mc)}; must be an integer 1..64"
                )
            else:
                parallel = mc
        meters = target_meters(self.headend.fleet, payload, "payload", problems)
        if problems:
            return invalid(problems)
        directory = self.directory or firmware_dir(self.headend)
        try:
            keys = (
                trusted_keys([directory / "trusted-keys"])
                if (directory / "trusted-keys").is_dir()
                else {}
            )
            verified = find_image(directory, str(ident), keys)
        except ImageRefused as exc:
            return Outcome("FAILED", errors=[{"code": "ImageRefused", "details": str(exc)}])
        image = CampaignImage(verified.manifest.identifier, verified.data)
        log.info("firmware_campaign_started", image=image.identifier, meters=len(meters))
        outcomes = await run_campaign(
            self._open,
            meters,
            image,
            self._emit,
            activation=activation,
            max_parallel=parallel,
            retry_delay_s=self.retry_delay_s,
            objects_for=self._objects,
        )
        results = [
            {
                "EndDevices": [{"mRID": o.meter_id}],
                "result": "OK" if o.ok else "FAILED",
                "step": o.step,
                "details": o.details,
                "version": o.version,
                "attempts": o.attempts,
            }
            for o in outcomes
        ]
        good = sum(o.ok for o in outcomes)
        result = "OK" if good == len(outcomes) else ("FAILED" if good == 0 else "PARTIAL")
        errors: list[ReplyError] = [
            {"code": "MeterFailed", "details": f"{o.meter_id}: {o.details}"}
            for o in outcomes
            if not o.ok
        ]
        m = verified.manifest
        body = {
            "EndDeviceFirmware": {
                "imageIdentifier": m.identifier,
                "version": m.version,
                "model": m.model,
                "size": m.size,
                "sha256": m.sha256,
                "activationTime": spec.get("activationTime") if isinstance(spec, dict) else None,
            },
            "results": results,
        }
        log.info(
            "firmware_campaign_ended", image=image.identifier, ok=good, failed=len(outcomes) - good
        )
        return Outcome(result, body, errors)

    def _objects(self, meter_id: str) -> CampaignObjects:
        o = self.headend.model_of(meter_id).obis
        return CampaignObjects(
            o["image_transfer"], o["image_activation_schedule"], o["firmware_id"], o["clock"]
        )

    @asynccontextmanager
    async def _open(self, meter_id: str) -> AsyncIterator[ClientSession]:
        async with self.headend.scheduler.session(meter_id, Priority.COMMAND) as s:
            yield s

    async def _emit(self, meter_id: str, step: str, details: str) -> None:
        name = STEP_EVENTS.get(step)
        if name is None:  # a step the campaign added without an event name: say which
            raise ValueError(
                f"firmware campaign step {step!r} has no event name; add it to "
                f"STEP_EVENTS ({', '.join(STEP_EVENTS)})"
            )
        await self.headend.publisher.publish_event(
            meter_id, [event(name, reason=step, details=details)]
        )
