"""Use case 1: registration and discovery of a meter (object list, identification, zone)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.runs.base import EV_MODEL_MISMATCH, Runner, event
from smmc_gateway.uplink.envelope import Draft, MessageClass
from smmc_gateway.usecases import discovery as discovery_uc

log = structlog.get_logger("smmc_gateway.headend")


class DiscoveryRuns(Runner):
    """Discover a meter, keep and publish what it is."""

    async def discover(self, meter_id: str, priority: Priority = Priority.READ) -> dict[str, Any]:
        """Object list, identification and time zone of the meter: kept in the fleet state,
        published as EndDeviceConfig (verb created) on ``meter/{meter}/config``, plus one
        ``smmc.discovery.modelMismatch`` event naming the model objects the meter lacks.

        The summary has its own retained topic rather than the events topic: it is the
        meter's current configuration, not an occurrence, so a consumer that subscribes
        later gets the latest one from the broker at once, and the events topic keeps
        carrying EndDeviceEvents only (what its consumers and schema expect)."""
        head = self.head
        model = head.model_of(meter_id)
        async with self.session(meter_id, priority, "discovery") as s:
            found = await discovery_uc.discover(s, meter_id, model, datetime.now(UTC))
        summary = found.summary()
        await head.fleet.save_discovery(meter_id, found.at, summary)
        body = json.dumps({"EndDeviceConfig": [summary]}, separators=(",", ":")).encode()
        await head.publisher.publish(
            [
                Draft(
                    MessageClass.EVENT,
                    head.publisher.topics.config(meter_id),
                    "created",
                    "EndDeviceConfig",
                    body,
                    retain=True,
                )
            ]
        )
        if found.mismatches:
            await self.publish_events(
                meter_id,
                event(
                    EV_MODEL_MISMATCH,
                    "modelMismatch",
                    f"model {model.name!r}: " + "; ".join(m.describe() for m in found.mismatches),
                    found.at,
                ),
            )
            log.warning(
                "model_mismatch",
                meter_id=meter_id,
                model=model.name,
                missing=[m.obis for m in found.mismatches],
            )
        self.done("discovery", True)
        log.info(
            "meter_discovered",
            meter_id=meter_id,
            objects=len(found.objects),
            device_id=found.identification.get("deviceId"),
        )
        return summary
