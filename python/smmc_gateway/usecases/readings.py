"""Use case 2 — bulk meter readings: load profile by range from the last stored entry,
registers, on-demand reads, gaps.

A :class:`ProfileCollection` reads the load profile (Profile generic, class 7) by
range selective access from the meter's last stored entry (the first read takes
``first_read_s`` of history) up to now, turns the buffer straight into the
``IntervalBlocks`` JSON of a MeterReadings payload (``_core.profile_to_json``, no
Python rows on the hot path except the clock column to find the newest entry and
the gaps; each block's ``ReadingType.ref`` is the IEC 61968-9 code of its column,
:func:`~smmc_gateway.cim.reading_types.reading_type` with the capture period as measuring
period, ``obis`` and ``unit`` beside), and reads the energy registers (class 3) with
their scaler and unit (read once per model when not configured; ``ref`` the code,
``name`` the configured register name); a scheduled collection asks for the profile
range and the registers in one GET with-list where the meter agreed
multiple-references. Missed intervals are back-filled simply because the range starts
at the last stored entry, however long ago that was (capped by ``max_backfill_s``).
Missing rows inside the range are reported as :class:`Gap` s.

Time stamps follow the model's clock conventions (``[models.NAME.clock]``,
:mod:`~smmc_gateway.usecases.meter_clock`): the range is asked in the meter's local
time when the model names its zone, and a profile whose stamps lack a deviation (or
whose deviation the model distrusts) is rewritten to UTC before the core renders it,
so the stamps are right across the yearly summer-time transitions (Chile: no invented
gap in September, no repeated or lost hour in April).

Only the session API is used; no bytes are built here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.cim.reading_types import Reading, reading_type
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.units import unit_name
from smmc_gateway.dlms.session import ClientSession, DataAccessError, RangeAccess
from smmc_gateway.ops.config_model import ModelConfig, RegisterSpec
from smmc_gateway.usecases.meter_clock import MeterClock

log = structlog.get_logger("smmc_gateway.readings")


@dataclass(frozen=True)
class Gap:
    """Intervals missing from the profile between ``start`` and ``end`` (exclusive)."""

    start: datetime
    end: datetime
    missing: int


@dataclass
class ProfileResult:
    rows: int
    interval_blocks: bytes | None
    newest: datetime | None
    gaps: list[Gap] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class ReadingsResult:
    """What one collection read from a meter."""

    meter_id: str
    readings: list[Reading]
    profile: ProfileResult | None


@dataclass(frozen=True)
class _Layout:
    columns: tuple[Any, ...]  # ColumnSpec per value column
    clock_index: int
    status_index: int | None
    period_s: int


async def _scaler_units(
    session: ClientSession, refs: Sequence[tuple[int, str]]
) -> dict[str, tuple[int, str]]:
    """(scaler, unit name) of class 3/4/5 objects, by OBIS."""
    wanted = [(cid, ln, 3) for cid, ln in refs if cid in (3, 4, 5)]
    out: dict[str, tuple[int, str]] = {}
    if not wanted:
        return out
    for (_, ln, _), raw in zip(wanted, await session.get_many(wanted), strict=True):
        if isinstance(raw, DataAccessError):
            continue
        su = _core.decode(raw)["value"]
        out[ln] = (int(su[0]["value"]), unit_name(int(su[1]["value"])))
    return out


class ReadingsUseCase:
    """Collection of load profile and registers for meters of a model."""

    def __init__(
        self, *, first_read_s: float = 86400.0, max_backfill_s: float = 31 * 86400.0
    ) -> None:
        self.first_read_s = first_read_s
        self.max_backfill_s = max_backfill_s
        self._layouts: dict[str, _Layout] = {}
        # Scaler and unit of registers the model does not configure, by model and OBIS:
        # read once (like the profile layout), not on every collection.
        self._scalers: dict[tuple[str, str], tuple[int, str]] = {}

    async def _layout(self, session: ClientSession, model: ModelConfig, lp: str) -> _Layout:
        key = f"{model.name}/{lp}"
        cached = self._layouts.get(key)
        if cached is not None:
            return cached
        capture_value, period_value = await session.get_all([(7, lp, 3), (7, lp, 4)])
        capture = capture_value["value"]
        period = int(period_value["value"])
        cols: list[tuple[int, str, int]] = []
        for entry in capture:
            f = entry["value"]
            cols.append(
                (
                    int(f[0]["value"]),
                    str(Obis.from_bytes(bytes.fromhex(f[1]["value"]))),
                    int(f[2]["value"]),
                )
            )
        su = await _scaler_units(session, [(c, ln) for c, ln, _ in cols])
        clock_index = next((i for i, (c, _, _) in enumerate(cols) if c == 8), 0)
        status_index = next(
            (i for i, (c, ln, _) in enumerate(cols) if c == 1 and ln.startswith("0.0.96.10.")), None
        )
        period = period or int(model.capture_period_s)
        specs = []
        seen: dict[str, str] = {}
        for i, (_c, ln, _) in enumerate(cols):
            if i in (clock_index, status_index):
                continue
            scaler, unit = su.get(ln, (0, ""))
            ref = reading_type(ln, unit, measuring_period_s=period)
            if ref in seen:  # the data store keys interval rows by ref: say so, loudly
                log.warning(
                    "reading_type_collision",
                    model=model.name,
                    profile=lp,
                    ref=ref,
                    obis=[seen[ref], ln],
                )
            seen.setdefault(ref, ln)
            specs.append(_core.ColumnSpec(i, ref, obis=ln, unit=unit, scaler=scaler))
        layout = _Layout(tuple(specs), clock_index, status_index, period)
        self._layouts[key] = layout
        return layout

    def _start(self, since: datetime | None, until: datetime) -> datetime:
        if since is None:
            return until - timedelta(seconds=self.first_read_s)
        return max(since + timedelta(seconds=1), until - timedelta(seconds=self.max_backfill_s))

    async def read_profile(
        self, session: ClientSession, model: ModelConfig, since: datetime | None, until: datetime
    ) -> ProfileResult:
        """Rows after ``since`` (exclusive) up to ``until``; gaps found in between."""
        lp = model.obis["load_profile"]
        layout = await self._layout(session, model, lp)
        start = self._start(since, until)
        clock = MeterClock(model.clock, model.name)
        raw = await session.get_raw(7, lp, 2, access=_range(clock, start, until))
        return _profile(raw, layout, since, start, until, clock)

    async def read_registers(
        self,
        session: ClientSession,
        registers: Sequence[RegisterSpec],
        now: datetime,
        *,
        model: str = "",
    ) -> list[Reading]:
        """Values of ``registers`` (attribute 2), scaled; scaler/unit read when not
        configured (once per ``model`` when it is named)."""
        if not registers:
            return []
        values = await session.get_many([(3, r.obis, 2) for r in registers])
        return await self._readings(session, model, registers, values, now)

    async def collect(
        self,
        session: ClientSession,
        meter_id: str,
        model: ModelConfig,
        since: datetime | None,
        now: datetime | None = None,
        registers: bool = True,
    ) -> ReadingsResult:
        """One scheduled collection: profile from ``since`` plus the registers, in one
        GET with-list where the meter agreed it (the profile with its range selection)."""
        now = now or datetime.now(UTC)
        lp = model.obis["load_profile"]
        layout = await self._layout(session, model, lp)
        start = self._start(since, now)
        specs = model.registers if registers else ()
        refs = [(7, lp, 2), *((3, r.obis, 2) for r in specs)]
        clock = MeterClock(model.clock, model.name)
        access = [_range(clock, start, now), *(None for _ in specs)]
        raw, *values = await session.get_many(refs, access=access)
        if isinstance(raw, DataAccessError):
            raise raw
        profile = _profile(raw, layout, since, start, now, clock)
        regs = await self._readings(session, model.name, specs, values, now) if specs else []
        return ReadingsResult(meter_id, regs, profile)

    async def _readings(
        self,
        session: ClientSession,
        model: str,
        registers: Sequence[RegisterSpec],
        values: Sequence[bytes | DataAccessError],
        now: datetime,
    ) -> list[Reading]:
        """The registers' values read (attribute 2), scaled; scaler/unit read when not
        configured, once per named ``model``."""
        known = self._scalers if model else {}
        unknown = [
            (3, r.obis)
            for r in registers
            if (r.scaler is None or r.unit is None) and (model, r.obis) not in known
        ]
        su = await _scaler_units(session, unknown) if unknown else {}
        if model:
            self._scalers.update(((model, ln), v) for ln, v in su.items())
        out: list[Reading] = []
        for spec, raw in zip(registers, values, strict=True):
            if isinstance(raw, DataAccessError):
                continue
            value = _core.decode(raw)["value"]
            scaler, unit = su.get(spec.obis) or self._scalers.get((model, spec.obis), (0, ""))
            scaler = spec.scaler if spec.scaler is not None else scaler
            unit = spec.unit if spec.unit is not None else unit
            number: float | int | str
            if isinstance(value, int) and scaler:
                number = value * 10**scaler if scaler > 0 else value / 10**-scaler
            elif isinstance(value, int | float):
                number = value
            else:
                number = str(value)
            reading = Reading(
                ref=reading_type(spec.obis, unit),
                obis=spec.obis,
                unit=unit,
                timestamp=now,
                value=number,
            )
            if spec.name:
                reading["name"] = spec.name
            out.append(reading)
        return out


def _range(clock: MeterClock, start: datetime, end: datetime) -> RangeAccess:
    return RangeAccess(start=clock.range_bound(start), end=clock.range_bound(end))


def _profile(
    raw: bytes,
    layout: _Layout,
    since: datetime | None,
    start: datetime,
    until: datetime,
    clock: MeterClock | None = None,
) -> ProfileResult:
    rows = _core.decode_profile_buffer(raw, layout.period_s)
    clock = clock or MeterClock()
    if rows and clock.needs_rewrite([r[layout.clock_index] for r in rows]):
        raw = clock.normalise(raw, layout.clock_index, layout.period_s)
        rows = _core.decode_profile_buffer(raw, layout.period_s)
    stamps = [r[layout.clock_index] for r in rows if isinstance(r[layout.clock_index], datetime)]
    stamps = [s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps]
    gaps = find_gaps(stamps, layout.period_s, since)
    blocks = None
    if rows:
        blocks = _core.profile_to_json(
            raw,
            clock_column=layout.clock_index,
            columns=list(layout.columns),
            status_column=layout.status_index,
            capture_period=layout.period_s,
        )
    return ProfileResult(len(rows), blocks, max(stamps) if stamps else None, gaps, start, until)


def find_gaps(
    stamps: Sequence[datetime], period_s: int, since: datetime | None = None
) -> list[Gap]:
    """Holes in a sorted series of profile timestamps (and between ``since`` and the first)."""
    if period_s <= 0:
        return []
    gaps: list[Gap] = []
    step = timedelta(seconds=period_s)
    prev = since
    for s in stamps:
        if prev is not None and s - prev > step * 1.5:
            missing = round((s - prev) / step) - 1
            gaps.append(Gap(prev + step, s, missing))
        prev = s
    return gaps


def registers_for(model: ModelConfig, obis: Sequence[str] | None) -> list[RegisterSpec]:
    """The model's registers, or the subset (or ad-hoc list) asked for by OBIS."""
    if not obis:
        return list(model.registers)
    known = {r.obis: r for r in model.registers}
    return [known.get(o) or RegisterSpec(obis=o, name="", scaler=None, unit=None) for o in obis]
