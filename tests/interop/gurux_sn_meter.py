"""A short-name (SN) meter made of the Gurux DLMS server (third party).

:class:`GuruxSnMeter` is Gurux's ``GXDLMSServer`` with short-name referencing
(``useLogicalNameReferencing=False``): Association SN at 0xFA00, a clock at
0x2BC0, an energy register at 0x3000, a device id at 0x3100 and a long Data
value at 0x3200 (its read does not fit a small PDU: Gurux cuts it short).
Serve it with :func:`tests.interop.gurux_meter.serving`. GPL code, run as a
test peer only.

Shims for Gurux 1.0.x's own SN server bugs (tests only):

* ``GXDLMSAssociationShortName.getValue`` marks every read
  read-write-denied (a misplaced line): attributes 1..4 are reset to success
  after it;
* the SN read handler calls ``server.transaction()`` where everything else
  reads ``server.transaction``: the attribute is a callable wrapper.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gurux_dlms import GXDateTime, GXDLMSServer
from gurux_dlms.enums import (
    AccessMode,
    Conformance,
    DataType,
    InterfaceType,
    MethodAccessMode,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.objects import (
    GXDLMSAssociationShortName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSRegister,
)

CLOCK_TIME = datetime(2024, 3, 1, tzinfo=UTC)
ENERGY = 123_456
SERIAL = b"GRX-SN-0001"
LONG_VALUE = bytes(range(256)) + bytes(range(44))
SHORT_NAMES = {
    (8, "0.0.1.0.0.255"): 0x2BC0,
    (3, "1.0.1.8.0.255"): 0x3000,
    (1, "0.0.96.1.0.255"): 0x3100,
    (1, "0.0.96.1.1.255"): 0x3200,
}


class _AssociationSN(GXDLMSAssociationShortName):  # type: ignore[misc]
    def getValue(self, settings: Any, e: Any) -> Any:
        value = super().getValue(settings, e)
        if e.index in (1, 2, 3, 4):
            e.error = 0
        return value


class _Transaction:
    """``server.transaction`` that also answers ``server.transaction()``."""

    def __init__(self, tx: Any) -> None:
        object.__setattr__(self, "_tx", tx)

    def __call__(self) -> Any:
        return self._tx

    def __bool__(self) -> bool:
        return self._tx is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class GuruxSnMeter(GXDLMSServer):  # type: ignore[misc]
    """Gurux's server with short names, no authentication (public client)."""

    def __init__(self) -> None:
        super().__init__(False, InterfaceType.WRAPPER)
        self.settings.maxServerPDUSize = 1024
        self.events: list[str] = []
        self.setConformance(
            Conformance.READ
            | Conformance.WRITE
            | Conformance.MULTIPLE_REFERENCES
            | Conformance.PARAMETERIZED_ACCESS
            | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        )
        association = _AssociationSN()
        clock = GXDLMSClock("0.0.1.0.0.255")
        clock.time = GXDateTime(CLOCK_TIME)
        register = GXDLMSRegister("1.0.1.8.0.255")
        register.value = ENERGY
        register.setDataType(2, DataType.UINT32)
        register.scaler = 1.0
        register.unit = Unit.ACTIVE_ENERGY
        device = GXDLMSData("0.0.96.1.0.255")
        device.value = bytearray(SERIAL)
        device.setDataType(2, DataType.OCTET_STRING)
        long_value = GXDLMSData("0.0.96.1.1.255")
        long_value.value = bytearray(LONG_VALUE)
        long_value.setDataType(2, DataType.OCTET_STRING)
        for obj in (clock, register, device, long_value):
            obj.shortName = SHORT_NAMES[(int(obj.objectType), obj.logicalName)]
        for obj in (association, clock, register, device, long_value):
            self.items.append(obj)
            association.objectList.append(obj)
        self.initialize()

    @property
    def transaction(self) -> Any:
        return _Transaction(self.__dict__.get("_transaction"))

    @transaction.setter
    def transaction(self, value: Any) -> None:
        self.__dict__["_transaction"] = value() if isinstance(value, _Transaction) else value

    def getTransaction(self) -> Any:
        return self.__dict__.get("_transaction")

    def setTransaction(self, value: Any) -> None:
        self.transaction = value

    # --------------------------------------------------------------- Gurux hooks
    def isTarget(self, serverAddress: int, clientAddress: int) -> bool:
        return True

    def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:
        return SourceDiagnostic.NONE

    def onFindObject(self, *args: Any) -> None:
        return None

    def onGetAttributeAccess(self, arg: Any) -> Any:
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg: Any) -> Any:
        return MethodAccessMode.ACCESS

    def onConnected(self, connectionInfo: Any) -> None:
        self.events.append("connected")

    def notifyConnected(self, connectionInfo: Any) -> None:
        self.onConnected(connectionInfo)

    def onInvalidConnection(self, connectionInfo: Any) -> None:
        self.events.append("invalid connection")

    def onDisconnected(self, connectionInfo: Any) -> None:
        self.events.append("disconnected")

    def notifyRead(self) -> None:
        pass

    def onPreRead(self, *args: Any) -> None:
        pass

    def onPostRead(self, *args: Any) -> None:
        pass

    def onPreWrite(self, *args: Any) -> None:
        pass

    def onPostWrite(self, *args: Any) -> None:
        pass

    def onPreAction(self, *args: Any) -> None:
        pass

    def onPostAction(self, *args: Any) -> None:
        pass

    def onPreGet(self, *args: Any) -> None:
        pass

    def onPostGet(self, *args: Any) -> None:
        pass
