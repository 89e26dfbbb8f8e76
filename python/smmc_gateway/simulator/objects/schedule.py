"""Single action schedule (class 22): run one script at given local times.

execution_time is an array of structure {time octet-string(4), date
octet-string(5)}. The simulator runs entries whose date and time are fully
specified (year, month, day, hour, minute); entries with wildcards are stored
and reported but not run (documented limitation). Each entry runs once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.cosem.datetime import CosemDate, CosemTime, DateTimeError
from smmc_gateway.cosem.values import (
    TypedValue,
    ValueTypeError,
    array,
    as_bytes,
    as_int,
    as_list,
    as_structure,
    enum,
    octet_string,
    structure,
)
from smmc_gateway.simulator.objects.base import CosemObject, GetResult
from smmc_gateway.simulator.objects.limiter import ScriptRef


def _instant(time_b: bytes, date_b: bytes, deviation: int) -> datetime | None:
    """The UTC instant of a fully specified local (time, date), else None."""
    if len(time_b) != 4 or len(date_b) != 5:
        raise ValueTypeError("execution_time needs time(4) and date(5) octet-strings")
    try:
        d, t = CosemDate.from_bytes(date_b), CosemTime.from_bytes(time_b)
    except DateTimeError as exc:
        raise ValueTypeError(f"execution_time {date_b.hex()} {time_b.hex()}: {exc}") from exc
    year, month, day, hour, minute = d.year, d.month, d.day, t.hour, t.minute
    if year is None or month is None or day is None or hour is None or minute is None:
        return None
    if month > 12 or day > 31:  # DST/last-day specials: not one instant
        return None
    second = t.second
    try:
        local = datetime(year, month, day, hour, minute, second or 0)
    except ValueError as exc:
        raise ValueTypeError(f"execution_time {date_b.hex()} {time_b.hex()}: {exc}") from exc
    return local.replace(tzinfo=UTC) + timedelta(minutes=deviation)


class SingleActionSchedule(CosemObject):
    class_id = 22
    writable = frozenset({2, 3, 4})

    def __init__(
        self,
        obis: str,
        script: ScriptRef,
        run_script: Callable[[ScriptRef, datetime], None],
        time_zone: Callable[[], int],
    ) -> None:
        super().__init__(obis)
        self.script = script
        self.type = 1
        self.times: list[tuple[bytes, bytes]] = []
        self.done: set[tuple[bytes, bytes]] = set()
        self.run_script = run_script
        self.time_zone = time_zone

    def pending(self) -> list[datetime]:
        """Meter-time (UTC) instants still to run."""
        out = []
        for entry in self.times:
            when = _instant(entry[0], entry[1], self.time_zone())
            if when is not None and entry not in self.done:
                out.append(when)
        return out

    def run_due(self, meter_time: datetime, now: datetime) -> None:
        for entry in self.times:
            when = _instant(entry[0], entry[1], self.time_zone())
            if when is not None and entry not in self.done and when <= meter_time:
                self.done.add(entry)
                self.run_script(self.script, now)

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 2:
            return self.script.typed()
        if attribute_id == 3:
            return enum(self.type)
        return array([structure([octet_string(t), octet_string(d)]) for t, d in self.times])

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 2:
            self.script = ScriptRef.from_typed(value)
        elif attribute_id == 3:
            kind = as_int(value, "enum")
            if not 1 <= kind <= 5:
                return "other-reason"
            self.type = kind
        else:
            times = []
            for item in as_list(value, "array"):
                time_v, date_v = as_structure(item, 2)
                entry = (as_bytes(time_v), as_bytes(date_v))
                _instant(entry[0], entry[1], self.time_zone())
                times.append(entry)
            self.times = times
            self.done = set()
        return "success"
