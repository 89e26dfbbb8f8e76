"""Bounds on what one central-system request may ask, checked before any work (issue 7).

A request names meters in several ways (``EndDevices``, ``EndDeviceGroups`` expanded,
``Meter`` in MasterDataLinkageConfig, the per-item lists of EndDeviceControl and
MeterConfig Settings); :func:`count_meters` counts them over the whole request and the
dispatcher refuses more than ``[commands] max_meters_per_request`` with a FAILED
``LimitExceeded`` reply naming the limit and the count, before any handler runs. The
count is of meter *operations*: a meter named by two EndDeviceControl items counts twice
(each control is its own session), a meter named by several MeterConfig settings once
(one session writes them all). Every untrusted array is measured before it is iterated.

:func:`target_meters` is the one resolver of the meters an item names (validation:
unknown meters and groups are problems naming their JSON path). :func:`parse_utc` reads
the request time stamps (UTC ISO-8601 with ``Z``): a date that does not exist
(``2026-02-30``) or lies outside what a bound allows is a problem, never an exception.
:func:`clip_errors` keeps a reply's error list small whatever the request echoed.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.envelope import ReplyError

#: Item arrays that do not name meters themselves (MeterConfig ``Settings``) are walked
#: only up to this length.
MAX_ITEMS = 1024
#: Registers one MeterReadings get may name (``ReadingTypes``).
MAX_READING_TYPES = 256
#: Reply errors: at most this many, each ``details`` at most this long.
MAX_ERRORS = 300
MAX_DETAIL_CHARS = 600
#: The earliest time a request may give where the time reaches a meter (a live profile
#: read, a demand-response window, an activation): no meter holds or runs anything older.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
#: Nothing is stored or read later than this past now (a meter clock running fast): a
#: window's end beyond it does not count towards a work bound.
FUTURE_SLACK_S = 86400.0

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z", re.ASCII)
_ISO_WHOLE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)


class LimitExceeded(Exception):
    """A request over a bound; ``problems`` name the limit (answered FAILED LimitExceeded)."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else problems
        super().__init__("; ".join(self.problems))


class Groups(Protocol):
    """What resolving meters needs of the fleet."""

    def has(self, meter_id: str) -> bool: ...

    def group(self, name: str) -> list[str]: ...


def _shower() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxtuple, r.maxset = 3, 6, 6, 6, 6
    r.maxstring, r.maxother, r.maxlong = 70, 70, 40
    return r


_SHOW = _shower()


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shallow and cut to about ``limit`` characters: a request's own text
    echoed in an error (a deeply nested or huge value never costs more than that)."""
    text = _SHOW.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fanout_problem(
    count: int,
    commands: CommandsConfig,
    where: str = "payload",
    *,
    more: bool = False,
    entries: bool = False,
) -> str | None:
    """The LimitExceeded details when ``count`` meters exceed the fan-out cap, else None
    (``more``: counting stopped there; ``entries``: ``count`` entries of one array)."""
    cap = commands.max_meters_per_request
    if count <= cap:
        return None
    what = (
        f"{count} entries"
        if entries
        else f"reaches {'at least ' if more else ''}{count} meters (groups expanded)"
    )
    return (
        f"{where}: {what}; at most commands.max_meters_per_request = {cap} per request: "
        "split the request"
    )


def work_problem(work: int, commands: CommandsConfig, what: str, advice: str) -> str | None:
    """The LimitExceeded details when ``work`` intervals exceed ``max_query_intervals``."""
    cap = commands.max_query_intervals
    if work <= cap:
        return None
    return (
        f"{what}: {work} intervals; at most commands.max_query_intervals = {cap} per "
        f"request: {advice}"
    )


def bounded_list(raw: Any, where: str, limit: int, what: str) -> list[Any] | None:
    """``raw`` if it is a list of at most ``limit`` items; None when not a list (the
    caller's validation names that); LimitExceeded when longer."""
    if not isinstance(raw, list):
        return None
    if len(raw) > limit:
        raise LimitExceeded(f"{where}: {len(raw)} items; at most {limit} ({what})")
    return raw


def _names(raw: Any) -> Iterable[str]:
    for d in raw if isinstance(raw, list) else ():
        name = d.get("mRID") if isinstance(d, dict) else None
        if isinstance(name, str) and name:
            yield name


def _reach(
    item: Any, key: str, where: str, fleet: Groups, commands: CommandsConfig, seen: set[str]
) -> bool:
    """Add the meters ``item`` names (``key`` and EndDeviceGroups) to ``seen``; an array
    longer than the cap is over it already (LimitExceeded, before it is walked). True
    when it stopped early (``seen`` is over the cap: its size is a lower bound)."""
    if not isinstance(item, dict):
        return False
    cap = commands.max_meters_per_request
    for k in (key, "EndDeviceGroups"):
        raw = item.get(k)
        if isinstance(raw, list) and len(raw) > cap:
            raise LimitExceeded(
                str(fanout_problem(len(raw), commands, f"{where}.{k}", entries=True))
            )
    seen.update(_names(item.get(key)))
    groups = list(_names(item.get("EndDeviceGroups")))
    for i, name in enumerate(groups):
        seen.update(fleet.group(name))
        if len(seen) > cap:
            return i + 1 < len(groups)
    return False


def count_meters(
    noun: str, payload: Mapping[str, Any], fleet: Groups, commands: CommandsConfig
) -> None:
    """Raise LimitExceeded when the request reaches more meters than the fan-out cap (or
    carries an array longer than its bound); counted before anything else is done."""
    cap = commands.max_meters_per_request
    total = 0
    more = False
    where = "payload"
    if noun == "EndDeviceControls":
        raw = payload.get("EndDeviceControl")
        items: list[Any] = raw if isinstance(raw, list) else []
        if len(items) > cap:
            raise LimitExceeded(
                f"payload.EndDeviceControl: {len(items)} controls, each reaching a meter at "
                f"least; at most commands.max_meters_per_request = {cap} per request: split "
                "the request"
            )
        for i, item in enumerate(items):
            seen: set[str] = set()
            more = _reach(
                item, "EndDevices", f"payload.EndDeviceControl[{i}]", fleet, commands, seen
            )
            total += len(seen)
            if total > cap:
                more = more or i + 1 < len(items)
                break
    elif noun == "MeterConfig":
        union: set[str] = set()
        settings = bounded_list(
            payload.get("Settings"), "payload.Settings", MAX_ITEMS, "settings per request"
        )
        for i, item in enumerate(settings or ()):
            more = _reach(item, "EndDevices", f"payload.Settings[{i}]", fleet, commands, union)
            if len(union) > cap:
                more = more or i + 1 < len(settings or ())
                break
        else:
            more = _reach(
                payload.get("keyChange"), "EndDevices", "payload.keyChange", fleet, commands, union
            )
        total = len(union)
    else:
        key = "Meter" if noun == "MasterDataLinkageConfig" else "EndDevices"
        seen = set()
        more = _reach(payload, key, where, fleet, commands, seen)
        total = len(seen)
    problem = fanout_problem(total, commands, where, more=more)
    if problem is not None:
        raise LimitExceeded(problem)


def target_meters(
    fleet: Groups,
    item: Mapping[str, Any],
    where: str,
    problems: list[str],
    *,
    key: str = "EndDevices",
    groups: bool = True,
    groups_refused: str = "",
) -> list[str]:
    """The configured meters ``item`` names in ``key`` (and ``EndDeviceGroups`` when
    ``groups``), in order, each once; every wrong entry a problem naming its path. With
    ``groups`` False a present EndDeviceGroups is a problem (``groups_refused`` says why)."""
    out: dict[str, None] = {}
    before = len(problems)
    raw = item.get(key, [])
    if not isinstance(raw, list):
        problems.append(f'{where}.{key}: must be an array of {{"mRID": ...}}')
        raw = []
    for j, d in enumerate(raw):
        name = d.get("mRID") if isinstance(d, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.{key}[{j}].mRID: missing or not a string")
        elif not fleet.has(name):
            problems.append(
                f"{where}.{key}[{j}].mRID: meter {show(name)} is not configured on this gateway"
            )
        else:
            out[name] = None
    raw_groups = item.get("EndDeviceGroups")
    if raw_groups is not None and not groups:
        problems.append(
            f"{where}.EndDeviceGroups: not taken here{groups_refused}; name the meters in {key}"
        )
    elif raw_groups is not None and not isinstance(raw_groups, list):
        problems.append(f'{where}.EndDeviceGroups: must be an array of {{"mRID": ...}}')
    elif raw_groups is not None:
        for j, g in enumerate(raw_groups):
            name = g.get("mRID") if isinstance(g, dict) else None
            members = fleet.group(name) if isinstance(name, str) else []
            if not members:
                problems.append(
                    f"{where}.EndDeviceGroups[{j}].mRID: {show(name)} is not a "
                    "configured group (no meter names it)"
                )
            out.update(dict.fromkeys(members))
    if not out and len(problems) == before:
        both = f"{key} and EndDeviceGroups are" if groups else f"{key} is"
        problems.append(f"{where}: names no meter ({both} empty)")
    return list(out)


def parse_utc(
    raw: Any,
    where: str,
    problems: list[str],
    *,
    fractions: bool = True,
    earliest: datetime | None = None,
) -> datetime | None:
    """A request time stamp (UTC ISO-8601 with Z) as an aware datetime, or None and a
    problem: wrong form, a date that does not exist, or earlier than ``earliest``."""
    example = "2026-11-27T12:00:00Z"
    if not isinstance(raw, str) or not (_ISO if fractions else _ISO_WHOLE).match(raw):
        problems.append(f"{where}: {show(raw)} is not UTC ISO-8601 like {example}")
        return None
    try:
        moment = datetime.fromisoformat(raw[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        problems.append(f"{where}: {show(raw)} is not a valid date and time ({exc})")
        return None
    if earliest is not None and moment < earliest:
        problems.append(
            f"{where}: {raw} is before {iso(earliest)}; no meter holds or runs anything that old"
        )
        return None
    return moment


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def clip_errors(errors: Sequence[ReplyError], budget: int | None = None) -> list[ReplyError]:
    """At most :data:`MAX_ERRORS` errors (and about ``budget`` characters of details),
    each ``details`` at most :data:`MAX_DETAIL_CHARS` long; the last one says how many
    were left out."""
    out: list[ReplyError] = []
    used = 0
    for e in errors:
        details = str(e.get("details") or "") or str(e.get("code"))
        if len(details) > MAX_DETAIL_CHARS:
            details = details[: MAX_DETAIL_CHARS - 1] + "…"
        used += len(details) + 40
        if len(out) >= MAX_ERRORS or (budget is not None and used > budget and out):
            break
        out.append({"code": str(e.get("code")), "details": details})
    if len(out) < len(errors):
        out.pop()
        rest = errors[len(out) :]
        codes = sorted({str(e.get("code")) for e in rest})
        out.append(
            {
                "code": codes[0] if len(codes) == 1 else "Truncated",
                "details": f"{len(rest)} more error(s) left out (codes {', '.join(codes)})",
            }
        )
    return out
