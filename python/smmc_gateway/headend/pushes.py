"""Meter pushes (alarms, last gasp, power restored) from the push listener to events.

:class:`PushRouting` gives the :class:`~smmc_gateway.dlms.push.PushListener` the keys
of each configured meter (found by the system title in a ciphered push — from the
meter's key entry ``system_title`` — or else by the peer's IP address when exactly
one TCP meter has it) and turns every accepted data-notification into one
EndDeviceEvents message on the meter's events topic (class EVENT: never dropped).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import structlog

from smmc_gateway.dlms.push import MeterKeys, PushEvent
from smmc_gateway.ops.config_model import MeterConfig, TcpConnection
from smmc_gateway.uplink.envelope import Event

log = structlog.get_logger("smmc_gateway.pushes")

EV_PUSH = "smmc.push.dataNotification"


def _plain(value: Any) -> Any:
    """A typed value tree to compact plain JSON (type names dropped)."""
    if isinstance(value, dict) and "type" in value:
        inner = value.get("value")
        if isinstance(inner, list):
            return [_plain(v) for v in inner]
        return value.get("datetime", inner)
    return value


class PushRouting:
    """Key lookup and event building for pushes from configured meters."""

    def __init__(self, meters: Iterable[MeterConfig]) -> None:
        self.by_title: dict[bytes, MeterKeys] = {}
        by_host: dict[str, list[MeterKeys]] = {}
        for m in meters:
            k = m.keys
            keys = MeterKeys(
                meter_id=m.id, system_title=k.system_title if k else None,
                ek=k.ek.reveal() if k and k.ek and m.security == "hls-gmac" else None,
                ak=k.ak.reveal() if k and k.ak and m.security == "hls-gmac" else None)
            if keys.system_title:
                self.by_title[keys.system_title] = keys
            if isinstance(m.connection, TcpConnection):
                by_host.setdefault(m.connection.host, []).append(keys)
        self.by_host = {h: ks[0] for h, ks in by_host.items() if len(ks) == 1}

    def lookup(self, system_title: bytes | None, peer: str) -> MeterKeys | None:
        if system_title is not None:
            return self.by_title.get(system_title)
        return self.by_host.get(peer)

    @staticmethod
    def event(push: PushEvent) -> Event:
        details = json.dumps(_plain(push.body), separators=(",", ":"))[:2000]
        return Event(mrid=str(uuid.uuid4()), created=push.meter_time or push.received_at,
                     type_ref=EV_PUSH, reason="ciphered" if push.ciphered else "plain",
                     details=details)
