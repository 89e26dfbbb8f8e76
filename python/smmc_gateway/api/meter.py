"""The :class:`Meter` of the public API (see :mod:`smmc_gateway.api`); built by
:func:`smmc_gateway.api.connecting.connect`."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from smmc_gateway import _core
from smmc_gateway.api.values import from_python, is_typed, to_python
from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.objects import (
    Clock,
    CosemAttribute,
    CosemMethod,
    ProfileGeneric,
    ReferenceError_,
)
from smmc_gateway.cosem.values import TypedValue, ValueTypeError
from smmc_gateway.dlms.client import ClientSession
from smmc_gateway.dlms.errors import DataAccessError, ProtocolError

if TYPE_CHECKING:
    from smmc_gateway.dlms.ic_store import InvocationCounterStore

AttributeLike = CosemAttribute | str | tuple[int, str, int]
MethodLike = CosemMethod | str | tuple[int, str, int]
ColumnLike = CosemAttribute | str | tuple[int, str, int] | tuple[int, str, int, int]

_SCALER_ATTRIBUTE: dict[int, tuple[frozenset[int], int]] = {
    3: (frozenset({2}), 3),
    4: (frozenset({2}), 3),
    5: (frozenset({2, 3}), 4),
}
"""Classes whose values have a scaler: (value attributes, the scaler_unit attribute)."""


def attribute_ref(ref: AttributeLike) -> CosemAttribute:
    """A checked attribute reference from any accepted form."""
    if isinstance(ref, CosemAttribute):
        return ref
    if isinstance(ref, str):
        return CosemAttribute.parse(ref)
    if isinstance(ref, CosemMethod):
        raise ReferenceError_(f"{ref} is a method; use action()")
    if isinstance(ref, tuple) and len(ref) == 3:
        return CosemAttribute.of(*ref)
    raise ReferenceError_(f"attribute reference {ref!r}: expected 'CLASS/OBIS/ATTR'")


def method_ref(ref: MethodLike) -> CosemMethod:
    if isinstance(ref, CosemMethod):
        return ref
    if isinstance(ref, str):
        return CosemMethod.parse(ref)
    if isinstance(ref, CosemAttribute):
        raise ReferenceError_(f"{ref} is an attribute; use get() or set()")
    if isinstance(ref, tuple) and len(ref) == 3:
        return CosemMethod.of(*ref)
    raise ReferenceError_(f"method reference {ref!r}: expected 'CLASS/OBIS/METHOD'")


def _column(ref: ColumnLike) -> tuple[int, str, int, int]:
    if isinstance(ref, tuple) and len(ref) == 4:
        c, o, a, d = ref
        attr = CosemAttribute.of(c, o, a)
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 0xFFFF:
            raise ReferenceError_(f"column {ref!r}: data index {d!r} is not 0..65535")
        return (*attr, d)
    return (*attribute_ref(ref), 0)


class Meter:
    """One association with one meter; an async context manager (``async with``), or
    ``await meter.open()`` / ``await meter.close()``. Built by :func:`connect`."""

    def __init__(
        self, session: ClientSession, *, url: str, owned_store: InvocationCounterStore | None = None
    ) -> None:
        self.session = session
        """The underlying :class:`~smmc_gateway.dlms.session.ClientSession` (every
        service, typed values, wire counters)."""
        self.url = url
        self._owned_store = owned_store

    def __repr__(self) -> str:
        return f"Meter({self.url!r})"

    async def open(self) -> Meter:
        """Link set-up and association; the session's typed errors otherwise."""
        try:
            await self.session.open()
        except BaseException:
            self._close_store()
            raise
        return self

    async def close(self) -> None:
        """Release and disconnect (never raises for a meter already gone)."""
        try:
            await self.session.close()
        finally:
            self._close_store()

    def _close_store(self) -> None:
        if self._owned_store is not None:
            self._owned_store.close()
            self._owned_store = None

    async def __aenter__(self) -> Meter:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __await__(self) -> Generator[Any, None, Meter]:
        return self.open().__await__()

    # ---------------------------------------------------------------- reads
    async def get(self, ref: AttributeLike, *, scaled: bool = False) -> Any:
        """One attribute as a plain Python value. ``scaled=True`` (the value of a
        register or extended register, the current or last average of a demand
        register): ``value * 10**scaler`` as a float,
        read with its scaler_unit in one request where the meter agreed with-list."""
        attr = attribute_ref(ref)
        if not scaled:
            return to_python(await self.session.get(*attr))
        pair = _SCALER_ATTRIBUTE.get(attr.class_id)
        if pair is None or attr.attribute_id not in pair[0]:
            raise ReferenceError_(
                f"{attr}: scaled=True applies to the value of a register (class 3, 4 "
                "attribute 2; class 5 attributes 2 and 3)"
            )
        scaler_ref = CosemAttribute(attr.class_id, attr.obis, pair[1])
        value, scaler_unit = await self.session.get_all([attr, scaler_ref])
        return scale(value, scaler_unit, str(attr))

    async def get_many(
        self, refs: Sequence[AttributeLike], *, return_errors: bool = False
    ) -> list[Any]:
        """Several attributes, in one GET with-list where the meter agreed it. The first
        refused item raises its DataAccessError, or with ``return_errors=True`` stands
        in the list in place of its value."""
        attrs = [attribute_ref(r) for r in refs]
        out: list[Any] = []
        for raw in await self.session.get_many(attrs):
            if isinstance(raw, DataAccessError):
                if not return_errors:
                    raise raw
                out.append(raw)
            else:
                out.append(to_python(_core.decode(raw)))
        return out

    async def get_typed(self, ref: AttributeLike) -> TypedValue:
        """One attribute as a typed value (``{"type": ..., "value": ...}``)."""
        return await self.session.get(*attribute_ref(ref))

    async def profile(
        self,
        obis: ProfileGeneric | Obis | str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: Sequence[ColumnLike] = (),
    ) -> list[tuple[Any, ...]]:
        """The rows of a profile generic buffer (by range when ``start`` and ``end``
        are given, else all), each a tuple of plain values; ``columns`` (capture
        objects as attribute references, optionally with a data index) restricts
        a range read to those columns."""
        if (start is None) != (end is None):
            raise ValueError("profile(): give both start and end, or neither")
        if columns and start is None:
            raise ValueError("profile(): columns apply to a range read (start and end)")
        for name, when in (("start", start), ("end", end)):
            if when is not None and when.tzinfo is None:
                raise ValueError(f"profile(): {name} must be an aware datetime (tzinfo set)")
        cols = [_column(c) for c in columns]
        ln = obis.obis if isinstance(obis, ProfileGeneric) else obis
        return await self.session.read_profile(ln, start=start, end=end, columns=cols)

    async def object_list(self) -> ObjectModel:
        """The current association's object list (Association LN attribute 2; with
        short names Association SN attributes 2 and 3)."""
        return await self.session.read_object_model()

    async def clock(self, obis: str = Clock.default_obis or "") -> datetime:
        """The meter clock as an aware datetime (ProtocolError when the meter's time
        is not a complete date-time with a deviation)."""
        attr = Clock(obis).time
        value = await self.get(attr)
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ProtocolError(f"{attr}: not a complete date-time with a deviation: {value!r}")
        return value

    # ---------------------------------------------------------------- writes
    async def set(self, ref: AttributeLike, value: Any) -> None:
        """Write one attribute. ``value``: a typed value, or a plain value encoded as
        the type the Blue Book fixes for the attribute, else as the type of its
        current value (read first)."""
        attr = attribute_ref(ref)
        await self.session.set(*attr, await self._encode(attr, value))

    async def _encode(self, attr: CosemAttribute, value: Any) -> TypedValue:
        what = str(attr)
        if is_typed(value) or attr.value_type is not None:
            return from_python(value, type_name=attr.value_type, what=what)
        try:
            return from_python(value, what=what)
        except ValueTypeError:
            pass  # a plain value without a type of its own: the meter's current type
        current = await self.session.get(*attr)
        return from_python(value, template=current, what=what)

    async def action(self, ref: MethodLike, parameter: Any = None) -> Any:
        """Invoke a method; returns its return data as a plain value (or None).
        ``parameter``: a typed value, a plain value of the type the Blue Book fixes
        for the method, or None (the Blue Book's ``integer(0)`` where the method
        takes that, else no parameter)."""
        m = method_ref(ref)
        spec = m.parameter
        what = str(m)
        typed_param: TypedValue | None
        if parameter is None:
            if spec is not None and spec[1] is None:
                raise ValueTypeError(f"{what} ({m.name}) needs a {spec[0]} parameter")
            typed_param = from_python(spec[1], type_name=spec[0]) if spec else None
        else:
            typed_param = from_python(parameter, type_name=spec[0] if spec else None, what=what)
        result = await self.session.action(*m, typed_param)
        return to_python(result) if result is not None else None


def scale(value: TypedValue, scaler_unit: TypedValue, what: str) -> float:
    """``value * 10**scaler`` of a register value and its scaler_unit structure."""
    number = value.get("value")
    items = scaler_unit.get("value")
    if (
        scaler_unit.get("type") != "structure"
        or not isinstance(items, list)
        or len(items) != 2
        or not isinstance(items[0].get("value"), int)
    ):
        raise ProtocolError(f"{what}: scaler_unit is not structure(scaler, unit): {scaler_unit}")
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ProtocolError(f"{what}: value {value.get('type')} is not a number to scale")
    scaler = int(items[0]["value"])
    return float(number) * 10.0**scaler if scaler < 0 else float(number * 10**scaler)
