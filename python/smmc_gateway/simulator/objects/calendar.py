"""Activity calendar (class 20): season, week and day profiles (active and
passive) deciding which tariff script runs at each local time.

:meth:`ActivityCalendar.current_action` gives the (script table, selector) in
force at a local time; the meter runs that script when it changes (the tariff
scripts set the active tariff register 0.0.96.14.0.255). The passive calendar
becomes active at activate_passive_calendar_time (meter time) or by method 1.
Season starts match on month, day, hour and minute; a specified year must
also have been reached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

from smmc_gateway.cosem.datetime import UNSPECIFIED, CosemDateTime, to_utc, unpack_datetime
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    ValueTypeError,
    array,
    as_bytes,
    as_datetime_bytes,
    as_int,
    as_list,
    as_structure,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

NEVER = UNSPECIFIED
Calendar = tuple[TypedValue, TypedValue, TypedValue, TypedValue]  # name, seasons, weeks, days
_Parsed = tuple[
    list[tuple[tuple[int, int, int, int], int | None, bytes]],
    dict[bytes, list[int]],
    dict[int, list[tuple[time, Obis, int]]],
]


def _time_of(data: bytes) -> time:
    if len(data) != 4:
        raise ValueTypeError(f"start_time has {len(data)} bytes, expected 4")
    hour, minute, second = (0 if b == 0xFF else b for b in data[:3])
    return time(hour, minute, second)


def _validate(calendar: Calendar) -> None:
    """Check the shapes and the cross references (raises ValueTypeError)."""
    as_bytes(calendar[0])
    weeks: set[bytes] = set()
    for week in as_list(calendar[2], "array"):
        items = as_structure(week, 8)
        weeks.add(as_bytes(items[0]))
        for day in items[1:]:
            as_int(day, "unsigned")
    for season in as_list(calendar[1], "array"):
        _name, start, week_name = as_structure(season, 3)
        as_datetime_bytes(start)
        if as_bytes(week_name) not in weeks:
            raise ValueTypeError("season refers to an unknown week profile")
    for day in as_list(calendar[3], "array"):
        day_id, schedule = as_structure(day, 2)
        as_int(day_id, "unsigned")
        for action in as_list(schedule, "array"):
            start, script, selector = as_structure(action, 3)
            _time_of(as_bytes(start))
            Obis.from_bytes(as_bytes(script))
            as_int(selector, "long-unsigned")


def default_calendar(name: bytes, tariff_script: Obis) -> Calendar:
    """One season, one week; weekdays: T1 23-07, T2 07-18, T3 peak 18-23;
    weekends all T1."""

    def action(hour: int, selector: int) -> TypedValue:
        start = octet_string(bytes([hour, 0, 0, 0xFF]))
        return structure([start, octet_string(tariff_script.to_bytes()), long_unsigned(selector)])

    weekday = structure(
        [unsigned(1), array([action(0, 1), action(7, 2), action(18, 3), action(23, 1)])]
    )
    weekend = structure([unsigned(2), array([action(0, 1)])])
    week = structure([octet_string(b"W1")] + [unsigned(1)] * 5 + [unsigned(2)] * 2)
    season = structure(
        [
            octet_string(b"S1"),
            octet_string(CosemDateTime(None, 1, 1, None, 0, 0, 0, None, None, None).to_bytes()),
            octet_string(b"W1"),
        ]
    )
    return (octet_string(name), array([season]), array([week]), array([weekday, weekend]))


class ActivityCalendar(CosemObject):
    class_id = 20
    writable = frozenset({6, 7, 8, 9, 10})
    methods = frozenset({1})

    def __init__(self, active: Calendar, passive: Calendar, time_zone: Callable[[], int]) -> None:
        super().__init__("0.0.13.0.0.255")
        _validate(active)
        _validate(passive)
        self.active = active
        self.passive = passive
        self.activation_time = NEVER
        self.time_zone = time_zone
        self._parsed: tuple[Calendar, _Parsed] | None = None

    def activation_instant(self) -> datetime | None:
        """The meter time (UTC) of the pending passive activation, if any."""
        return to_utc(self.activation_time, default_deviation=self.time_zone())

    def activate_passive(self) -> None:
        self.active = self.passive
        self.activation_time = NEVER

    def _parse_active(self) -> _Parsed:
        if self._parsed is not None and self._parsed[0] is self.active:
            return self._parsed[1]
        seasons: list[tuple[tuple[int, int, int, int], int | None, bytes]] = []
        for season in as_list(self.active[1], "array"):
            _n, start_v, week_v = as_structure(season, 3)
            start = unpack_datetime(as_datetime_bytes(start_v))
            key = (start.month or 1, start.day or 1, start.hour or 0, start.minute or 0)
            seasons.append((key, start.year, as_bytes(week_v)))
        weeks: dict[bytes, list[int]] = {}
        for week in as_list(self.active[2], "array"):
            items = as_structure(week, 8)
            weeks[as_bytes(items[0])] = [as_int(d, "unsigned") for d in items[1:]]
        days: dict[int, list[tuple[time, Obis, int]]] = {}
        for day in as_list(self.active[3], "array"):
            id_v, schedule = as_structure(day, 2)
            entries = []
            for action in as_list(schedule, "array"):
                start_v, script_v, sel_v = as_structure(action, 3)
                entries.append(
                    (
                        _time_of(as_bytes(start_v)),
                        Obis.from_bytes(as_bytes(script_v)),
                        as_int(sel_v, "long-unsigned"),
                    )
                )
            days[as_int(id_v, "unsigned")] = sorted(entries, key=lambda e: e[0])
        parsed = (seasons, weeks, days)
        self._parsed = (self.active, parsed)
        return parsed

    def current_action(
        self, local: datetime, special_day_id: int | None = None
    ) -> tuple[Obis, int] | None:
        """The (script, selector) in force at a naive local time; a special
        day's day_id (from the special days table) replaces the week's."""
        seasons, weeks, days = self._parse_active()
        now_key = (local.month, local.day, local.hour, local.minute)
        usable = [s for s in seasons if s[1] is None or s[1] <= local.year]
        if not usable:
            return None
        started = [s for s in usable if s[0] <= now_key]
        chosen = max(started or usable, key=lambda s: s[0])
        week = weeks.get(chosen[2])
        if week is None:
            return None
        day_id = week[local.isoweekday() - 1] if special_day_id is None else special_day_id
        schedule = days.get(day_id, [])
        if not schedule:
            return None
        begun = [e for e in schedule if e[0] <= local.time()]
        pick = begun[-1] if begun else schedule[-1]
        return (pick[1], pick[2])

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 10:
            return octet_string(self.activation_time)
        calendar = self.active if attribute_id <= 5 else self.passive
        return calendar[(attribute_id - 2) % 4]

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 10:
            self.activation_time = as_datetime_bytes(value)
            return "success"
        parts = list(self.passive)
        parts[attribute_id - 6] = value
        candidate: Calendar = (parts[0], parts[1], parts[2], parts[3])
        # cross references may be incomplete while a client writes the parts
        # one by one: check the shape of the written part only
        _validate_part(attribute_id - 6, value)
        self.passive = candidate
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        try:
            _validate(self.passive)
        except ValueTypeError:
            return ("other-reason", None)
        self.activate_passive()
        return ("success", None)


def _validate_part(index: int, value: TypedValue) -> None:
    probe: list[TypedValue] = [octet_string(b""), array([]), array([]), array([])]
    probe[index] = value
    if index == 1:  # seasons refer to weeks: only check shapes here
        for season in as_list(value, "array"):
            _name, start, week = as_structure(season, 3)
            as_datetime_bytes(start)
            as_bytes(week)
        return
    _validate((probe[0], probe[1], probe[2], probe[3]))
