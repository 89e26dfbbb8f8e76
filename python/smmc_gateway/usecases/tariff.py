"""Use case 8, tariff part: program the meter's passive Activity calendar and activate it.

The request describes a time-of-use calendar in plain JSON (see :func:`parse_calendar`)::

    {"calendarName": "TOU-2027",
     "seasons": [{"name": "S1", "start": "01-01", "week": "W1"}],      # MM-DD[THH:MM]
     "weeks": [{"name": "W1", "days": [1, 1, 1, 1, 1, 2, 2]}],           # Monday..Sunday
     "dayProfiles": [{"id": 1, "actions": [{"start": "00:00", "tariff": 1},
                                           {"start": "07:00", "tariff": 2}]}],
     "scriptTable": "0.0.10.0.100.255",                                  # optional
     "specialDays": [{"index": 1, "date": "12-25", "dayId": 2}],         # optional
     "activation": "now" | "2027-01-01T00:00:00Z"}

Each ``tariff`` is the selector of the tariff script table (the meter's script N
writes N to the active tariff register 0.0.96.14.0.255). :func:`write_calendar`
writes the passive day, week and season profiles and the name (class 20
attributes 9, 8, 7, 6), then either invokes ``activate_passive_calendar`` (method 1)
or writes ``activate_passive_calendar_time`` (attribute 10, UTC), inserts the special
days (Special days table, class 11, 0.0.11.0.0.255, method 1; ``date`` YYYY-MM-DD, or
MM-DD for every year; ``dayId`` one of the day profiles), and reads back.

Sizes are bounded before anything is built (:data:`MAX_SEASONS`, :data:`MAX_WEEKS`,
:data:`MAX_DAY_PROFILES`, :data:`MAX_ACTIONS` per day profile, :data:`MAX_SPECIAL_DAYS`);
``activation`` must be a real time from 1970 on; every problem names its JSON path.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from smmc_gateway.cosem.datetime import (
    UNSPECIFIED,
    CosemDate,
    CosemDateTime,
    DateTimeError,
    from_utc,
)
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.objects import ActivityCalendar, Data, SpecialDaysTable
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.dlms.access import AttributeRef
from smmc_gateway.jsonvalue import JsonObject

ACTIVITY_CALENDAR = "0.0.13.0.0.255"
ACTIVE_TARIFF = "0.0.96.14.0.255"
TARIFF_SCRIPTS = "0.0.10.0.100.255"
SPECIAL_DAYS = "0.0.11.0.0.255"
_SEASON = re.compile(r"^(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?\Z", re.ASCII)
_DAY = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})\Z", re.ASCII)
_HHMM = re.compile(r"^(\d{2}):(\d{2})\Z", re.ASCII)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)
_OBIS = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\Z", re.ASCII)
#: Sizes of a calendar (docs/schemas/pricing-structure-config-request.schema.json says the
#: same): generous for any real tariff, small enough that one request cannot make a SET
#: the meter must buffer in the hundreds of kilobytes, nor hundreds of special-day ACTIONs.
MAX_SEASONS = 32
MAX_WEEKS = 32
MAX_DAY_PROFILES = 32
MAX_ACTIONS = 48  # switches per day profile (every 30 minutes)
MAX_SPECIAL_DAYS = 256
EARLIEST_ACTIVATION = datetime(1970, 1, 1, tzinfo=UTC)


class CalendarSession(Protocol):
    async def get(self, class_id: int, obis: str, attribute: int) -> TypedValue: ...
    async def set(self, class_id: int, obis: str, attribute: int, value: TypedValue) -> None: ...
    async def get_all(self, refs: Sequence[AttributeRef]) -> list[TypedValue]: ...
    async def set_all(
        self, refs: Sequence[AttributeRef], values: Sequence[TypedValue | bytes]
    ) -> None: ...
    async def action(
        self, class_id: int, obis: str, method: int, parameters: TypedValue | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Calendar:
    name: TypedValue
    seasons: TypedValue
    weeks: TypedValue
    days: TypedValue
    activation: datetime | None  # None: activate now
    special_days: tuple[TypedValue, ...] = ()


@dataclass(frozen=True)
class CalendarResult:
    passive_name: str
    active_name: str
    activation_time: TypedValue
    active_tariff: int | None
    special_days: int | None = None  # entries in the table after the inserts


def _every_year(month: int, day: int, hour: int, minute: int) -> bytes:
    """A season start: this date and time every year (year, weekday, hundredths,
    deviation and clock status not specified). DateTimeError for a day no such
    month has (02-30)."""
    return CosemDateTime(None, month, day, None, hour, minute, 0, None, None, None).to_bytes()


def _os(data: bytes) -> TypedValue:
    return {"type": "octet-string", "value": data.hex()}


def _name(raw: Any, where: str, problems: list[str]) -> bytes:
    if not isinstance(raw, str) or not 1 <= len(raw.encode()) <= 32:
        problems.append(f"{where}: {_show(raw)}; must be a string of 1..32 bytes")
        return b""
    return raw.encode()


def _list(doc: JsonObject, key: str, where: str, problems: list[str], limit: int) -> list[Any]:
    v = doc.get(key)
    if not isinstance(v, list) or not v:
        problems.append(f"{where}.{key}: must be a non-empty array")
        return []
    if len(v) > limit:
        problems.append(f"{where}.{key}: {len(v)} entries; at most {limit}")
        return []
    return v


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 6, 6, 50, 50


def _show(value: Any) -> str:
    """A request's value echoed in a problem: shallow and short, whatever it is."""
    return _REPR.repr(value)


def parse_calendar(doc: Any, where: str, problems: list[str]) -> Calendar | None:
    """The calendar as typed values; every problem named by its JSON path."""
    if not isinstance(doc, dict):
        problems.append(
            f"{where}: must be an object with calendarName, seasons, weeks, dayProfiles, activation"
        )
        return None
    before = len(problems)
    name = _name(doc.get("calendarName"), f"{where}.calendarName", problems)
    script = doc.get("scriptTable", TARIFF_SCRIPTS)
    if not isinstance(script, str) or not _OBIS.match(script):
        problems.append(f"{where}.scriptTable: {_show(script)} is not an OBIS code")
        script = TARIFF_SCRIPTS
    script_ln = Obis.coerce(script).to_bytes()
    day_ids: set[int] = set()
    days: list[TypedValue] = []
    for i, d in enumerate(_list(doc, "dayProfiles", where, problems, MAX_DAY_PROFILES)):
        w = f"{where}.dayProfiles[{i}]"
        if not isinstance(d, dict):
            problems.append(f"{w}: must be an object with id and actions")
            continue
        day_id = d.get("id")
        if not isinstance(day_id, int) or isinstance(day_id, bool) or not 0 <= day_id <= 255:
            problems.append(f"{w}.id: {_show(day_id)}; must be an integer 0..255")
        elif day_id in day_ids:
            problems.append(f"{w}.id: {day_id} appears twice")
        else:
            day_ids.add(day_id)
        actions: list[TypedValue] = []
        for j, a in enumerate(_list(d, "actions", w, problems, MAX_ACTIONS)):
            aw = f"{w}.actions[{j}]"
            start = a.get("start") if isinstance(a, dict) else None
            m = _HHMM.match(start) if isinstance(start, str) else None
            if m is None or int(m[1]) > 23 or int(m[2]) > 59:
                problems.append(f"{aw}.start: {_show(start)}; must be HH:MM (00:00..23:59)")
                continue
            tariff = a.get("tariff") if isinstance(a, dict) else None
            if not isinstance(tariff, int) or isinstance(tariff, bool) or not 1 <= tariff <= 0xFFFF:
                problems.append(f"{aw}.tariff: {_show(tariff)}; must be a script selector 1..65535")
                continue
            actions.append(
                {
                    "type": "structure",
                    "value": [
                        _os(bytes([int(m[1]), int(m[2]), 0, 0xFF])),
                        _os(script_ln),
                        {"type": "long-unsigned", "value": tariff},
                    ],
                }
            )
        if isinstance(day_id, int):
            days.append(
                {
                    "type": "structure",
                    "value": [
                        {"type": "unsigned", "value": day_id},
                        {"type": "array", "value": actions},
                    ],
                }
            )
    week_names: set[str] = set()
    weeks: list[TypedValue] = []
    for i, wk in enumerate(_list(doc, "weeks", where, problems, MAX_WEEKS)):
        w = f"{where}.weeks[{i}]"
        if not isinstance(wk, dict):
            problems.append(f"{w}: must be an object with name and days")
            continue
        wname = _name(wk.get("name"), f"{w}.name", problems)
        week_names.add(str(wk.get("name")))
        refs = wk.get("days")
        if not isinstance(refs, list) or len(refs) != 7:
            problems.append(f"{w}.days: must be 7 day profile ids, Monday to Sunday")
            continue
        for k, r in enumerate(refs):
            if not isinstance(r, int) or r not in day_ids:
                problems.append(
                    f"{w}.days[{k}]: {_show(r)} is not the id of a dayProfiles "
                    f"entry (ids: {sorted(day_ids)})"
                )
        weeks.append(
            {
                "type": "structure",
                "value": [
                    _os(wname),
                    *({"type": "unsigned", "value": r if isinstance(r, int) else 0} for r in refs),
                ],
            }
        )
    seasons: list[TypedValue] = []
    for i, s in enumerate(_list(doc, "seasons", where, problems, MAX_SEASONS)):
        w = f"{where}.seasons[{i}]"
        if not isinstance(s, dict):
            problems.append(f"{w}: must be an object with name, start, week")
            continue
        sname = _name(s.get("name"), f"{w}.name", problems)
        start = s.get("start")
        m = _SEASON.match(start) if isinstance(start, str) else None
        month, day = (int(m[1]), int(m[2])) if m else (0, 0)
        hour, minute = (int(m[3]), int(m[4])) if m and m[3] else (0, 0)
        start_ok = (
            m is not None and 1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59
        )
        if not start_ok:
            problems.append(f"{w}.start: {_show(start)}; must be MM-DD or MM-DDTHH:MM (every year)")
        if not isinstance(s.get("week"), str) or s.get("week") not in week_names:
            problems.append(f"{w}.week: {_show(s.get('week'))} is not the name of a weeks entry")
        start_dt = UNSPECIFIED
        if start_ok:
            try:
                start_dt = _every_year(month, day, hour, minute)
            except DateTimeError as exc:
                problems.append(f"{w}.start: {_show(start)}; {exc}")
        seasons.append(
            {
                "type": "structure",
                "value": [_os(sname), _os(start_dt), _os(str(s.get("week")).encode())],
            }
        )
    specials: list[TypedValue] = []
    raw_sd = doc.get("specialDays", [])
    if not isinstance(raw_sd, list):
        problems.append(f"{where}.specialDays: must be an array of {{index, date, dayId}}")
        raw_sd = []
    elif len(raw_sd) > MAX_SPECIAL_DAYS:
        problems.append(f"{where}.specialDays: {len(raw_sd)} entries; at most {MAX_SPECIAL_DAYS}")
        raw_sd = []
    for i, sd in enumerate(raw_sd):
        w = f"{where}.specialDays[{i}]"
        if not isinstance(sd, dict):
            problems.append(f"{w}: must be an object with index, date, dayId")
            continue
        index = sd.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 0xFFFF:
            problems.append(f"{w}.index: {_show(index)}; must be an integer 0..65535")
        when = sd.get("date")
        m = _DAY.match(when) if isinstance(when, str) else None
        if m is None or not 1 <= int(m[2]) <= 12 or not 1 <= int(m[3]) <= 31:
            problems.append(f"{w}.date: {_show(when)}; must be YYYY-MM-DD, or MM-DD for every year")
        if not isinstance(sd.get("dayId"), int) or sd.get("dayId") not in day_ids:
            problems.append(
                f"{w}.dayId: {_show(sd.get('dayId'))} is not the id of a dayProfiles "
                f"entry (ids: {sorted(day_ids)})"
            )
        if m is not None and isinstance(index, int) and isinstance(sd.get("dayId"), int):
            try:
                sd_date = CosemDate(
                    int(m[1]) if m[1] else None, int(m[2]), int(m[3]), None
                ).to_bytes()
            except DateTimeError as exc:
                problems.append(f"{w}.date: {_show(when)}; {exc}")
                continue
            specials.append(
                {
                    "type": "structure",
                    "value": [
                        {"type": "long-unsigned", "value": index},
                        _os(sd_date),
                        {"type": "unsigned", "value": sd["dayId"]},
                    ],
                }
            )
    activation: datetime | None = None
    act = doc.get("activation")
    if act != "now":
        if not isinstance(act, str) or not _ISO.match(act):
            problems.append(
                f'{where}.activation: {_show(act)}; must be "now" or a UTC time '
                "like 2027-01-01T00:00:00Z"
            )
        else:
            try:
                activation = datetime.fromisoformat(act[:-1]).replace(tzinfo=UTC)
            except ValueError as exc:
                problems.append(f"{where}.activation: {act} is not a valid time ({exc})")
            else:
                if activation < EARLIEST_ACTIVATION:
                    problems.append(f"{where}.activation: {act} is before 1970")
    if len(problems) != before:
        return None
    return Calendar(
        _os(name),
        {"type": "array", "value": seasons},
        {"type": "array", "value": weeks},
        {"type": "array", "value": days},
        activation,
        tuple(specials),
    )


async def write_calendar(
    session: CalendarSession,
    cal: Calendar,
    *,
    obis: str = ACTIVITY_CALENDAR,
    active_tariff: str | None = ACTIVE_TARIFF,
    special_days: str = SPECIAL_DAYS,
) -> CalendarResult:
    """Write the passive calendar, activate it (now or at its time), read back.

    A refused SET/ACTION raises the session's DataAccessError (naming the attribute)."""
    ac, days = ActivityCalendar(obis), SpecialDaysTable(special_days)
    written = (
        (ac.day_profile_table_passive, cal.days),
        (ac.week_profile_table_passive, cal.weeks),
        (ac.season_profile_passive, cal.seasons),
        (ac.calendar_name_passive, cal.name),
    )
    await session.set_all([ref for ref, _ in written], [v for _, v in written])
    if cal.activation is None:
        await session.action(*ac.activate_passive_calendar, {"type": "integer", "value": 0})
    else:
        await session.set(
            *ac.activate_passive_calendar_time, _os(from_utc(cal.activation, deviation=0))
        )
    for entry in cal.special_days:
        await session.action(*days.insert, entry)
    refs: list[AttributeRef] = [
        ac.calendar_name_passive,
        ac.calendar_name_active,
        ac.activate_passive_calendar_time,
    ]
    if active_tariff is not None:
        refs.append(Data(active_tariff).value)
    if cal.special_days:
        refs.append(days.entries)
    back = await session.get_all(refs)  # one GET with-list where the meter agreed it
    passive, active, when = back[:3]
    tariff = table = None
    if active_tariff is not None:
        v = back[3].get("value")
        tariff = v if isinstance(v, int) else None
    if cal.special_days:
        listed = back[-1].get("value")
        table = len(listed) if isinstance(listed, list) else None
    return CalendarResult(_text(passive), _text(active), when, tariff, table)


def _text(v: TypedValue) -> str:
    try:
        return bytes.fromhex(str(v.get("value", ""))).decode("utf-8", errors="replace")
    except ValueError:
        return str(v.get("value"))
