"""Profile generic (class 7, version 1): a buffer of captured rows, with
selective access by range (selector 1) and by entry (selector 2).

Rows are kept oldest first (sort_method 1, FIFO); when profile_entries is
reached the oldest row is dropped. Entries are numbered from 1 (the oldest).
Selective-access parameters that do not fit the profile (a restricting object
or selected column that is not a capture object, from_entry 0, to < from)
give "object-unavailable"; a wrong shape gives "type-unmatched".
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from smmc_gateway.cosem.datetime import to_utc
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    ValueTypeError,
    array,
    as_bytes,
    as_int,
    as_list,
    as_structure,
    double_long_unsigned,
    enum,
    integer,
    long_unsigned,
    octet_string,
    structure,
    type_of,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult


@dataclass(frozen=True)
class CaptureObject:
    """A capture_object_definition."""

    class_id: int
    obis: Obis
    attribute: int
    data_index: int = 0

    def typed(self) -> TypedValue:
        return structure(
            [
                long_unsigned(self.class_id),
                octet_string(self.obis.to_bytes()),
                integer(self.attribute),
                long_unsigned(self.data_index),
            ]
        )

    @classmethod
    def from_typed(cls, value: TypedValue) -> CaptureObject:
        cid, ln, attr, index = as_structure(value, 4)
        return cls(
            as_int(cid, "long-unsigned"),
            Obis.from_bytes(as_bytes(ln)),
            as_int(attr, "integer"),
            as_int(index, "long-unsigned"),
        )


CaptureSource = Callable[[CaptureObject, datetime, datetime], TypedValue]
"""Reads one capture object: (definition, real now, meter time of capture)."""


class SelectiveAccessError(Exception):
    """Parameters that do not select anything meaningful in this profile."""


class ProfileGeneric(CosemObject):
    class_id = 7
    writable = frozenset({4, 8})
    methods = frozenset({1, 2})
    selectors: ClassVar[dict[int, tuple[int, ...]]] = {2: (1, 2)}

    def __init__(
        self,
        obis: Obis | str,
        capture_objects: list[CaptureObject],
        source: CaptureSource,
        *,
        capture_period: int,
        profile_entries: int,
        time_zone: Callable[[], int] = lambda: 0,
        meter_time: Callable[[datetime], datetime] = lambda now: now,
    ) -> None:
        super().__init__(obis)
        self.capture_objects = list(capture_objects)
        self.source = source
        self.capture_period = capture_period
        self.profile_entries = profile_entries
        self.rows: list[list[TypedValue]] = []
        self.time_zone = time_zone
        self.meter_time = meter_time
        # The UTC instant of a stored date-time stamp (and the default deviation) for
        # range reads: the stamps do not change, the conversion is the cost of a read.
        self._instants: dict[tuple[str, int], Any] = {}
        # The instant of each row's clock column, while the rows are in time order:
        # a range by the clock is then two bisections, not a scan.
        self._clock = next(
            (i for i, c in enumerate(self.capture_objects) if c.class_id == 8 and c.attribute == 2),
            None,
        )
        self._stamps: list[Any] = []
        self._ordered = True

    # ---------------------------------------------------------------- capture
    def capture(self, now: datetime, meter_time: datetime) -> None:
        self._append([self.source(c, now, meter_time) for c in self.capture_objects])

    def append_row(self, row: list[TypedValue]) -> None:
        """A row assembled by the meter (event logs with their own time stamp)."""
        if len(row) != len(self.capture_objects):
            raise ValueError(f"profile {self.obis}: row has {len(row)} columns")
        self._append(row)

    def _append(self, row: list[TypedValue]) -> None:
        self._sync_stamps()
        stamp = None
        if self._clock is not None:
            try:
                stamp = self._key(row[self._clock], self.time_zone())
            except SelectiveAccessError:
                stamp = None
        if stamp is None or (
            self._stamps and self._stamps[-1] is not None and stamp < self._stamps[-1]
        ):
            self._ordered = False
        self.rows.append(row)
        self._stamps.append(stamp)
        self._trim(self.profile_entries)

    def _trim(self, entries: int) -> None:
        overflow = len(self.rows) - entries
        if overflow > 0:
            del self.rows[:overflow]
            del self._stamps[:overflow]

    def _sync_stamps(self) -> None:
        """Start over when the rows were changed other than through this class."""
        if len(self._stamps) != len(self.rows) or not self.rows:
            self._stamps = [None] * len(self.rows)
            self._ordered = not self.rows

    # ---------------------------------------------------------------- services
    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 2:
            try:
                return self._buffer(selector, parameters)
            except ValueTypeError:
                return "type-unmatched"
            except SelectiveAccessError:
                return "object-unavailable"
        values: dict[int, TypedValue] = {
            3: array([c.typed() for c in self.capture_objects]),
            4: double_long_unsigned(self.capture_period),
            5: enum(1),
            6: CaptureObject(0, Obis(0, 0, 0, 0, 0, 0), 0, 0).typed(),
            7: double_long_unsigned(len(self.rows)),
            8: double_long_unsigned(self.profile_entries),
        }
        return values[attribute_id]

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        number = as_int(value, "double-long-unsigned")
        if attribute_id == 4:
            self.capture_period = number
        else:
            if number < 1:
                return "other-reason"
            self.profile_entries = number
            self._sync_stamps()
            self._trim(number)
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if method_id == 1:
            self.rows.clear()
            self._sync_stamps()
        else:
            self.capture(now, self.meter_time(now))
        return ("success", None)

    # ---------------------------------------------------------------- selective access
    def _column(self, definition: CaptureObject) -> int:
        for index, c in enumerate(self.capture_objects):
            if (c.class_id, c.obis, c.attribute) == (
                definition.class_id,
                definition.obis,
                definition.attribute,
            ) and (definition.data_index == 0 or c.data_index == definition.data_index):
                return index
        raise SelectiveAccessError(f"{definition} is not a capture object")

    def _buffer(self, selector: int | None, parameters: Any) -> TypedValue:
        if selector is None:
            return array([structure(row) for row in self.rows])
        if selector == 1:
            return self._by_range(parameters)
        return self._by_entry(parameters)

    def _rows_as(self, rows: list[list[TypedValue]], columns: list[int]) -> TypedValue:
        return array([structure([row[i] for i in columns]) for row in rows])

    def _key(self, value: TypedValue, deviation: int) -> Any:
        kind = type_of(value)
        if kind in ("octet-string", "date-time") and len(value["value"]) == 24:
            cached = self._instants.get((value["value"], deviation))
            if cached is not None:
                return cached
            instant = to_utc(bytes.fromhex(value["value"]), default_deviation=deviation)
            if instant is None:
                raise SelectiveAccessError("range bound is not a complete date-time")
            if len(self._instants) >= 4 * self.profile_entries + 64:
                self._instants.clear()  # bounded: rows come and go
            self._instants[(value["value"], deviation)] = instant
            return instant
        if isinstance(value["value"], int | float):
            return value["value"]
        raise SelectiveAccessError(f"cannot compare values of type {kind}")

    def _by_range(self, parameters: Any) -> TypedValue:
        restricting, from_v, to_v, selected = as_structure(parameters, 4)
        column = self._column(CaptureObject.from_typed(restricting))
        deviation = self.time_zone()  # for stamps that do not carry theirs
        low, high = self._key(from_v, deviation), self._key(to_v, deviation)
        columns = [self._column(CaptureObject.from_typed(s)) for s in as_list(selected, "array")]
        if not columns:
            columns = list(range(len(self.capture_objects)))
        try:
            if (
                column == self._clock
                and self._ordered
                and len(self._stamps) == len(self.rows)
                and isinstance(low, datetime)
                and isinstance(high, datetime)
            ):
                first = bisect.bisect_left(self._stamps, low)
                rows = self.rows[first : bisect.bisect_right(self._stamps, high, lo=first)]
            else:
                rows = [r for r in self.rows if low <= self._key(r[column], deviation) <= high]
        except TypeError as exc:
            raise SelectiveAccessError("range bounds do not match the column type") from exc
        return self._rows_as(rows, columns)

    def _by_entry(self, parameters: Any) -> TypedValue:
        from_e, to_e, from_c, to_c = as_structure(parameters, 4)
        first = as_int(from_e, "double-long-unsigned")
        last = as_int(to_e, "double-long-unsigned")
        first_col = as_int(from_c, "long-unsigned")
        last_col = as_int(to_c, "long-unsigned")
        n_cols = len(self.capture_objects)
        if first < 1 or (last != 0 and last < first):
            raise SelectiveAccessError(f"entries {first}..{last} are not a range")
        if first_col < 1 or first_col > n_cols or (last_col != 0 and last_col < first_col):
            raise SelectiveAccessError(f"columns {first_col}..{last_col} are not a range")
        last = len(self.rows) if last == 0 else min(last, len(self.rows))
        last_col = n_cols if last_col == 0 else min(last_col, n_cols)
        columns = list(range(first_col - 1, last_col))
        return self._rows_as(self.rows[first - 1 : last], columns)
