"""The client session object: one association with one meter over one transport.

See :mod:`smmc_gateway.dlms.session` for the public API and an example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from smmc_gateway import _core
from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.dlms.association import SessionSettings
from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.dlms.stream import Transport, WireCounters

TypedValue = dict[str, Any]
AttributeRef = tuple[int, "Obis | str", int]
"""(class_id, logical name, attribute_id)"""
MethodRef = tuple[int, "Obis | str", int]
"""(class_id, logical name, method_id)"""
ColumnRef = tuple[int, "Obis | str", int, int]
"""A capture object: (class_id, logical name, attribute_index, data_index)."""

CLOCK_COLUMN: ColumnRef = (8, "0.0.1.0.0.255", 2, 0)


@dataclass(frozen=True)
class RangeAccess:
    """Selective access by range (selector 1): rows whose ``restricting``
    column (default: the clock capture object) lies in ``start..end``;
    ``columns`` empty = all captured columns."""

    start: datetime
    end: datetime
    restricting: ColumnRef = CLOCK_COLUMN
    columns: Sequence[ColumnRef] = ()


@dataclass(frozen=True)
class EntryAccess:
    """Selective access by entry (selector 2): entries ``from_entry..to_entry``
    (1-based; ``to_entry`` 0 = the last) and columns ``from_column..to_column``
    (``to_column`` 0 = the last)."""

    from_entry: int = 1
    to_entry: int = 0
    from_column: int = 1
    to_column: int = 0


Access = RangeAccess | EntryAccess


class ClientSession:
    """One DLMS/COSEM association (see :mod:`smmc_gateway.dlms.session`)."""

    def __init__(
        self, transport: Transport, settings: SessionSettings | None = None, *, meter_id: str = ""
    ) -> None:
        self.transport = transport
        self.settings = settings or SessionSettings()
        self.meter_id = meter_id
        self.conformance: list[str] = []
        self.max_pdu_size: int = 0
        self.server_system_title: bytes | None = None
        self.ciphered = False

    @property
    def counters(self) -> WireCounters:
        return self.transport.counters

    async def __aenter__(self) -> ClientSession:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Link set-up and association; raises AssociationRefused, MeterTimeout,
        LinkLost, SecurityFailure, ProtocolError, TransportError."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release (RLRQ/RLRE) when associated, then disconnect; never raises
        for a meter that is already gone."""
        raise NotImplementedError

    async def get_raw(
        self, class_id: int, obis: Obis | str, attribute_id: int, *, access: Access | None = None
    ) -> bytes:
        """One attribute as raw A-XDR bytes (block transfer reassembled)."""
        raise NotImplementedError

    async def get(
        self, class_id: int, obis: Obis | str, attribute_id: int, *, access: Access | None = None
    ) -> TypedValue:
        """One attribute as a typed value."""
        return _core.decode(await self.get_raw(class_id, obis, attribute_id, access=access))

    async def get_many(
        self, refs: Sequence[AttributeRef], *, access: Sequence[Access | None] | None = None
    ) -> list[bytes | DataAccessError]:
        """GET with-list: per item raw A-XDR bytes or the DataAccessError."""
        raise NotImplementedError

    async def read_profile(
        self,
        obis: Obis | str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        from_entry: int | None = None,
        to_entry: int = 0,
        columns: Sequence[ColumnRef] = (),
        capture_period: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """Profile-generic buffer rows (``_core.decode_profile_buffer``);
        by range when ``start``/``end`` are given, by entry with
        ``from_entry``, else the whole buffer. ``capture_period`` (seconds) is
        read from attribute 4 when None."""
        raise NotImplementedError

    async def set(
        self,
        class_id: int,
        obis: Obis | str,
        attribute_id: int,
        value: TypedValue | bytes,
        *,
        access: Access | None = None,
    ) -> None:
        """SET one attribute (in datablocks when larger than the PDU size)."""
        raise NotImplementedError

    async def set_many(
        self, refs: Sequence[AttributeRef], values: Sequence[TypedValue | bytes]
    ) -> list[DataAccessError | None]:
        """SET with-list: per item None (success) or the DataAccessError."""
        raise NotImplementedError

    async def action(
        self,
        class_id: int,
        obis: Obis | str,
        method_id: int,
        parameters: TypedValue | bytes | None = None,
    ) -> TypedValue | None:
        """Invoke a method; returns the typed return data, if any."""
        raise NotImplementedError

    async def action_many(
        self, refs: Sequence[MethodRef], parameters: Sequence[TypedValue | bytes]
    ) -> list[TypedValue | DataAccessError | None]:
        """ACTION with-list: per item the return data (or None) or the error."""
        raise NotImplementedError

    async def read_object_model(self) -> ObjectModel:
        """Association LN (0.0.40.0.0.255) attribute 2 to an ObjectModel."""
        return ObjectModel.from_object_list(await self.get(15, "0.0.40.0.0.255", 2))

    async def keep_alive(self) -> None:
        """A cheap request (the clock time) that keeps the association open."""
        await self.get_raw(8, "0.0.1.0.0.255", 2)
