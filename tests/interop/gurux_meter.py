"""A meter made of the Gurux DLMS server (third party), served over asyncio TCP.

Gurux's ``GXDLMSServer`` is sans-IO: it takes received bytes and gives the
reply frame. :class:`GuruxMeter` holds a small, fixed IDIS-like object model
(association LN, clock, a device id, four energy registers with scaler/unit, a
15-minute load profile, a writable Data object, a disconnect control, a limiter
with its monitored value, the IDIS standard event log, the time of the last
clock synchronisation) and :func:`serving` runs it on a loopback port (HDLC or
wrapper) so that our own client session, or the whole gateway daemon, can be
pointed at an implementation it was not written against.

One security level per meter (``"none"``, ``"lls"`` or ``"hls-gmac"``); the
association accepts only that level. GPL code, run as a test peer only.

``live=True`` makes it a meter of the present: its clock runs (real time plus
``clock_offset_s``, so a test can put it off by N s), the load profile's 96
rows end at the last quarter hour before it was built and the event log holds
:data:`EVENT_ROWS` at times relative to then. ``stuck_clock=True`` makes a
faulty meter: shift_time and SET of the time answer success, change nothing.
Otherwise (the default) the clock and the profile stand at :data:`START` (what
test_interop_gurux_meter expects).

Behaviour Gurux leaves to the application, done here as a meter would (the
Blue Book's): the disconnect control's remote_disconnect (method 1) and
remote_reconnect (method 2) in control mode 2 (b, c: to disconnected; a:
disconnected -> connected); the clock's shift_time (method 6, -900..900 s) and
SET of its time (attribute 2), each also stamping the "last clock
synchronisation" Data object (0.0.96.2.12.255); a SET of the limiter's
threshold_normal also becomes its threshold_active (no emergency is active).

Shims for Gurux 1.0.203's own defects (each would crash Gurux or send wrong
bytes; none is a rule of the standard; all are below, in :func:`_shim_gurux`
and the classes it names):

1. ``ValueEventArgs`` lacks ``isSkipMaxPduSize`` (the object_list encoder calls it).
2. SET and ACTION handlers call ``list(e)`` on one ``ValueEventArgs`` (meaning
   ``[e]``): made iterable over itself. Without it every SET and ACTION answers
   hardware-fault with the invoke id of the previous request.
3. Accessors the handlers call but the classes lack: ``isMultipleBlocks``
   (``GXDLMSLNParameters``, SET normal), ``setConnected`` (``GXDLMSSettings``)
   and ``getAssociationStatus`` (the association, after HLS pass 3).
4. Under HLS-GMAC the AARE's responding-AP-title is written ``A4 08 04 <ST>``
   through ``setUInt8()`` without its argument (a TypeError): the shim writes
   the missing inner length and the outer length that covers it
   (``A4 0A 04 08 <ST>``: the AP-title is an OCTET STRING inside the tag).
5. ``GXDLMS.handleGloDedRequest`` builds ``AesGcmParameter(title, ek, ak)``
   without the tag argument, so every ciphered request is deciphered with no
   authentication key: the class takes that call shape too.
6. The server's invocation counter: the AARE's ciphered initiate-response
   does not advance it (the next APDU goes out with the same IC) and every new
   association resets it to 0 (``GXDLMSServer.reset`` calls
   ``GXCiphering.reset``). Green Book (DLMS UA 1000-2, security): an IC is
   never used twice with one key (it is part of the GCM IV); our client
   rightly refuses the replay. :class:`GuruxMeter` advances it after each reply and keeps it
   across associations.
7. ``reply_to_HLS_authentication`` does ``int(bytes)`` on the client's
   f(StoC): :class:`_Association` computes and checks the HLS-GMAC pass 3/4
   values itself (SC || IC || GMAC(SC || AK || challenge), the tag cut to 12
   bytes, with the EK and the sender's system title and IC as IV).
8. The invoke id of a request is kept in ``settings.invokeID`` but answers
   that carry no invoke id of their own (a GET of an undefined object, the
   error answers) take ``settings.invokeId``, which stays 1: such an answer
   to request 2 says ``C4 01 C1 01 04`` where the Green Book's xDLMS
   response carries the request's invoke-id-and-priority, ``C2``. The two names are made one.
9. SET with-list is parsed and dropped: nothing is written and the answer is
   ``C5 04 <invoke> 00`` (set-response choice 4, last-datablock-with-list, cut
   short) where the Green Book wants ``C5 05 <invoke> <n> <n results>``
   (set-response-with-list). :func:`_set_with_list` applies each item as
   Gurux's own SET-normal path does (access check, setValue, onPostWrite) and
   lets Gurux encode the with-list response.

Not shimmed, on purpose: Gurux's AARE under HLS-GMAC also carries a
responding-authentication-value ``AA 10 80 10 <16 bytes>`` whose outer length
(16) disagrees with its well-formed inner value (18 bytes): that is a quirk
the gateway must tolerate (issue 10 item 1), so it is left on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gurux_dlms import (
    GXByteBuffer,
    GXCiphering,
    GXDateTime,
    GXDLMSServer,
    GXServerReply,
    ValueEventArgs,
)
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Command,
    Conformance,
    DataType,
    ErrorCode,
    InterfaceType,
    MethodAccessMode,
    ObjectType,
    Security,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSLimiter,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.objects.enums import AssociationStatus
from smmc_gateway.cosem.datetime import to_utc

START = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
"""The load profile's first capture and the meter clock's time."""
ROWS = 96
ENERGY = {
    "1.0.1.8.0.255": (123_456, 0, Unit.ACTIVE_ENERGY),
    "1.0.2.8.0.255": (2_345, 0, Unit.ACTIVE_ENERGY),
    "1.0.3.8.0.255": (34_567, -1, Unit.REACTIVE_ENERGY),
    "1.0.4.8.0.255": (456, 1, Unit.REACTIVE_ENERGY),
}
SERIAL = b"GRX-METER-0001"
SYSTEM_TITLE = b"GRXMETER"
PASSWORD = b"12345678"

LIMITER = "0.0.17.0.0.255"
MONITORED = "1.0.1.7.0.255"
"""The limiter's monitored value: active power import, in 0.1 W (scaler -1, unit W)."""
MONITORED_SCALER = -1
THRESHOLD_NORMAL = 100_000
"""The limiter's threshold_normal as built: 10 kW in the monitored value's 0.1 W."""
EVENT_LOG = "0.0.99.98.0.255"
EVENT_CODE = "0.0.96.11.0.255"
LAST_SYNC = "0.0.96.2.12.255"
EVENT_ROWS = (
    (-3 * 3600, 1),  # power down
    (-3 * 3600 + 300, 2),  # power up
    (-2 * 3600, 4),  # clock adjusted (old time)
    (-2 * 3600, 5),  # clock adjusted (new time), the same second
    (-1800, 10),  # error register cleared
)
"""The live event log's rows: (seconds relative to the meter's creation, IDIS code)."""


def _shim_gurux() -> None:
    """Shims 1 to 5 and 9 of the module docstring (idempotent; 6 and 7 are in
    :class:`GuruxMeter` and :class:`_Association`, 8 in :class:`_ServerSettings`)."""
    if not hasattr(ValueEventArgs, "isSkipMaxPduSize"):
        ValueEventArgs.isSkipMaxPduSize = lambda self: bool(self.skipMaxPduSize)
    if not hasattr(ValueEventArgs, "__iter__"):
        ValueEventArgs.__iter__ = lambda self: iter((self,))
    params = sys.modules["gurux_dlms.GXDLMSLNParameters"].GXDLMSLNParameters
    if not hasattr(params, "isMultipleBlocks"):
        params.isMultipleBlocks = lambda self: bool(self.multipleBlocks)
    settings = sys.modules["gurux_dlms.GXDLMSSettings"].GXDLMSSettings
    if not hasattr(settings, "setConnected"):
        settings.setConnected = lambda self, value: setattr(self, "connected", value)
    if not getattr(GXByteBuffer.setUInt8, "_smmc_shim", False):
        original = GXByteBuffer.setUInt8

        def set_uint8(self: Any, *args: Any) -> None:
            if args:
                original(self, *args)
                return
            # only _GXAPDU.generateAARE calls it so, after ``A4 <n> 04``: write n and
            # make the outer length n + 2
            n = self._data[self.size - 2]
            self._data[self.size - 2] = n + 2
            original(self, n)

        set_uint8._smmc_shim = True  # type: ignore[attr-defined]
        GXByteBuffer.setUInt8 = set_uint8
    module = sys.modules["gurux_dlms.AesGcmParameter"]
    if not getattr(module.AesGcmParameter, "_smmc_shim", False):
        base = module.AesGcmParameter

        class AesGcmParameter(base):  # type: ignore[misc, valid-type]
            _smmc_shim = True

            def __init__(self, *args: Any) -> None:
                if args and isinstance(args[0], (bytes, bytearray)):
                    args = (0, *args)  # called without the tag
                super().__init__(*args)

        module.AesGcmParameter = AesGcmParameter
        sys.modules["gurux_dlms.GXDLMS"].AesGcmParameter = AesGcmParameter

    handler = sys.modules["gurux_dlms.GXDLMSLNCommandHandler"].GXDLMSLNCommandHandler
    if not getattr(handler.handleSetRequest, "_smmc_shim", False):
        original_set = handler.handleSetRequest

        def handle_set(
            cls: Any, settings: Any, server: Any, data: Any, reply: Any, xml: Any
        ) -> None:
            if xml is None and settings.acceptConnection() and data.getUInt8(data.position) == 4:
                _set_with_list(settings, server, data, reply)
            else:
                original_set(settings, server, data, reply, xml)

        handle_set._smmc_shim = True  # type: ignore[attr-defined]
        handler.handleSetRequest = classmethod(handle_set)


_SETTINGS = sys.modules["gurux_dlms.GXDLMSSettings"].GXDLMSSettings


class _ServerSettings(_SETTINGS):  # type: ignore[misc, valid-type]
    """Shim 8, for the meter's settings only (Gurux clients in the same process keep
    their own invoke id handling): ``invokeId`` is ``invokeID``."""

    @property
    def invokeId(self) -> int:
        return int(self.invokeID)

    @invokeId.setter
    def invokeId(self, value: int) -> None:
        self.invokeID = value


def _set_with_list(settings: Any, server: Any, data: Any, reply: Any) -> None:
    """Shim 9: a SET-Request-With-List applied item by item, answered with-list."""
    common = sys.modules["gurux_dlms.internal._GXCommon"]._GXCommon
    info = sys.modules["gurux_dlms.internal._GXDataInfo"]._GXDataInfo
    lib = sys.modules["gurux_dlms.GXDLMS"]
    data.getUInt8()  # set-request-with-list
    invoke = data.getUInt8()
    settings.updateInvokeId(invoke)
    targets = []
    for _ in range(common.getObjectCount(data)):
        class_id = data.getUInt16()
        ln = bytearray(6)
        data.get(ln)
        index = data.getUInt8()
        if data.getUInt8():  # access selection: not used by any object here
            data.getUInt8()
            common.getData(settings, data, info())
        targets.append((class_id, common.toLogicalName(ln), index))
    values = [common.getData(settings, data, info()) for _ in range(common.getObjectCount(data))]
    results = GXByteBuffer()
    common.setObjectCount(len(targets), results)
    for (class_id, ln, index), value in zip(targets, values, strict=True):
        obj = settings.objects.findByLN(ObjectType(class_id), ln)
        if obj is None:
            results.setUInt8(ErrorCode.UNDEFINED_OBJECT)
            continue
        e = ValueEventArgs(server, obj, index, 0, None)
        if server.onGetAttributeAccess(e) not in (AccessMode.WRITE, AccessMode.READ_WRITE):
            results.setUInt8(ErrorCode.READ_WRITE_DENIED)
            continue
        if isinstance(value, bytearray) and obj.getDataType(index) not in (
            DataType.NONE,
            DataType.OCTET_STRING,
        ):
            value = common.changeType(settings, value, obj.getDataType(index))
        e.value = value
        obj.setValue(settings, e)
        server.onPostWrite([e])
        results.setUInt8(int(e.error))
    answer = sys.modules["gurux_dlms.GXDLMSLNParameters"].GXDLMSLNParameters(
        settings, invoke, Command.SET_RESPONSE, 5, None, results, 0xFF
    )
    lib.GXDLMS.getLNPdu(answer, reply)


_shim_gurux()


def gmac_value(ek: bytes, ak: bytes, title: bytes, ic: int, challenge: bytes) -> bytes:
    """HLS-GMAC f(challenge) = SC || IC || GMAC (Green Book, security suite 0)."""
    iv = title + ic.to_bytes(4, "big")
    tag = AESGCM(ek).encrypt(iv, b"", b"\x10" + ak + challenge)[:12]
    return b"\x10" + ic.to_bytes(4, "big") + tag


class _Reply(GXServerReply):  # type: ignore[misc]
    """GXServerReply as GXDLMSServer.handleRequest uses it (1.0.x lacks these
    accessors; the server calls them)."""

    def setReply(self, value: Any) -> None:
        self.reply = value

    def getConnectionInfo(self) -> Any:
        return self.connectionInfo

    def getCount(self) -> int:
        return int(self.count)

    def setCount(self, value: int) -> None:
        self.count = value


def profile_row(i: int, start: datetime = START) -> list[Any]:
    """Row ``i`` of the load profile: clock, status, +A energy."""
    return [GXDateTime(start + timedelta(minutes=15 * i)), i % 4, 100_000 + 250 * i]


def _gx_utc(value: Any) -> datetime:
    """A date-time SET by the client (raw octets or Gurux's GXDateTime) as aware UTC."""
    if isinstance(value, (bytes, bytearray)):
        moment = to_utc(bytes(value))
        if moment is None:
            raise ValueError(f"not a complete date-time: {bytes(value).hex()}")
        return moment
    moment = value.value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Clock(GXDLMSClock):  # type: ignore[misc]
    """The Gurux clock, running (live) and taking shift_time (6) and a SET of its time."""

    def __init__(self, meter: GuruxMeter) -> None:
        super().__init__("0.0.1.0.0.255")
        self.meter = meter

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index == 2 and self.meter.live:
            self.time = GXDateTime(self.meter.meter_now().replace(microsecond=0))
        return super().getValue(settings, e)

    def setValue(self, settings: Any, e: Any) -> None:
        if e.index == 2:
            self.meter.set_time(_gx_utc(e.value))
        super().setValue(settings, e)

    def invoke(self, settings: Any, e: Any) -> None:
        if e.index == 6 and isinstance(e.parameters, int) and -900 <= e.parameters <= 900:
            self.meter.set_time(self.meter.meter_now() + timedelta(seconds=e.parameters))
            self.meter.shifts.append(e.parameters)
            return
        e.error = ErrorCode.READ_WRITE_DENIED


class _Switch(GXDLMSDisconnectControl):  # type: ignore[misc]
    """Disconnect control in control mode 2 (Blue Book IC 70 transitions a, b, c)."""

    def invoke(self, settings: Any, e: Any) -> None:
        if e.index == 1:  # remote_disconnect: b (connected), c (ready) -> disconnected
            self.controlState, self.outputState = 0, False
        elif e.index == 2:  # remote_reconnect: a (disconnected -> connected)
            if self.controlState == 0:
                self.controlState, self.outputState = 1, True
        else:
            e.error = ErrorCode.READ_WRITE_DENIED


class _Limiter(GXDLMSLimiter):  # type: ignore[misc]
    """threshold_active follows threshold_normal (no emergency profile is active)."""

    def setValue(self, settings: Any, e: Any) -> None:
        super().setValue(settings, e)
        if e.index == 4:
            self.thresholdActive = self.thresholdNormal


class _Association(GXDLMSAssociationLogicalName):  # type: ignore[misc]
    """reply_to_HLS_authentication for HLS-GMAC done here (shim 7)."""

    def __init__(self, meter: GuruxMeter) -> None:
        super().__init__()
        self.meter = meter

    def getAssociationStatus(self) -> Any:
        # (the LN method handler calls this accessor, which 1.0.x lacks)
        return self.associationStatus

    def invoke(self, settings: Any, e: Any) -> Any:
        if e.index != 1 or settings.authentication != Authentication.HIGH_GMAC:
            return super().invoke(settings, e)
        keys = self.meter.keys
        got = bytes(e.parameters or b"")
        fine = len(got) == 17 and got == gmac_value(
            keys["ek"],
            keys["ak"],
            bytes(settings.sourceSystemTitle),
            int.from_bytes(got[1:5], "big"),
            bytes(settings.stoCChallenge),
        )
        if not fine:
            self.meter.events.append("refused f(StoC)")
            self.associationStatus = AssociationStatus.NON_ASSOCIATED
            e.error = ErrorCode.OTHER_REASON
            return None
        cipher = settings.cipher
        ic = int(cipher.invocationCounter)
        cipher.invocationCounter = ic + 1
        self.associationStatus = AssociationStatus.ASSOCIATED
        return bytearray(
            gmac_value(keys["ek"], keys["ak"], SYSTEM_TITLE, ic, bytes(settings.ctoSChallenge))
        )


class GuruxMeter(GXDLMSServer):  # type: ignore[misc]
    """The Gurux server with our object model and one security level."""

    def __init__(
        self,
        *,
        hdlc: bool,
        auth: str = "none",
        keys: dict[str, bytes] | None = None,
        max_pdu: int = 1024,
        live: bool = False,
        clock_offset_s: float = 0.0,
        stuck_clock: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(True, InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER)
        self.settings.__class__ = _ServerSettings  # shim 8
        self.auth = auth
        self.keys = keys or {}
        self.live = live
        self.clock_offset_s = clock_offset_s
        self.stuck_clock = stuck_clock
        self.now = now
        self.shifts: list[int] = []
        self.events: list[str] = []
        if auth == "hls-gmac":
            assert keys is not None
            cipher = GXCiphering(bytearray(SYSTEM_TITLE))
            cipher.security = Security.AUTHENTICATION_ENCRYPTION
            cipher.blockCipherKey = bytearray(keys["ek"])
            cipher.authenticationKey = bytearray(keys["ak"])
            self.settings.cipher = cipher
        # (Gurux 1.0.x's get-request-next handler reads this misspelt field.)
        self.settings.gbtWndowSize = self.settings.gbtWindowSize
        # (GXDLMSServer.setMaxReceivePDUSize recurses forever in 1.0.x: set the field.)
        self.settings.maxServerPDUSize = max_pdu
        self.setConformance(
            Conformance.BLOCK_TRANSFER_WITH_ACTION
            | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
            | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
            | Conformance.GET
            | Conformance.SET
            | Conformance.ACTION
            | Conformance.SELECTIVE_ACCESS
            | Conformance.MULTIPLE_REFERENCES
        )
        association = _Association(self)
        association.authenticationMechanismName.mechanismId = {
            "none": Authentication.NONE,
            "lls": Authentication.LOW,
            "hls-gmac": Authentication.HIGH_GMAC,
        }[auth]
        association.secret = bytearray(PASSWORD)
        self.clock = _Clock(self)
        self.clock.time = GXDateTime(START + timedelta(days=1))
        self.clock.timeZone = 0
        device = GXDLMSData("0.0.96.1.0.255")
        device.value = bytearray(SERIAL)
        device.setDataType(2, DataType.OCTET_STRING)
        self.alarm_filter = GXDLMSData("0.0.97.98.10.255")
        self.alarm_filter.value = 0
        self.alarm_filter.setDataType(2, DataType.UINT32)
        self.registers: dict[str, GXDLMSRegister] = {}
        for obis, (value, scaler, unit) in ENERGY.items():
            register = GXDLMSRegister(obis)
            register.value = value
            register.setDataType(2, DataType.UINT32)
            register.scaler = 10.0**scaler
            register.unit = unit
            self.registers[obis] = register
        self.profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        self.profile.capturePeriod = 900
        self.profile.profileEntries = ROWS
        status = GXDLMSData("0.0.96.10.1.255")
        status.value = 0
        status.setDataType(2, DataType.UINT8)
        for obj in (self.clock, status, self.registers["1.0.1.8.0.255"]):
            self.profile.addCaptureObject(obj, 2, 0)
        created = now()
        self.profile_start = START
        if live:
            last = created.replace(
                minute=created.minute - created.minute % 15, second=0, microsecond=0
            )
            self.profile_start = last - timedelta(minutes=15 * (ROWS - 1))
        self._rows: dict[int, list[list[Any]]] = {
            id(self.profile): [profile_row(i, self.profile_start) for i in range(ROWS)]
        }
        self.profile.buffer = self._rows[id(self.profile)]
        self.selections: list[tuple[int, int]] = []
        self.profile.entriesInUse = ROWS
        self.disconnect = _Switch("0.0.96.3.10.255")
        self.disconnect.outputState = True
        self.disconnect.controlState = 1
        self.disconnect.controlMode = 2
        self.power = GXDLMSRegister(MONITORED)
        self.power.value = 12_345
        self.power.setDataType(2, DataType.UINT32)
        self.power.scaler = 10.0**MONITORED_SCALER
        self.power.unit = Unit.ACTIVE_POWER
        self.limiter = _Limiter(LIMITER)
        self.limiter.monitoredValue = self.power
        self.limiter.monitoredAttributeIndex = 2
        self.limiter.thresholdActive = self.limiter.thresholdNormal = THRESHOLD_NORMAL
        self.limiter.thresholdEmergency = THRESHOLD_NORMAL // 2
        for index in (3, 4, 5):
            self.limiter.setDataType(index, DataType.UINT32)
        self.limiter.minOverThresholdDuration = 60
        self.limiter.minUnderThresholdDuration = 30
        self.event_code = GXDLMSData(EVENT_CODE)
        self.event_code.value = 0
        self.event_code.setDataType(2, DataType.UINT8)
        self.event_log = GXDLMSProfileGeneric(EVENT_LOG)
        self.event_log.capturePeriod = 0
        self.event_log.profileEntries = 100
        for obj in (self.clock, self.event_code):
            self.event_log.addCaptureObject(obj, 2, 0)
        stamp = created.replace(microsecond=0)
        self.event_rows = [(stamp + timedelta(seconds=s), code) for s, code in EVENT_ROWS]
        self._rows[id(self.event_log)] = [[GXDateTime(t), c] for t, c in self.event_rows]
        self.event_log.buffer = self._rows[id(self.event_log)]
        self.event_log.entriesInUse = len(self.event_rows)
        self.last_sync = GXDLMSData(LAST_SYNC)
        self.last_sync.value = GXDateTime(START)
        self.last_sync.setDataType(2, DataType.OCTET_STRING)
        for obj in (
            association,
            self.clock,
            device,
            self.alarm_filter,
            *self.registers.values(),
            status,
            self.profile,
            self.disconnect,
            self.power,
            self.limiter,
            self.event_code,
            self.event_log,
            self.last_sync,
        ):
            self.items.append(obj)
            # (initialize() would append the whole collection as one item: fill it here.)
            association.objectList.append(obj)
        self.initialize()

    def rows_of(self, profile: GXDLMSProfileGeneric) -> list[list[Any]]:
        """Every row ``profile`` holds (its buffer attribute holds the last selection)."""
        return self._rows[id(profile)]

    def meter_now(self) -> datetime:
        """The meter's time: the host's plus the offset (live), else the clock's value."""
        if self.live:
            return self.now() + timedelta(seconds=self.clock_offset_s)
        moment = self.clock.time.value
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def set_time(self, moment: datetime) -> None:
        """The clock set to ``moment`` (shift_time or a SET): stamped as the last sync.
        A ``stuck_clock`` meter answers success and changes nothing (a faulty meter)."""
        if self.stuck_clock:
            self.events.append(f"clock set {moment.isoformat()} ignored")
            return
        if self.live:
            self.clock_offset_s = (moment - self.now()).total_seconds()
        self.clock.time = GXDateTime(moment.replace(microsecond=0))
        self.last_sync.value = GXDateTime(moment.replace(microsecond=0))
        self.events.append(f"clock set {moment.isoformat()}")

    def handleRequest(self, sr: Any) -> None:
        super().handleRequest(sr)
        if sr.reply and self.settings.cipher is not None:
            # shim 6: a fresh invocation counter for the next ciphered APDU
            self.settings.cipher.invocationCounter += 1

    def reset(self, connect: bool = False) -> None:
        cipher = self.settings.cipher
        used = int(cipher.invocationCounter) if cipher is not None else 0
        super().reset(connect)
        if cipher is not None:  # shim 6: the counter survives the next association
            cipher.invocationCounter = max(used, int(cipher.invocationCounter))

    # ------------------------------------ what Gurux's LN handler calls (1.0.x lacks them)
    def notifyRead(self) -> None:
        pass

    def notifyConnected(self, connectionInfo: Any) -> None:
        self.onConnected(connectionInfo)

    def getTransaction(self) -> Any:
        return self.transaction

    def setTransaction(self, value: Any) -> None:
        self.transaction = value

    # --------------------------------------------------------------- Gurux hooks
    def isTarget(self, serverAddress: int, clientAddress: int) -> bool:
        self.events.append(f"target {serverAddress}/{clientAddress}")
        return True

    def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:
        wanted = {
            "none": Authentication.NONE,
            "lls": Authentication.LOW,
            "hls-gmac": Authentication.HIGH_GMAC,
        }[self.auth]
        if authentication != wanted:
            self.events.append(f"refused mechanism {int(authentication)}")
            return SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED
        if self.auth == "lls" and bytes(password or b"") != PASSWORD:
            self.events.append("refused password")
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        return SourceDiagnostic.NONE

    def onFindObject(self, objectType: Any, sn: Any, ln: Any) -> None:
        return None

    def onPreRead(self, *args: Any) -> None:
        pass

    def onPreWrite(self, *args: Any) -> None:
        pass

    def onPostWrite(self, *args: Any) -> None:
        for e in args[0] if args else ():
            self.events.append(f"write {e.target.logicalName}/{e.index}")

    def onPreAction(self, *args: Any) -> None:
        pass

    def onPostAction(self, *args: Any) -> None:
        for e in args[0] if args else ():
            self.events.append(f"action {e.target.logicalName}/{e.index}")

    def onPreGet(self, *args: Any) -> None:
        pass

    def onPostGet(self, *args: Any) -> None:
        pass

    def onConnected(self, connectionInfo: Any) -> None:
        self.events.append("connected")

    def onInvalidConnection(self, connectionInfo: Any) -> None:
        self.events.append("invalid connection")

    def onDisconnected(self, connectionInfo: Any) -> None:
        self.events.append("disconnected")

    def onGetAttributeAccess(self, arg: Any) -> Any:
        if id(arg.target) in self._rows and arg.index == 2 and arg.selector in (1, 2):
            self._select(arg)
        return AccessMode.READ_WRITE

    def _select(self, e: Any) -> None:
        """Selective access on a profile, done here (Blue Book IC 7: by range on
        the first column, inclusive; by entry from..to, 1-based, to 0 = the last).
        Gurux 1.0.x's own selection fails (ValueEventArgs has no getRowEndIndex;
        its range compares a datetime with 0), so we hand Gurux the selected rows
        and let it encode them and the blocks."""
        rows = self._rows[id(e.target)]
        if e.selector == 1:
            start = to_utc(bytes(e.parameters[1]))
            end = to_utc(bytes(e.parameters[2]))
            assert start is not None and end is not None
            chosen = [r for r in rows if start <= _gx_utc(r[0]) <= end]
        else:
            first, last = int(e.parameters[0]), int(e.parameters[1])
            chosen = rows[max(first, 1) - 1 : (last or len(rows))]
        if e.target is self.profile:
            self.selections.append((e.selector, len(chosen)))
        e.target.buffer = chosen
        e.selector, e.parameters = 0, None

    def onPostRead(self, *args: Any) -> None:
        self.profile.buffer = self._rows[id(self.profile)]
        self.event_log.buffer = self._rows[id(self.event_log)]

    def onGetMethodAccess(self, arg: Any) -> Any:
        return MethodAccessMode.ACCESS


@dataclass
class ServedMeter:
    meter: GuruxMeter
    port: int
    wire: list[tuple[str, bytes]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serving(meter: GuruxMeter) -> AsyncIterator[ServedMeter]:
    """Serve ``meter`` on a free loopback port (one connection at a time: the Gurux
    server holds one association's state). On exit the open connections are closed
    and their handlers finish before the port closes."""
    served = ServedMeter(meter, 0)
    handlers: set[asyncio.Task[Any]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        writers.add(writer)
        try:
            while data := await reader.read(4096):
                served.wire.append(("<<", data))
                reply = _Reply(bytearray(data))
                meter.handleRequest(reply)
                if reply.reply:
                    served.wire.append((">>", bytes(reply.reply)))
                    writer.write(bytes(reply.reply))
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writers.discard(writer)
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.port = int(server.sockets[0].getsockname()[1])
    try:
        yield served
    finally:
        server.close()
        for writer in list(writers):
            writer.close()  # the handler's read then ends
        if handlers:
            await asyncio.wait(list(handlers), timeout=2.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2.0)
