"""Read schedules created over MQTT (MeterReadSchedule, issue 11 item 3): what, whom, when.

A :class:`ReadSchedule` names meters (``EndDevices``, and ``EndDeviceGroups`` expanded when
it is applied), reading types (registers by OBIS or by their IEC 61968-9 ReadingType
code, and the load profile by the model's ``load_profile`` OBIS), a recurrence period
and an optional daily window of UTC time of day (``00:00``..``04:00``; an end before the
start crosses midnight). Its runs: the slots ``window start + k x period`` inside the
window, each meter at its own stable offset in ``[0, min(period, rest of the window))``
(:func:`next_run`), so a fleet does not start at once and every run stays inside the
window. A run reads the registers and, with the load profile, collects it from the
meter's saved progress (the same collection as the configured one: it publishes, keeps
for the bulk export and moves the progress on).

:class:`ReadSchedules` keeps them in the fleet database (table ``read_schedule``: the
schedule as JSON, created by :mod:`~smmc_gateway.headend.persistence`), registers each
with the scheduler as a timed job (:meth:`~smmc_gateway.headend.scheduler.Scheduler.at_times`)
at start and on every change, and drops it on delete. Runs missed while the gateway was down are not
made up (the next slot is the next run; a profile collection back-fills from the saved
progress anyway).

Configured ``[schedules]`` and these coexist: the configured collection, register reads,
event polls and clock sync run for every meter whatever is created here; a schedule
created over MQTT adds reads, it never replaces or stops the configured ones (the
operator owns those in the configuration, the central system these).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.request_limits import show
from smmc_gateway.headend.scheduler import Scheduler, stable_jitter
from smmc_gateway.ops.config_model import ModelConfig, RegisterSpec

log = structlog.get_logger("smmc_gateway.read_schedules")

DAY = 86400
# Table read_schedule: created by the migrations of smmc_gateway.headend.persistence (the
# fleet database is migrated when it is opened).
_ID = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)
_CODE = re.compile(r"-?\d+(\.-?\d+){17}", re.ASCII)
_OBIS = re.compile(r"\d{1,3}(\.\d{1,3}){5}", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?", re.ASCII)
JOB_PREFIX = "schedule:"
OWNED_PREFIX = "meter:"
"""Schedules named ``meter:<id>`` are a provisioned meter's own (EndDeviceConfig
``schedule``): MeterReadSchedule lists them and does not change them."""


def next_run(period_s: int, window: tuple[int, int] | None, frac: float, after: float) -> float:
    """The first run strictly after ``after`` (epoch s) of a meter whose offset is ``frac``
    (0..1) of each slot's span: slots every ``period_s`` from the window's start (UTC
    seconds of day) while inside it, or from 00:00 all day without a window."""
    start, length = (0, DAY) if window is None else (window[0], (window[1] - window[0]) % DAY)
    length = length or DAY
    slots = math.ceil(length / period_s)
    first_day = math.floor((after - start) / DAY) - 1  # a window that began yesterday
    for day in range(first_day, first_day + 3):
        base = day * DAY + start
        k = max(0, math.floor((after - base) / period_s))
        for slot in (k, k + 1):
            if slot >= slots:
                break
            at = base + slot * period_s + frac * min(period_s, length - slot * period_s)
            if at > after:
                return float(at)
    raise AssertionError("unreachable: every day has a slot")  # pragma: no cover


def seconds_of_day(text: str) -> int | None:
    m = _TIME.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    return h * 3600 + mi * 60 + s if h < 24 and mi < 60 and s < 60 else None


def hhmmss(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class ReadSchedule:
    """One schedule as the central system gave it (validated)."""

    mrid: str
    meters: tuple[str, ...]
    groups: tuple[str, ...]
    reading_types: tuple[Mapping[str, str], ...]  # {"obis": ...} or {"ref": ...}
    period_s: int
    window: tuple[int, int] | None = None
    created: float = field(default=0.0, compare=False)
    changed: float = field(default=0.0, compare=False)

    @property
    def job(self) -> str:
        return JOB_PREFIX + self.mrid

    def spec(self) -> dict[str, Any]:
        """The schedule as in a request (and as stored): MeterReadSchedule's payload."""
        out: dict[str, Any] = {"mRID": self.mrid}
        if self.meters:
            out["EndDevices"] = [{"mRID": m} for m in self.meters]
        if self.groups:
            out["EndDeviceGroups"] = [{"mRID": g} for g in self.groups]
        out["ReadingTypes"] = [dict(rt) for rt in self.reading_types]
        sched: dict[str, Any] = {"recurrencePeriod": self.period_s}
        if self.window is not None:
            sched["window"] = {"start": hhmmss(self.window[0]), "end": hhmmss(self.window[1])}
        out["TimeSchedule"] = sched
        return out

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], created: float, changed: float) -> ReadSchedule:
        sched = spec["TimeSchedule"]
        win = sched.get("window")
        window = None
        if win is not None:
            a, b = seconds_of_day(win["start"]), seconds_of_day(win["end"])
            assert a is not None and b is not None
            window = (a, b)
        return cls(
            str(spec["mRID"]),
            tuple(d["mRID"] for d in spec.get("EndDevices", [])),
            tuple(d["mRID"] for d in spec.get("EndDeviceGroups", [])),
            tuple(dict(rt) for rt in spec["ReadingTypes"]),
            int(sched["recurrencePeriod"]),
            window,
            created,
            changed,
        )


@dataclass(frozen=True)
class Reads:
    """What one run reads from one meter."""

    registers: tuple[RegisterSpec, ...]
    profile: bool


def resolve(
    model: ModelConfig,
    reading_types: Sequence[Mapping[str, str]],
    where: str = "payload.ReadingTypes",
    problems: list[str] | None = None,
) -> Reads:
    """The registers and profile ``reading_types`` name for a meter of ``model``; an entry
    that names nothing of the model is a problem (or skipped, ``problems`` None)."""
    regs: dict[str, RegisterSpec] = {}
    profile = False
    known = {r.obis: r for r in model.registers}
    codes = {reading_type(r.obis, r.unit): r for r in model.registers if r.unit is not None}
    for i, rt in enumerate(reading_types):
        if "obis" in rt:
            obis = rt["obis"]
            if obis == model.obis["load_profile"]:
                profile = True
            else:
                regs[obis] = known.get(obis) or RegisterSpec(
                    obis=obis, name="", scaler=None, unit=None
                )
            continue
        found = codes.get(rt.get("ref", ""))
        if found is not None:
            regs[found.obis] = found
        elif problems is not None:
            names = ", ".join(f"{r.name or r.obis} {c}" for c, r in list(codes.items())[:6])
            problems.append(
                f"{where}[{i}].ref: {show(rt.get('ref'))} is not the ReadingType "
                f"of a register of model {model.name!r} ({names}); name it by "
                "obis instead"
            )
    return Reads(tuple(regs.values()), profile)


def parse(
    payload: Mapping[str, Any], problems: list[str], *, min_period_s: float, max_types: int
) -> ReadSchedule | None:
    """A schedule from a create/change payload (meters not resolved here), or None with
    the problems named by JSON path."""
    before = len(problems)
    mrid = payload.get("mRID")
    if not isinstance(mrid, str) or not _ID.fullmatch(mrid):
        problems.append(
            f"payload.mRID: {show(mrid)} is not a schedule id (1..128 printable "
            "ASCII characters, no spaces)"
        )
    names: dict[str, list[str]] = {}
    for key in ("EndDevices", "EndDeviceGroups"):
        raw = payload.get(key, [])
        if not isinstance(raw, list):
            problems.append(f'payload.{key}: must be an array of {{"mRID": ...}}')
            raw = []
        out = names.setdefault(key, [])
        for j, d in enumerate(raw):
            name = d.get("mRID") if isinstance(d, dict) else None
            if not isinstance(name, str) or not name:
                problems.append(f"payload.{key}[{j}].mRID: missing or not a string")
            elif name not in out:
                out.append(name)
    if not names["EndDevices"] and not names["EndDeviceGroups"]:
        problems.append("payload: names no meter (EndDevices and EndDeviceGroups are empty)")
    types = payload.get("ReadingTypes")
    rts: list[dict[str, str]] = []
    if not isinstance(types, list) or not types:
        problems.append(
            'payload.ReadingTypes: must be a non-empty array of {"obis": ...} '
            'or {"ref": <ReadingType code>}'
        )
    elif len(types) > max_types:
        problems.append(f"payload.ReadingTypes: {len(types)} entries; at most {max_types}")
    else:
        for j, rt in enumerate(types):
            obis = rt.get("obis") if isinstance(rt, dict) else None
            ref = rt.get("ref") if isinstance(rt, dict) else None
            if isinstance(obis, str) and _OBIS.fullmatch(obis) and ref is None:
                rts.append({"obis": obis})
            elif isinstance(ref, str) and _CODE.fullmatch(ref) and obis is None:
                rts.append({"ref": ref})
            else:
                problems.append(
                    f"payload.ReadingTypes[{j}]: {show(rt)} is neither "
                    '{"obis": "1.0.1.8.0.255"} nor {"ref": <18-part '
                    "ReadingType code>}"
                )
    period, window = _time_schedule(payload.get("TimeSchedule"), problems, min_period_s)
    if len(problems) > before or period is None or not isinstance(mrid, str):
        return None
    return ReadSchedule(
        mrid,
        tuple(names["EndDevices"]),
        tuple(names["EndDeviceGroups"]),
        tuple(rts),
        period,
        window,
    )


def _time_schedule(
    raw: Any, problems: list[str], min_period_s: float
) -> tuple[int | None, tuple[int, int] | None]:
    where = "payload.TimeSchedule"
    if not isinstance(raw, dict):
        problems.append(
            f'{where}: missing; an object {{"recurrencePeriod": seconds, '
            '"window": {"start": "00:00", "end": "04:00"}}'
        )
        return None, None
    period = raw.get("recurrencePeriod")
    low = math.ceil(min_period_s)
    if not isinstance(period, int) or isinstance(period, bool) or not low <= period <= DAY:
        problems.append(
            f"{where}.recurrencePeriod: {show(period)} is not a whole number of "
            f"seconds {low}..{DAY} (the least is commands.min_read_interval = "
            f"{min_period_s:g}s)"
        )
        period = None
    win = raw.get("window")
    window = None
    if win is not None:
        if not isinstance(win, dict):
            problems.append(
                f'{where}.window: must be an object {{"start": "HH:MM", "end": "HH:MM"}}}} (UTC)'
            )
        else:
            bounds = []
            for key in ("start", "end"):
                sec = seconds_of_day(win.get(key))  # type: ignore[arg-type]
                if sec is None:
                    problems.append(
                        f"{where}.window.{key}: {show(win.get(key))} is not a "
                        'UTC time of day like "04:00" or "04:00:30"'
                    )
                bounds.append(sec)
            a, b = bounds
            if a is not None and b is not None:
                if a == b:
                    problems.append(
                        f"{where}.window: start and end are both {hhmmss(a)}; "
                        "leave window out to read all day"
                    )
                else:
                    window = (a, b)
    extra = sorted(set(raw) - {"recurrencePeriod", "window"})
    if extra:
        problems.append(
            f"{where}: unknown member(s) {show(extra)}; it takes recurrencePeriod and window"
        )
    return period, window


class ReadSchedules:
    """The schedules of one gateway: persisted, applied to the scheduler."""

    def __init__(
        self,
        fleet: Fleet,
        scheduler: Scheduler,
        model_of: Callable[[str], ModelConfig],
        run: Callable[[ReadSchedule, str, Reads], Awaitable[Any]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.scheduler = scheduler
        self.model_of = model_of
        self.run = run
        """``await run(schedule, meter_id, reads)``: one scheduled read."""
        self.clock = clock
        self._by_id: dict[str, ReadSchedule] = {}

    async def load(self) -> int:
        """Read the stored schedules and apply them (at start); returns how many."""

        def job(conn: sqlite3.Connection) -> list[tuple[str, float, float]]:
            return list(
                conn.execute("SELECT spec, created, changed FROM read_schedule ORDER BY mrid")
            )

        for spec, created, changed in await self.fleet.store.submit(job):
            try:
                schedule = ReadSchedule.from_spec(json.loads(spec), created, changed)
            except (ValueError, KeyError, TypeError, AssertionError) as exc:
                log.error("read_schedule_unreadable", spec=spec[:200], error=str(exc))
                continue
            self._by_id[schedule.mrid] = schedule
            self._apply(schedule)
        return len(self._by_id)

    def all(self) -> list[ReadSchedule]:
        return [self._by_id[k] for k in sorted(self._by_id)]

    def get(self, mrid: str) -> ReadSchedule | None:
        return self._by_id.get(mrid)

    def meters_of(self, schedule: ReadSchedule) -> list[str]:
        """The configured meters it reaches now (groups expanded), each once."""
        out = dict.fromkeys(m for m in schedule.meters if self.fleet.has(m))
        for g in schedule.groups:
            out.update(dict.fromkeys(self.fleet.group(g)))
        return list(out)

    def per_meter(self, excluding: str | None = None) -> Counter[str]:
        """How many schedules (but ``excluding``) reach each meter."""
        return Counter(
            m for s in self._by_id.values() if s.mrid != excluding for m in self.meters_of(s)
        )

    def next_due(self, schedule: ReadSchedule) -> Callable[[str, float], float]:
        def due(meter_id: str, after: float) -> float:
            frac = stable_jitter(meter_id, schedule.job, 1.0)
            return next_run(schedule.period_s, schedule.window, frac, after)

        return due

    def next_runs(self, schedule: ReadSchedule) -> float | None:
        """The earliest next run over its meters (epoch s), None without meters."""
        now = self.clock()
        due = self.next_due(schedule)
        return min((due(m, now) for m in self.meters_of(schedule)), default=None)

    async def put(self, schedule: ReadSchedule) -> ReadSchedule:
        """Create or replace ``schedule`` (persisted first, then applied)."""
        now = self.clock()
        old = self._by_id.get(schedule.mrid)
        created = old.created if old is not None else now
        row = (schedule.mrid, json.dumps(schedule.spec(), separators=(",", ":")), created, now)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO read_schedule (mrid, spec, created, changed)"
                " VALUES (?,?,?,?)",
                row,
            )

        await self.fleet.store.submit(job)
        kept = ReadSchedule.from_spec(schedule.spec(), created, now)
        self._by_id[kept.mrid] = kept
        self._apply(kept)
        log.info(
            "read_schedule_saved",
            mrid=kept.mrid,
            meters=len(self.meters_of(kept)),
            period_s=kept.period_s,
            created=old is None,
        )
        return kept

    async def delete(self, mrid: str) -> bool:
        def job(conn: sqlite3.Connection) -> int:
            return int(conn.execute("DELETE FROM read_schedule WHERE mrid=?", (mrid,)).rowcount)

        gone = await self.fleet.store.submit(job)
        self._by_id.pop(mrid, None)
        self.scheduler.remove(JOB_PREFIX + mrid)
        log.info("read_schedule_deleted", mrid=mrid, found=bool(gone))
        return bool(gone)

    def reapply(self) -> None:
        """Apply every schedule again (the meters of a group may have changed)."""
        for schedule in self._by_id.values():
            self._apply(schedule)

    def _apply(self, schedule: ReadSchedule) -> None:
        async def job(meter_id: str) -> None:
            reads = resolve(self.model_of(meter_id), schedule.reading_types)
            await self.run(schedule, meter_id, reads)

        self.scheduler.at_times(
            schedule.job, self.meters_of(schedule), self.next_due(schedule), job
        )


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )
