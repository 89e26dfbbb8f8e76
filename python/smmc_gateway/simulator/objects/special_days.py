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
        year = int.from_bytes(self.pattern[:2], "big")
        month, mday = self.pattern[2], self.pattern[3]
        return (
            (year == 0xFFFF or year == day.year)
            and (month == 0xFF or month == day.month)
            and (mday == 0xFF or mday == day.day)
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
        if not (data[2] == 0xFF or 1 <= data[2] <= 12) or not (
            data[3] == 0xFF or 1 <= data[3] <= 31
        ):
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
