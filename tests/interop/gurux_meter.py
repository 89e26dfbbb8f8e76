"""A meter made of the Gurux DLMS server (third party), served over asyncio TCP.

Gurux's ``GXDLMSServer`` is sans-IO: it takes received bytes and gives the
reply frame. :class:`GuruxMeter` holds a small, fixed IDIS-like object model
(association LN, clock, a device id, four energy registers with scaler/unit, a
15-minute load profile, a writable Data object, a disconnect control) and
:func:`serving` runs it on a loopback port (HDLC or wrapper) so that our own
client session can be pointed at an implementation it was not written against.

One security level per meter (``"none"``, ``"lls"`` or ``"hls-gmac"``); the
association accepts only that level. GPL code, run as a test peer only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gurux_dlms import GXCiphering, GXDateTime, GXDLMSServer, GXServerReply, ValueEventArgs
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    MethodAccessMode,
    Security,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
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


if not hasattr(ValueEventArgs, "isSkipMaxPduSize"):
    # Gurux 1.0.x's object_list encoder calls this accessor, which the class lacks.
    ValueEventArgs.isSkipMaxPduSize = lambda self: bool(self.skipMaxPduSize)


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


def profile_row(i: int) -> list[Any]:
    """Row ``i`` of the load profile: clock, status, +A energy."""
    return [GXDateTime(START + timedelta(minutes=15 * i)), i % 4, 100_000 + 250 * i]


class GuruxMeter(GXDLMSServer):  # type: ignore[misc]
    """The Gurux server with our object model and one security level."""

    def __init__(
        self,
        *,
        hdlc: bool,
        auth: str = "none",
        keys: dict[str, bytes] | None = None,
        max_pdu: int = 1024,
    ) -> None:
        super().__init__(True, InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER)
        self.auth = auth
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
        association = GXDLMSAssociationLogicalName()
        association.authenticationMechanismName.mechanismId = {
            "none": Authentication.NONE,
            "lls": Authentication.LOW,
            "hls-gmac": Authentication.HIGH_GMAC,
        }[auth]
        association.secret = bytearray(PASSWORD)
        self.clock = GXDLMSClock("0.0.1.0.0.255")
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
        self._all_rows = [profile_row(i) for i in range(ROWS)]
        self.profile.buffer = self._all_rows
        self.selections: list[tuple[int, int]] = []
        self.profile.entriesInUse = ROWS
        self.disconnect = GXDLMSDisconnectControl("0.0.96.3.10.255")
        self.disconnect.outputState = True
        self.disconnect.controlState = 1
        self.disconnect.controlMode = 1
        for obj in (
            association,
            self.clock,
            device,
            self.alarm_filter,
            *self.registers.values(),
            status,
            self.profile,
            self.disconnect,
        ):
            self.items.append(obj)
            # (initialize() would append the whole collection as one item: fill it here.)
            association.objectList.append(obj)
        self.initialize()

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
        if arg.target is self.profile and arg.index == 2 and arg.selector in (1, 2):
            self._select(arg)
        return AccessMode.READ_WRITE

    def _select(self, e: Any) -> None:
        """Selective access on the load profile, done here (Blue Book IC 7:
        by range on the first column, inclusive; by entry from..to, 1-based,
        to 0 = the last). Gurux 1.0.x's own selection fails (ValueEventArgs
        has no getRowEndIndex; its range compares a datetime with 0), so we
        hand Gurux the selected rows and let it encode them and the blocks."""
        rows = self._all_rows
        if e.selector == 1:
            start = to_utc(bytes(e.parameters[1]))
            end = to_utc(bytes(e.parameters[2]))
            assert start is not None and end is not None
            chosen = [r for r in rows if start <= r[0].value <= end]
        else:
            first, last = int(e.parameters[0]), int(e.parameters[1])
            chosen = rows[max(first, 1) - 1 : (last or len(rows))]
        self.selections.append((e.selector, len(chosen)))
        self.profile.buffer = chosen
        e.selector, e.parameters = 0, None

    def onPostRead(self, *args: Any) -> None:
        self.profile.buffer = self._all_rows

    def onGetMethodAccess(self, arg: Any) -> Any:
        return MethodAccessMode.ACCESS


@dataclass
class ServedMeter:
    meter: GuruxMeter
    port: int
    wire: list[tuple[str, bytes]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serving(meter: GuruxMeter) -> AsyncIterator[ServedMeter]:
    """Serve ``meter`` on a free loopback port (one connection at a time)."""
    served = ServedMeter(meter, 0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.port = int(server.sockets[0].getsockname()[1])
    try:
        yield served
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
