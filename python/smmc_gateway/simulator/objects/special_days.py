"""Special days table (class 11): dates (holidays) whose day profile replaces
the week profile's in the activity calendar.

Entry: structure {index long-unsigned, specialday_date octet-string(5) (year
u16 BE or 0xFFFF, month or 0xFF, day of month or 0xFF, day of week), day_id
unsigned}. insert (method 1) adds or replaces the entry with the same index;
delete (method 2) removes it by index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from smmc_gateway.cosem.datetime import CosemDate, DateTimeError
from smmc_gateway.cosem.values import (
    TypedValue,
    ValueTypeError,
    array,
    as_bytes,
    as_int,
    as_structure,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult


@dataclass(frozen=True)
class SpecialDay:
    index: int
    pattern: bytes  # specialday_date, 5 bytes
    day_id: int

    def matches(self, day: date) -> bool:
        d = CosemDate.from_bytes(self.pattern)
        return (
            (d.year is None or d.year == day.year)
            and (d.month is None or d.month == day.month)
            and (d.day is None or d.day == day.day)
        )

    def typed(self) -> TypedValue:
        return structure(
            [long_unsigned(self.index), octet_string(self.pattern), unsigned(self.day_id)]
        )

    @classmethod
    def from_typed(cls, value: TypedValue) -> SpecialDay:
        index, date_v, day_id = as_structure(value, 3)
        data = as_bytes(date_v)
        if len(data) != 5:
            raise ValueTypeError(f"specialday_date has {len(data)} bytes, expected 5")
        try:
            fields = CosemDate.from_bytes(data)
        except DateTimeError as exc:
            raise ValueTypeError(f"specialday_date {data.hex()} is not a date: {exc}") from exc
        if (fields.month or 1) > 12 or (fields.day or 1) > 31:
            raise ValueTypeError(f"specialday_date {data.hex()} is not a date")
        return cls(as_int(index, "long-unsigned"), data, as_int(day_id, "unsigned"))


class SpecialDaysTable(CosemObject):
    class_id = 11
    methods = frozenset({1, 2})

    def __init__(self) -> None:
        super().__init__("0.0.11.0.0.255")
        self.entries: dict[int, SpecialDay] = {}

    def day_id_for(self, day: date) -> int | None:
        for index in sorted(self.entries):
            if self.entries[index].matches(day):
                return self.entries[index].day_id
        return None

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        return array([self.entries[i].typed() for i in sorted(self.entries)])

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if parameters is None:
            return ("type-unmatched", None)
        if method_id == 1:
            entry = SpecialDay.from_typed(parameters)
            self.entries[entry.index] = entry
            return ("success", None)
        index = as_int(parameters, "long-unsigned")
        if self.entries.pop(index, None) is None:
            return ("other-reason", None)
        return ("success", None)
