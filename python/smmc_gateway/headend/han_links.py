"""HAN device linkage (use case 4): what the gateway knows of each meter's HAN devices, and
the MasterDataLinkageConfig it publishes when that changes.

Per meter the devices its M-Bus channels hold are kept in fleet.sqlite (``han_device``):
channel, reachability, key status, and what the central system said of the device when it
installed it (its mRID and usage point: the linkage meter <-> HAN device <-> usage point).
:meth:`HanLinks.update` compares what the meter shows now with what was kept, publishes one
EndDeviceEvents message with an event per difference and, when anything differs (or a
request changed the meter), the meter's full linkage as MasterDataLinkageConfig on
``smmc/v1/{gw}/meter/{meter}/linkage`` (verb created, retained: a consumer that subscribes
later gets the current linkage at once; class EVENT: never dropped).

Events (EndDeviceEventType.ref): ``smmc.han.deviceJoined`` (a device the meter installed by
itself, or found on a poll), ``smmc.han.deviceInstalled`` (installed on request),
``smmc.han.deviceRemoved`` (gone from its channel), ``smmc.han.deviceUnreachable`` /
``smmc.han.deviceReachable`` (the status byte of its last telegram shows a temporary or
permanent error / no longer does), ``smmc.han.keySet`` (its encryption key status moved).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.envelope import Draft, Event, MessageClass, event, utc_iso
from smmc_gateway.usecases.han import HanChannel

log = structlog.get_logger("smmc_gateway.han")

# Table han_device: created by the migrations of smmc_gateway.headend.persistence (the
# fleet database is migrated when it is opened).
EV_JOINED = "smmc.han.deviceJoined"
EV_INSTALLED = "smmc.han.deviceInstalled"
EV_REMOVED = "smmc.han.deviceRemoved"
EV_UNREACHABLE = "smmc.han.deviceUnreachable"
EV_REACHABLE = "smmc.han.deviceReachable"
EV_KEY_SET = "smmc.han.keySet"
NOUN = "MasterDataLinkageConfig"


@dataclass
class Known:
    """One device row of ``han_device``."""

    serial: str
    channel: int
    reachable: bool
    key_status: str | None
    device_mrid: str | None = None
    usage_point: str | None = None


def linkage_topic(headend: HeadEnd, meter_id: str) -> str:
    return headend.publisher.topics.linkage(meter_id)


class HanLinks:
    """The kept linkage of every meter, its comparison with the meter, its publication."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, meter_id: str) -> asyncio.Lock:
        """Held around read-compare-publish, so two refreshes never both report a change."""
        return self._locks.setdefault(meter_id, asyncio.Lock())

    async def known(self, meter_id: str) -> dict[str, Known]:
        def job(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(
                conn.execute(
                    "SELECT serial, channel, reachable, key_status, device_mrid, usage_point "
                    "FROM han_device WHERE meter_id = ?",
                    (meter_id,),
                )
            )

        rows = await self.headend.fleet.store.submit(job)
        return {r[0]: Known(r[0], int(r[1]), bool(r[2]), r[3], r[4], r[5]) for r in rows}

    async def _save(self, meter_id: str, devices: Sequence[Known]) -> None:
        rows = [
            (
                meter_id,
                d.serial,
                d.channel,
                int(d.reachable),
                d.key_status,
                d.device_mrid,
                d.usage_point,
            )
            for d in devices
        ]

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM han_device WHERE meter_id = ?", (meter_id,))
            conn.executemany(
                "INSERT INTO han_device (meter_id, serial, channel, reachable, "
                "key_status, device_mrid, usage_point) VALUES (?,?,?,?,?,?,?)",
                rows,
            )

        await self.headend.fleet.store.submit(job)

    async def update(
        self,
        meter_id: str,
        channels: Sequence[HanChannel],
        reason: str,
        *,
        requested: dict[str, tuple[str | None, str | None]] | None = None,
        publish: bool = False,
    ) -> dict[str, Any]:
        """Compare, keep, publish; returns the linkage entry. ``requested``: serial ->
        (device mRID, usage point) the central system gave in this request (its devices'
        events are ``deviceInstalled`` rather than ``deviceJoined``); ``publish``: publish
        the linkage even when nothing differs (a request that touched the meter)."""
        before = await self.known(meter_id)
        requested = requested or {}
        now: list[Known] = []
        events: list[Event] = []
        at = datetime.now(UTC)
        for ch in channels:
            if not ch.installed:
                continue
            desc = ch.describe()
            old = before.get(ch.serial)
            mrid, up = requested.get(ch.serial, (None, None))
            key_status = desc.get("encryptionKeyStatus")
            k = Known(
                ch.serial,
                ch.channel,
                ch.reachable,
                key_status if isinstance(key_status, str) else None,
                mrid or (old.device_mrid if old else None),
                up or (old.usage_point if old else None),
            )
            now.append(k)
            where = (
                f"device {ch.serial} on channel {ch.channel} ({desc['deviceType']}, "
                f"{desc['manufacturer']})"
            )
            if ch.serial in requested:  # the request's confirmation, first seen or not
                events.append(_event(EV_INSTALLED, reason, where, at))
            elif old is None or old.channel != ch.channel:
                events.append(_event(EV_JOINED, reason, where, at))
            else:
                if old.reachable != k.reachable:
                    events.append(
                        _event(
                            EV_REACHABLE if k.reachable else EV_UNREACHABLE,
                            reason,
                            f"{where}: status byte 0x{ch.status:02x}",
                            at,
                        )
                    )
                if old.key_status != k.key_status and k.key_status is not None:
                    events.append(
                        _event(
                            EV_KEY_SET, reason, f"{where}: encryption key status {k.key_status}", at
                        )
                    )
        gone = [old for serial, old in before.items() if serial not in {k.serial for k in now}]
        events += [
            _event(EV_REMOVED, reason, f"device {g.serial} no longer on channel {g.channel}", at)
            for g in gone
        ]
        changed = bool(events) or any(
            (k.device_mrid, k.usage_point)
            != (before[k.serial].device_mrid, before[k.serial].usage_point)
            for k in now
            if k.serial in before
        )
        entry = linkage_entry(meter_id, channels, {k.serial: k for k in now}, reason, at)
        if changed:
            await self._save(meter_id, now)
        if events:
            await self.headend.publisher.publish_event(meter_id, events)
        if changed or publish:
            body = json.dumps({NOUN: [entry]}, separators=(",", ":")).encode()
            await self.headend.publisher.publish(
                [
                    Draft(
                        MessageClass.EVENT,
                        linkage_topic(self.headend, meter_id),
                        "created",
                        NOUN,
                        body,
                        retain=True,
                    )
                ]
            )
            log.info(
                "han_linkage_published",
                meter_id=meter_id,
                reason=reason,
                devices=len(now),
                events=len(events),
            )
        return entry


def linkage_entry(
    meter_id: str,
    channels: Sequence[HanChannel],
    known: dict[str, Known],
    reason: str,
    at: datetime,
) -> dict[str, Any]:
    """One MasterDataLinkageConfig item: the meter, and per installed device its channel
    as read and, when the central system linked it, its mRID and usage point."""
    devices: list[dict[str, Any]] = []
    for ch in channels:
        if not ch.installed:
            continue
        d = ch.describe()
        k = known.get(ch.serial)
        if k is not None and k.device_mrid:
            d["mRID"] = k.device_mrid
        if k is not None and k.usage_point:
            d["UsagePoint"] = {"mRID": k.usage_point}
        d["linked"] = k is not None and bool(k.device_mrid or k.usage_point)
        devices.append(d)
    return {
        "Meter": {"mRID": meter_id},
        "ConfigurationEvent": {"reason": reason, "createdDateTime": utc_iso(at)},
        "channels": [c.channel for c in channels],
        "EndDevice": devices,
    }


def _event(kind: str, reason: str, details: str, at: datetime) -> Event:
    return event(kind, reason=reason, details=details, created=at)
