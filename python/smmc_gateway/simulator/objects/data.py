"""Data (class 1) and Register (class 3): a stored or computed value, and for a
register its scaler_unit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import TypedValue, enum, integer, same_type, structure
from smmc_gateway.simulator.objects.base import CosemObject, GetResult

ValueSource = Callable[[datetime], TypedValue]


class Data(CosemObject):
    """A value: stored (optionally writable with the same type) or computed."""

    class_id = 1

    def __init__(
        self,
        obis: Obis | str,
        value: TypedValue | None = None,
        *,
        source: ValueSource | None = None,
        writable: bool = False,
    ) -> None:
        super().__init__(obis)
        if (value is None) == (source is None):
            raise ValueError(f"Data {obis}: give exactly one of value or source")
        self.value = value
        self.source = source
        if writable:
            self.writable = frozenset({2})

    def current(self, now: datetime) -> TypedValue:
        if self.source is not None:
            return self.source(now)
        assert self.value is not None
        return self.value

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        return self.current(now)

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if self.value is None or not same_type(self.value, value):
            return "type-unmatched"
        self.value = value
        return "success"


class Register(CosemObject):
    """A register whose value comes from the meter (energy, power, voltage)."""

    class_id = 3

    def __init__(self, obis: Obis | str, source: ValueSource, scaler: int, unit: int) -> None:
        super().__init__(obis)
        self.source = source
        self.scaler = scaler
        self.unit = unit

    def scaler_unit(self) -> TypedValue:
        return structure([integer(self.scaler), enum(self.unit)])

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 2:
            return self.source(now)
        return self.scaler_unit()
