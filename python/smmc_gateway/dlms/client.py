"""The client session object: one association with one meter over one transport.

See :mod:`smmc_gateway.dlms.session` for the public API and an example. The
protocol is the Rust association machine's (``_core.ClientAssociation``);
:mod:`smmc_gateway.dlms.driver` drives it; this module turns the public
calls into typed requests and typed outcomes into values and exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.objects import AssociationLN, Clock
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.dlms import sn
from smmc_gateway.dlms.access import (
    CLOCK_COLUMN,
    Access,
    AttributeRef,
    ColumnRef,
    EntryAccess,
    MethodRef,
    RangeAccess,
    access_selection,
    logical_name,
    raw_value,
)
from smmc_gateway.dlms.association import SessionSettings
from smmc_gateway.dlms.driver import Driver
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    DataAccessError,
    LinkLost,
    ProtocolError,
    ServiceNotAllowed,
    SessionError,
)
from smmc_gateway.dlms.observe import SessionObserver, association_recovered
from smmc_gateway.dlms.recovery import SERVICE_NOT_ALLOWED, release_unassociated, stale_cause
from smmc_gateway.dlms.stream import Transport, WireCounters

log = structlog.get_logger("smmc_gateway.dlms")

__all__ = [
    "CLOCK_COLUMN",
    "Access",
    "AttributeRef",
    "ClientSession",
    "ColumnRef",
    "EntryAccess",
    "MethodRef",
    "RangeAccess",
    "access_selection",
]

MULTIPLE_REFERENCES = "multiple-references"


def _attribute(class_id: int, ln: str, attribute_id: int, access: Access | None) -> _core.Attribute:
    sel = access_selection(access)
    if sel is None:
        return _core.Attribute(class_id, ln, attribute_id)
    return _core.Attribute(class_id, ln, attribute_id, selector=sel[0], parameters=sel[1])


class ClientSession:
    """One DLMS/COSEM association (see :mod:`smmc_gateway.dlms.session`)."""

    referencing: str = "ln"
    """The open association's referencing, "ln" or "sn" (``SessionSettings.referencing``)."""

    def __init__(
        self,
        transport: Transport,
        settings: SessionSettings | None = None,
        *,
        meter_id: str = "",
        observer: SessionObserver | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings or SessionSettings()
        self.meter_id = meter_id
        self.observer = observer
        """Counts the meter's quirks taken and stale associations recovered (metrics)."""
        self.conformance: list[str] = []
        self.max_pdu_size: int = 0
        self.server_system_title: bytes | None = None
        self.ciphered = False
        self.associated = False
        self.referencing = "ln"
        self._driver = Driver(transport, self.settings, meter_id, observer)
        self._fresh = False  # the first request after open() may still meet a stale association
        transport.limit_received_apdu(self.settings.max_pdu_size)
        self._lock = asyncio.Lock()
        self._last_activity = 0.0
        self._keeper: asyncio.Task[None] | None = None
        self.keep_alive_error: SessionError | None = None
        """Why the background keep-alive stopped, if it failed."""

    def __repr__(self) -> str:
        return f"ClientSession({self.meter_id or self.transport.description!r})"

    @property
    def counters(self) -> WireCounters:
        return self.transport.counters

    @property
    def with_list(self) -> bool:
        """Whether the association agreed multiple-references (GET/SET/ACTION with-list)."""
        return MULTIPLE_REFERENCES in self.conformance

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

    # ------------------------------------------------------------ association
    async def open(self) -> None:
        """Link set-up and association; raises AssociationRefused, MeterTimeout,
        LinkLost, SecurityFailure, ProtocolError, TransportError."""
        budget = self.settings.association_timeout
        deadline = time.monotonic() + budget
        try:
            await self.transport.open(timeout=budget)
            try:
                self._driver, agreed = await sn.associate(
                    self._driver, self.transport, self.settings, self.meter_id, deadline, budget
                )
            except (AssociationRefused, ServiceNotAllowed) as exc:
                cause = stale_cause(exc)
                if cause is None:
                    raise
                agreed = await self._recover(cause, exc, associated=False)
        except BaseException:
            self._driver.finish()
            await self.transport.close(timeout=1.0)
            raise
        self._agreed(agreed)
        self._fresh = True
        if self.settings.keep_alive_interval:
            self._keeper = asyncio.create_task(
                self._keep_alive_loop(self.settings.keep_alive_interval)
            )

    def _agreed(self, agreed: _core.Agreement) -> None:
        self.conformance = agreed.conformance_names
        self.max_pdu_size = agreed.peer_max_pdu
        self.server_system_title = agreed.peer_system_title
        self.ciphered = agreed.ciphered
        self.referencing = self._driver.referencing
        self.associated = True
        self._last_activity = time.monotonic()

    async def _recover(self, cause: str, exc: SessionError, *, associated: bool) -> _core.Agreement:
        """The meter still holds an association (:mod:`smmc_gateway.dlms.recovery`):
        release it, disconnect, reconnect and associate once more (its own budget)."""
        association_recovered(
            self.observer, self.meter_id or self.transport.description, cause, str(exc)
        )
        self.associated = False
        wait = self.settings.response_timeout
        if associated:
            with contextlib.suppress(SessionError, _core.DlmsError):
                await self._driver.release(wait)
        else:
            await release_unassociated(self.transport, wait)
        await self.transport.close(timeout=wait)
        budget = self.settings.association_timeout
        deadline = time.monotonic() + budget
        await self.transport.open(timeout=budget)
        self._driver, agreed = await sn.associate(
            self._driver, self.transport, self.settings, self.meter_id, deadline, budget
        )
        return agreed

    async def _request(self, begin: Callable[[float], int], what: str) -> _core.Outcome:
        """One request; when it is the first after open() and the meter answers
        service-not-allowed (a stale association), recover once and ask again."""
        async with self._lock:
            deadline, budget = self._begin(what)
            fresh, self._fresh = self._fresh, False
            try:
                return await self._driver.request(self._driver.start(begin), deadline, what, budget)
            except ServiceNotAllowed as exc:
                if not fresh:
                    raise
                try:
                    self._agreed(await self._recover(SERVICE_NOT_ALLOWED, exc, associated=True))
                except BaseException:
                    self._driver.reset()
                    raise
            deadline, budget = self._begin(what)
            return await self._driver.request(self._driver.start(begin), deadline, what, budget)

    async def _keep_alive_loop(self, interval: float) -> None:
        while self.associated:
            idle = time.monotonic() - self._last_activity
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                await self.keep_alive()
            except SessionError as exc:
                self.keep_alive_error = exc
                log.warning("keep_alive_failed", meter_id=self.meter_id, error=str(exc))
                return

    async def close(self) -> None:
        """Release (RLRQ/RLRE) when associated, then disconnect; never raises
        for a meter that is already gone."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        try:
            if self.associated and self.settings.release:
                async with self._lock:
                    await self._driver.release(self.settings.response_timeout)
        except (SessionError, _core.DlmsError) as exc:
            # Release is a courtesy: a meter that answers nothing must not make close() raise.
            log.debug("release_failed", meter_id=self.meter_id, why=str(exc))
        finally:
            self.associated = False
            self._driver.finish()
            await self.transport.close()

    # ------------------------------------------------------------ requests
    def _begin(self, what: str) -> tuple[float, float]:
        if not self.associated:
            raise LinkLost(f"{what}: the session is not open")
        budget = self.settings.operation_timeout
        self._last_activity = now = time.monotonic()
        return now + budget, budget

    async def _get(self, items: list[_core.Attribute], what: str) -> tuple[_core.GetResult, ...]:
        outcome = await self._request(lambda now: self._driver.assoc.get(items, now), what)
        if not isinstance(outcome, _core.GetOutcome):
            raise ProtocolError(f"{what}: answered with {type(outcome).__name__}")
        return outcome.results

    async def get_raw(
        self, class_id: int, obis: Obis | str, attribute_id: int, *, access: Access | None = None
    ) -> bytes:
        """One attribute as raw A-XDR bytes (block transfer reassembled)."""
        ln = logical_name(obis)
        what = f"GET {class_id}/{ln}/{attribute_id}"
        (result,) = await self._get([_attribute(class_id, ln, attribute_id, access)], what)
        if result.data is None:
            raise DataAccessError(class_id, ln, attribute_id, result.error_name or "?")
        return result.data

    async def get(
        self, class_id: int, obis: Obis | str, attribute_id: int, *, access: Access | None = None
    ) -> TypedValue:
        """One attribute as a typed value."""
        return _core.decode(await self.get_raw(class_id, obis, attribute_id, access=access))

    async def get_many(
        self, refs: Sequence[AttributeRef], *, access: Sequence[Access | None] | None = None
    ) -> list[bytes | DataAccessError]:
        """Several attributes: per item raw A-XDR bytes or the DataAccessError.
        One GET with-list when the association agreed multiple-references
        (else one GET per attribute)."""
        if not refs:
            return []
        lns = [(c, logical_name(o), a) for c, o, a in refs]
        sels = list(access) if access is not None else [None] * len(refs)
        items = [_attribute(c, o, a, s) for (c, o, a), s in zip(lns, sels, strict=True)]
        if self.with_list and len(items) > 1:
            results = await self._get(items, f"GET with-list of {len(items)}")
        else:
            results = tuple(
                [
                    (await self._get([item], f"GET {c}/{o}/{a}"))[0]
                    for item, (c, o, a) in zip(items, lns, strict=True)
                ]
            )
        return [
            r.data if r.data is not None else DataAccessError(c, o, a, r.error_name or "?")
            for (c, o, a), r in zip(lns, results, strict=True)
        ]

    async def get_all(self, refs: Sequence[AttributeRef]) -> list[TypedValue]:
        """Several attributes as typed values, in one GET with-list when agreed;
        the first item the meter refused raises its DataAccessError."""
        values: list[TypedValue] = []
        for raw in await self.get_many(refs):
            if isinstance(raw, DataAccessError):
                raise raw
            values.append(_core.decode(raw))
        return values

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
        access: Access | None = None
        if start is not None or end is not None:
            if start is None or end is None:
                raise ValueError("a range read needs both start and end")
            access = RangeAccess(start=start, end=end, columns=tuple(columns))
        elif from_entry is not None:
            access = EntryAccess(from_entry=from_entry, to_entry=to_entry)
        if capture_period is None:
            period = await self.get(7, obis, 4)
            capture_period = int(period["value"])
        raw = await self.get_raw(7, obis, 2, access=access)
        try:
            return _core.decode_profile_buffer(raw, capture_period or None)
        except _core.DlmsError as exc:
            raise ProtocolError(f"profile {logical_name(obis)} buffer: {exc}") from exc

    async def _set(self, items: list[tuple[_core.Attribute, bytes]], what: str) -> tuple[str, ...]:
        outcome = await self._request(lambda now: self._driver.assoc.set(items, now), what)
        if not isinstance(outcome, _core.SetOutcome):
            raise ProtocolError(f"{what}: answered with {type(outcome).__name__}")
        return outcome.names

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
        ln = logical_name(obis)
        what = f"SET {class_id}/{ln}/{attribute_id}"
        item = (_attribute(class_id, ln, attribute_id, access), raw_value(value))
        (result,) = await self._set([item], what)
        if result != "success":
            raise DataAccessError(class_id, ln, attribute_id, result)

    async def set_many(
        self, refs: Sequence[AttributeRef], values: Sequence[TypedValue | bytes]
    ) -> list[DataAccessError | None]:
        """Several attributes: per item None (success) or the DataAccessError.
        One SET with-list when multiple-references was agreed (else one SET each)."""
        if len(refs) != len(values):
            raise ValueError(f"{len(refs)} attributes but {len(values)} values")
        if not refs:
            return []
        lns = [(c, logical_name(o), a) for c, o, a in refs]
        items = [
            (_attribute(c, o, a, None), raw_value(v))
            for (c, o, a), v in zip(lns, values, strict=True)
        ]
        if self.with_list and len(items) > 1:
            results = await self._set(items, f"SET with-list of {len(items)}")
        else:
            results = tuple(
                [
                    (await self._set([item], f"SET {c}/{o}/{a}"))[0]
                    for item, (c, o, a) in zip(items, lns, strict=True)
                ]
            )
        return [
            None if r == "success" else DataAccessError(c, o, a, r)
            for (c, o, a), r in zip(lns, results, strict=True)
        ]

    async def set_all(
        self, refs: Sequence[AttributeRef], values: Sequence[TypedValue | bytes]
    ) -> None:
        """SET several attributes, in one SET with-list when agreed; the first
        item the meter refused raises its DataAccessError."""
        for error in await self.set_many(refs, values):
            if error is not None:
                raise error

    async def _action(
        self, items: list[tuple[_core.Method, bytes | None]], what: str
    ) -> tuple[_core.ActionResult, ...]:
        outcome = await self._request(lambda now: self._driver.assoc.action(items, now), what)
        if not isinstance(outcome, _core.ActionOutcome):
            raise ProtocolError(f"{what}: answered with {type(outcome).__name__}")
        return outcome.results

    async def action(
        self,
        class_id: int,
        obis: Obis | str,
        method_id: int,
        parameters: TypedValue | bytes | None = None,
    ) -> TypedValue | None:
        """Invoke a method; returns the typed return data, if any."""
        ln = logical_name(obis)
        what = f"ACTION {class_id}/{ln}/m{method_id}"
        raw = raw_value(parameters) if parameters is not None else None
        (result,) = await self._action([(_core.Method(class_id, ln, method_id), raw)], what)
        return _action_value(result, class_id, ln, method_id)

    async def action_many(
        self, refs: Sequence[MethodRef], parameters: Sequence[TypedValue | bytes | None]
    ) -> list[TypedValue | DataAccessError | None]:
        """Several methods: per item the return data (or None) or the error.
        One ACTION with-list when multiple-references was agreed."""
        if len(refs) != len(parameters):
            raise ValueError(f"{len(refs)} methods but {len(parameters)} parameters")
        if not refs:
            return []
        lns = [(c, logical_name(o), m) for c, o, m in refs]
        items = [
            (_core.Method(c, o, m), raw_value(p) if p is not None else None)
            for (c, o, m), p in zip(lns, parameters, strict=True)
        ]
        if self.with_list and len(items) > 1:
            results = await self._action(items, f"ACTION with-list of {len(items)}")
        else:
            results = tuple(
                [
                    (await self._action([item], f"ACTION {c}/{o}/m{m}"))[0]
                    for item, (c, o, m) in zip(items, lns, strict=True)
                ]
            )
        out: list[TypedValue | DataAccessError | None] = []
        for (c, o, m), result in zip(lns, results, strict=True):
            try:
                out.append(_action_value(result, c, o, m))
            except DataAccessError as exc:
                out.append(exc)
        return out

    # ------------------------------------------------------------ helpers
    async def read_object_model(self) -> ObjectModel:
        """Association LN (0.0.40.0.0.255) attribute 2 to an ObjectModel
        (with short names: Association SN attributes 2 and 3, :mod:`sn`)."""
        if self.referencing == "sn":
            return await sn.read_object_model(self)
        return ObjectModel.from_object_list(await self.get(*AssociationLN().object_list))

    async def keep_alive(self) -> None:
        """A cheap request (the clock time) that keeps the association open."""
        await self.get_raw(*Clock().time)


def _action_value(
    result: _core.ActionResult, class_id: int, ln: str, method_id: int
) -> TypedValue | None:
    if result.result != 0:
        raise DataAccessError(class_id, ln, method_id, result.result_name, method=True)
    if result.data is not None:
        return _core.decode(result.data)
    if result.data_error is not None:
        name = result.data_error_name or "?"
        raise DataAccessError(class_id, ln, method_id, name, method=True)
    return None
