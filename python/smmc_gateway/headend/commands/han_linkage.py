"""MQTT noun MasterDataLinkageConfig, HAN part (use case 4): install, de-install and list
the HAN devices on a meter's M-Bus; discovery of devices that join.

The noun also carries account moves (use case 12, :mod:`~smmc_gateway.headend.dispatcher`):
a request is a HAN request when its ``ConfigurationEvent.reason`` is ``hanInstall`` or
``hanRemove``, or it has ``EndDevice``, or its verb is ``get`` (moves never are); a reason
``moveOut``/``moveIn`` is always a move. Install (verb create or change)::

    {"ConfigurationEvent": {"reason": "hanInstall"},
     "Meter": [{"mRID": "m1"}],
     "EndDevice": [{"serialNumber": "12345678", "mRID": "ihd-17", "channel": 1,
                    "manufacturer": "SMC", "primaryAddress": 0,
                    "UsagePoint": {"mRID": "up-9"},
                    "key": {"encryptionKey": "<hex>", "transferKey": "<hex>"}}]}

``serialNumber`` (the device's 8-digit M-Bus identification) is required, the rest
optional: ``channel`` 1..4 (default: the channel already holding the device, else the
first free one), ``manufacturer`` (three letters), ``primaryAddress`` 0..250 (0: the meter
picks), ``mRID`` and ``UsagePoint.mRID`` (the central system's names, kept by the gateway
and published with the linkage). ``key`` gives the device its encryption key and is served
only when ``[commands.enabled] hanKeys = true`` (else the whole request is answered FAILED
``NounDisabled``, nothing done): ``encryptionKey`` is the key wrapped (RFC 3394) with the
meter's master key from the key file, so no key travels or rests (the command journal keeps
requests) in clear; the gateway unwraps it and hands it to the meter with
``set_encryption_key`` over the ciphered association. ``transferKey`` is the same key
encrypted as the device expects, made by whoever holds the device's default key (DSMR 4:
AES-128-CBC, zero IV), sent as is with ``transfer_key``. Neither is logged nor replied.
De-install (verb create or change): ``reason`` ``hanRemove``, ``EndDevice[]`` naming each
device by ``serialNumber``, ``mRID`` (as installed) or ``channel``. List (verb get):
``Meter[]``, nothing else needed.

Each request names one meter for install/remove (its devices are on that meter's bus),
up to ``max_meters_per_request`` for a list. Reply ``MasterDataLinkageConfig``: per meter
the linkage as read back after the work (``EndDevice[]`` with channel, identity, status,
key status, mRID and usage point) and, for install/remove, ``results[]``: per requested
device ``result`` OK/FAILED, ``steps`` and ``details``. After an install or removal the
meter's linkage is published (see :mod:`~smmc_gateway.headend.han_links`).

Discovery: a device that joins the bus is installed by the meter, which pushes its alarm
(new M-Bus device, DSMR bits 24..27; lost communication 16..19): :meth:`HanCommands.on_push`
reads the meter's channels and publishes the linkage and events; a periodic poll
(:meth:`HanCommands.schedule`, the event-log period) catches pushes that were lost.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import structlog

from smmc_gateway.dlms.errors import DataAccessError, SessionError
from smmc_gateway.dlms.push import PushEvent
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.han_links import HanLinks
from smmc_gateway.headend.request_limits import show, target_meters
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig, ModelConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError
from smmc_gateway.usecases import events as events_uc
from smmc_gateway.usecases import han as han_uc

log = structlog.get_logger("smmc_gateway.han")

REASONS = ("hanInstall", "hanRemove")
DEVICE_FIELDS = frozenset(
    {"serialNumber", "mRID", "channel", "manufacturer", "primaryAddress", "UsagePoint", "key"}
)
KEY_FIELDS = frozenset({"encryptionKey", "transferKey"})
HAN_ALARM_BITS = 0x0F0F0000  # the simulator's M-Bus bits (the model names them: events.han_alarm)
METER_ERRORS = (SessionError, OSError, TimeoutError, han_uc.HanNotConfirmed)
_HEX = re.compile(r"[0-9a-fA-F]*", re.ASCII)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _hex(raw: object, where: str, sizes: tuple[int, int], problems: list[str]) -> bytes | None:
    lo, hi = sizes
    if (
        not isinstance(raw, str)
        or not _HEX.fullmatch(raw)
        or len(raw) % 2
        or not lo <= len(raw) // 2 <= hi
    ):
        problems.append(f"{where}: not {lo}..{hi} bytes of hex (value not shown)")
        return None
    return bytes.fromhex(raw)


class _Device:
    """One EndDevice item of a request, validated."""

    def __init__(self, item: Any, where: str, install: bool, problems: list[str]) -> None:
        self.where = where
        self.serial: str | None = None
        self.mrid: str | None = None
        self.channel: int | None = None
        self.manufacturer: str | None = None
        self.address = 0
        self.usage_point: str | None = None
        self.wrapped: bytes | None = None
        self.transfer: bytes | None = None
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            return
        bad = sorted(set(item) - DEVICE_FIELDS)
        if bad:
            problems.append(
                f"{where}: unknown field(s) {bad}; allowed: {', '.join(sorted(DEVICE_FIELDS))}"
            )
        serial = item.get("serialNumber")
        if serial is not None or install:
            if not isinstance(serial, str) or not re.fullmatch(r"\d{8}", serial, re.ASCII):
                problems.append(
                    f"{where}.serialNumber: {show(serial)} is not the device's "
                    "8-digit M-Bus identification number"
                )
            else:
                self.serial = serial
        mrid = item.get("mRID")
        if mrid is not None and (not isinstance(mrid, str) or not 0 < len(mrid) <= 128):
            problems.append(f"{where}.mRID: {show(mrid)} is not a string of 1..128 characters")
        elif isinstance(mrid, str):
            self.mrid = mrid
        ch = item.get("channel")
        if ch is not None and (
            not isinstance(ch, int) or isinstance(ch, bool) or ch not in han_uc.CHANNELS
        ):
            problems.append(f"{where}.channel: {show(ch)} is not an M-Bus channel 1..4")
        elif isinstance(ch, int):
            self.channel = ch
        man = item.get("manufacturer")
        if man is not None and (not isinstance(man, str) or not re.fullmatch(r"[A-Z]{3}", man)):
            problems.append(
                f"{where}.manufacturer: {show(man)} is not a three-letter "
                "EN 13757-3 manufacturer code (A..Z)"
            )
        elif isinstance(man, str):
            self.manufacturer = man
        addr = item.get("primaryAddress", 0)
        if not isinstance(addr, int) or isinstance(addr, bool) or not 0 <= addr <= 250:
            problems.append(f"{where}.primaryAddress: {show(addr)} is not 0..250")
        else:
            self.address = addr
        up = item.get("UsagePoint")
        if up is not None:
            name = up.get("mRID") if isinstance(up, dict) else None
            if not isinstance(name, str) or not 0 < len(name) <= 128:
                problems.append(f"{where}.UsagePoint.mRID: missing or not 1..128 characters")
            else:
                self.usage_point = name
        key = item.get("key")
        if key is not None:
            if not install:
                problems.append(f"{where}.key: only hanInstall takes a key")
            elif not isinstance(key, dict):
                problems.append(f"{where}.key: must be an object {{encryptionKey, transferKey}}}}")
            else:
                extra = sorted(set(key) - KEY_FIELDS)
                if extra:
                    problems.append(
                        f"{where}.key: unknown field(s) {extra}; allowed: "
                        "encryptionKey (RFC 3394 wrap under the meter's master "
                        "key), transferKey"
                    )
                self.wrapped = _hex(
                    key.get("encryptionKey"), f"{where}.key.encryptionKey", (24, 24), problems
                )
                if key.get("transferKey") is not None:
                    self.transfer = _hex(
                        key["transferKey"], f"{where}.key.transferKey", (16, 64), problems
                    )
        if not install and self.serial is None and self.mrid is None and self.channel is None:
            problems.append(f"{where}: names no device (give serialNumber, mRID or channel)")

    @property
    def keyed(self) -> bool:
        return self.wrapped is not None

    def name(self) -> str:
        return self.serial or self.mrid or f"channel {self.channel}"


class HanCommands:
    """``await HanCommands(headend, commands)(verb, payload)`` -> the reply Outcome; also
    the discovery side (:meth:`on_push`, :meth:`schedule`)."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig | None = None) -> None:
        self.headend = headend
        self.commands = commands if commands is not None else CommandsConfig()
        self.links = HanLinks(headend)
        self._pending: dict[str, asyncio.Task[None]] = {}

    @staticmethod
    def claims(verb: str, payload: dict[str, Any]) -> bool:
        """Whether a MasterDataLinkageConfig request is a HAN one (else an account move)."""
        ev = payload.get("ConfigurationEvent")
        reason = ev.get("reason") if isinstance(ev, dict) else None
        if reason in ("moveOut", "moveIn"):
            return False  # an account move, whatever its verb (the move handler says which)
        return verb == "get" or reason in REASONS or "EndDevice" in payload

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        ev = payload.get("ConfigurationEvent")
        reason = ev.get("reason") if isinstance(ev, dict) else None
        if verb == "get":
            meters = target_meters(
                self.headend.fleet, payload, "payload", problems, key="Meter", groups=False
            )
            if reason not in (None, "hanDevices"):
                problems.append(
                    f"payload.ConfigurationEvent.reason: {show(reason)}; a get "
                    "lists the HAN devices (reason hanDevices or none)"
                )
            if problems:
                return _invalid(problems)
            entries = await asyncio.gather(*(self._list(m) for m in meters))
            return _overall(list(entries))
        if verb not in ("create", "change"):
            problems.append(
                f"header.verb: {show(verb)}; MasterDataLinkageConfig takes create, change or get"
            )
        if reason not in REASONS:
            problems.append(
                f"payload.ConfigurationEvent.reason: {show(reason)} is not one "
                f"of {', '.join(REASONS)} (a request with EndDevice is a HAN "
                "request)"
            )
        meters = target_meters(
            self.headend.fleet, payload, "payload", problems, key="Meter", groups=False
        )
        if len(meters) > 1:
            problems.append(
                f"payload.Meter: {len(meters)} meters; a HAN install or removal "
                "names one meter (its devices are on that meter's bus)"
            )
        raw = payload.get("EndDevice")
        devices: list[_Device] = []
        if not isinstance(raw, list) or not 1 <= len(raw) <= len(han_uc.CHANNELS):
            problems.append(
                f"payload.EndDevice: must be an array of 1..{len(han_uc.CHANNELS)} devices"
            )
        else:
            devices = [
                _Device(d, f"payload.EndDevice[{i}]", reason == "hanInstall", problems)
                for i, d in enumerate(raw)
            ]
        if problems:
            return _invalid(problems)
        if any(d.keyed for d in devices) and not self.commands.serves("hanKeys"):
            return Outcome(
                "FAILED",
                errors=[
                    {
                        "code": "NounDisabled",
                        "details": "MasterDataLinkageConfig hanInstall with a key is disabled on "
                        "this "
                        "gateway (commands.enabled.hanKeys is false); the operator turns "
                        "it on on purpose with [commands.enabled] hanKeys = true; nothing "
                        "was done",
                    }
                ],
            )
        entry = await self._work(meters[0], str(reason), devices)
        return _overall([entry])

    # -- one meter -----------------------------------------------------------------
    async def _list(self, meter: str) -> dict[str, Any]:
        try:
            return {**await self.refresh(meter, "hanDevices", Priority.COMMAND), "result": "OK"}
        except METER_ERRORS as exc:
            return {"Meter": {"mRID": meter}, "result": "FAILED", "details": _error_text(exc)}

    async def _work(self, meter: str, reason: str, devices: list[_Device]) -> dict[str, Any]:
        cfg = self.headend.fleet.meter(meter)
        kek = cfg.keys.master_key if cfg.keys is not None else None
        results: list[dict[str, Any]] = []
        known = await self.links.known(meter)
        by_mrid = {k.device_mrid: k for k in known.values() if k.device_mrid}
        requested: dict[str, tuple[str | None, str | None]] = {}
        channels: list[han_uc.HanChannel] = []
        try:
            async with (
                self.links.lock(meter),
                self.headend.scheduler.session(meter, Priority.COMMAND) as s,
            ):
                for d in devices:
                    results.append(await self._one(s, d, reason, kek, by_mrid, requested))
                channels = await han_uc.read_channels(s)
                entry = await self.links.update(
                    meter, channels, reason, requested=requested, publish=True
                )
        except METER_ERRORS as exc:
            done = {r["EndDevice"]["name"] for r in results}
            results += [
                {"EndDevice": {"name": d.name()}, "result": "FAILED", "details": _error_text(exc)}
                for d in devices
                if d.name() not in done
            ]
            return {
                "Meter": {"mRID": meter},
                "reason": reason,
                "result": "FAILED",
                "details": _error_text(exc),
                "results": results,
            }
        good = sum(1 for r in results if r["result"] == "OK")
        result = "OK" if good == len(results) else ("FAILED" if good == 0 else "PARTIAL")
        return {**entry, "reason": reason, "result": result, "results": results}

    async def _one(
        self,
        s: Any,
        d: _Device,
        reason: str,
        kek: Any,
        by_mrid: dict[str, Any],
        requested: dict[str, tuple[str | None, str | None]],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"EndDevice": {"name": d.name()}}
        try:
            if reason == "hanRemove":
                serial = d.serial
                if serial is None and d.mrid is not None:
                    found = by_mrid.get(d.mrid)
                    if found is None:
                        raise han_uc.HanNotConfirmed(
                            f"no HAN device with mRID {d.mrid!r} is linked to this meter"
                        )
                    serial = found.serial
                before = await han_uc.deinstall(s, serial, None if serial else d.channel)
                return {
                    **out,
                    "result": "OK",
                    "steps": [f"de-installed from channel {before.channel} (slave_deinstall)"],
                    "details": f"device {before.serial} removed; channel {before.channel} is free",
                    "serialNumber": before.serial,
                }
            key = None
            if d.wrapped is not None:
                if kek is None:
                    raise han_uc.HanNotConfirmed(
                        "not sent: the key file has no master_key for this meter (needed to "
                        "unwrap encryptionKey)"
                    )
                key = han_uc.HanKey.unwrap(kek.reveal(), d.wrapped, d.transfer)
            assert d.serial is not None
            r = await han_uc.install(
                s,
                d.serial,
                channel=d.channel,
                manufacturer=d.manufacturer,
                primary_address=d.address,
                key=key,
            )
            requested[d.serial] = (d.mrid, d.usage_point)
            return {
                **out,
                "result": "OK",
                "steps": list(r.steps),
                "details": f"device {d.serial} on channel {r.channel.channel}",
                **r.channel.describe(),
            }
        except (han_uc.HanNotConfirmed, han_uc.HanKeyRefused, DataAccessError) as exc:
            log.warning(
                "han_request_failed", reason=reason, device=d.name(), details=str(exc)[:300]
            )
            return {**out, "result": "FAILED", "details": str(exc)}

    # -- discovery -----------------------------------------------------------------
    async def refresh(
        self, meter: str, reason: str, priority: Priority = Priority.READ
    ) -> dict[str, Any]:
        """Read the meter's channels, compare with what is kept, publish changes; the
        linkage entry."""
        async with self.links.lock(meter):
            async with self.headend.scheduler.session(meter, priority) as s:
                channels = await han_uc.read_channels(s)
            return await self.links.update(meter, channels, reason)

    def on_push(self, push: PushEvent) -> None:
        """An alarm push with an M-Bus bit set: refresh that meter's linkage (once at a
        time per meter; a push while one runs is folded into it)."""
        try:  # the bits the meter's device model names as M-Bus alarms
            model: ModelConfig | None = self.headend.model_of(push.meter_id)
        except KeyError:
            model = None
        if not events_uc.han_alarm(push.body, model):
            return
        meter = push.meter_id
        if meter in self._pending:
            return

        async def run() -> None:
            try:
                await self.refresh(meter, "hanAlarm", Priority.ALARM)
            except GatewayStopping:
                pass
            except METER_ERRORS as exc:  # the periodic poll tries again
                log.warning("han_refresh_failed", meter_id=meter, error=_error_text(exc))
            finally:
                self._pending.pop(meter, None)

        self._pending[meter] = asyncio.get_running_loop().create_task(run())

    def schedule(self, every_s: float, jitter_s: float = 0.0) -> None:
        """Poll every meter's channels every ``every_s`` (first one period after start);
        meters whose discovered object list has no M-Bus client are skipped."""
        import time

        started = time.time()

        async def job(meter: str) -> None:
            found = await self.headend.fleet.discovery(meter)
            if found is not None and not any(
                o.get("classId") == han_uc.MBUS_CLIENT for o in found.get("objects", [])
            ):
                return
            await self.refresh(meter, "hanPoll")

        self.headend.scheduler.every(
            "han", every_s, job, jitter_s=jitter_s, last_success=lambda _m: started
        )


def _invalid(problems: list[str]) -> Outcome:
    return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems])


def _overall(entries: list[dict[str, Any]]) -> Outcome:
    errors: list[ReplyError] = []
    for e in entries:
        m = e["Meter"]["mRID"]
        if e["result"] == "FAILED" and "details" in e:  # the meter itself failed
            errors.append({"code": "MeterFailed", "details": f"{m}: {e['details']}"})
            continue
        for r in e.get("results", []):
            if r["result"] != "OK":
                errors.append(
                    {
                        "code": "HanFailed",
                        "details": f"{m}: {r['EndDevice']['name']}: {r['details']}",
                    }
                )
    good = sum(1 for e in entries if e["result"] == "OK")
    result = (
        "OK"
        if good == len(entries)
        else (
            "FAILED" if good == 0 and all(e["result"] == "FAILED" for e in entries) else "PARTIAL"
        )
    )
    return Outcome(result, {"MasterDataLinkageConfig": entries}, errors)
