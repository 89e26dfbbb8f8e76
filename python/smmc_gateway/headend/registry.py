"""The gateway's registry (issue 11 item 10): the meters it serves, retained on
``smmc/v1/{gw}/registry`` (noun ``GatewayRegistry``, verb ``created``), so a central
system that serves many gateways learns which gateway serves which meter by
subscribing ``smmc/v1/+/registry``.

::

    {"gateway": "gw-0001", "updated": "2026-05-04T10:00:00Z", "meterCount": 2,
     "EndDevices": [{"mRID": "m1", "model": "default", "transport": "tcp",
                     "framing": "wrapper", "security": "hls-gmac", "origin": "file",
                     "groups": ["feeder-7"]}, ...],
     "lastChange": {"by": "provisioning", "result": "OK", "at": "...",
                    "added": ["m2"], "changed": [], "removed": [], "problems": [],
                    "restartNeeded": []}}

Published at start and after every change of the fleet (provisioning, reload; a failed
reload too, with its problems and the meters unchanged). Meters' hosts are not listed
(the registry says who serves a meter, not how to reach it). ``origin`` is ``file``
(the configuration files) or ``mqtt`` (provisioned). The id lists of ``lastChange`` hold
at most :data:`MAX_IDS` ids each, ``addedCount`` (etc.) the full numbers.

On a broker that keeps no retained messages the registry is published again every
``interval_s`` (with the uplink's periodic status), so a consumer that subscribes later
learns it within that time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from smmc_gateway.headend.fleet_manager import FleetChange, FleetManager
from smmc_gateway.ops.config_model import SerialConnection, TcpConnection
from smmc_gateway.uplink.envelope import Draft, MessageClass, utc_iso
from smmc_gateway.uplink.topics import Topics

NOUN = "GatewayRegistry"
MAX_IDS = 100


class Publisher(Protocol):
    @property
    def retain_available(self) -> bool: ...

    async def publish(self, drafts: Sequence[Draft]) -> list[str]: ...


def _at(t: float) -> str:
    return utc_iso(datetime.fromtimestamp(t, UTC).replace(microsecond=0))


def change_json(c: FleetChange) -> dict[str, Any]:
    doc: dict[str, Any] = {"by": c.by, "result": c.result, "at": _at(c.at)}
    for name in ("added", "changed", "removed"):
        ids: list[str] = getattr(c, name)
        doc[name] = ids[:MAX_IDS]
        doc[f"{name}Count"] = len(ids)
    doc["problems"] = [p[:600] for p in c.problems[:MAX_IDS]]
    doc["restartNeeded"] = list(c.restart_needed)
    return doc


class Registry:
    """Builds and publishes the registry document (see the module doc)."""

    def __init__(
        self, manager: FleetManager, publisher: Publisher, topics: Topics, interval_s: float = 60.0
    ) -> None:
        self.manager = manager
        self.publisher = publisher
        self.topics = topics
        self.interval_s = interval_s
        self._republish = asyncio.Event()

    def document(self) -> dict[str, Any]:
        fleet = self.manager.fleet
        items = []
        for m in fleet.meters():
            item: dict[str, Any] = {
                "mRID": m.id,
                "model": m.model,
                "transport": m.connection.kind,
                "security": m.security,
                "origin": self.manager.origin(m.id),
                "groups": list(m.groups),
            }
            if isinstance(m.connection, TcpConnection):
                item["framing"] = m.connection.framing
            elif isinstance(m.connection, SerialConnection):
                item["bus"] = m.connection.bus
            items.append(item)
        doc: dict[str, Any] = {
            "gateway": self.topics.gateway,
            "updated": utc_iso(datetime.now(UTC).replace(microsecond=0)),
            "meterCount": len(items),
            "EndDevices": items,
        }
        if self.manager.last_change is not None:
            doc["lastChange"] = change_json(self.manager.last_change)
        return doc

    async def publish(self) -> str:
        body = json.dumps(self.document(), separators=(",", ":")).encode()
        draft = Draft(
            MessageClass.EVENT, self.topics.registry(), "created", NOUN, body, retain=True
        )
        return (await self.publisher.publish([draft]))[0]

    async def on_change(self, change: FleetChange) -> None:
        """A FleetManager listener: every change is published."""
        del change
        await self.publish()

    def on_status(self, retain_available: bool) -> None:
        """The uplink's connection callback: without retain, publish periodically."""
        if not retain_available:
            self._republish.set()

    async def run(self) -> None:
        """Re-publish every ``interval_s`` while the broker keeps nothing retained."""
        await self._republish.wait()
        while True:
            await asyncio.sleep(self.interval_s)
            if not self.publisher.retain_available:
                await self.publish()
