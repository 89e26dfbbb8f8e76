"""The fleet: the configured meters and their per-meter state, persisted in SQLite.

Each configured meter (:class:`~smmc_gateway.ops.config.MeterConfig`) has one small
:class:`MeterState`: the last stored load-profile entry (collection resumes from
there, so missed intervals are back-filled), the last clock deviation, read
counters and reachability. States live in memory (``__slots__``, a few hundred
bytes each, so thousands of meters cost little) and every change is written
through to ``fleet.sqlite`` (WAL, group commit on the store's writer thread) so a
restart resumes where it stopped.

    fleet = await Fleet.open(config.meters, state_dir / "fleet.sqlite")
    meter = fleet.meter("tcp-0001")          # UnknownMeter names the id if not configured
    state = fleet.state("tcp-0001")
    state.last_entry = ...; await fleet.save(state)

The registry changes while the gateway runs (provisioning over MQTT, a configuration
reload): :meth:`Fleet.put` adds or replaces a meter (a meter new to the fleet gets its
persisted state back, so a meter removed and added again resumes where it stopped),
:meth:`Fleet.remove` takes one out (its state row stays). The group index follows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smmc_gateway.headend.persistence import open_fleet_store
from smmc_gateway.ops.config_model import MeterConfig
from smmc_gateway.uplink.store import Store

# Tables meter_state and meter_discovery (the last discovery summary per meter, as JSON,
# use case 1): created by the migrations of smmc_gateway.headend.persistence.


class UnknownMeter(KeyError):
    """A meter id that is not in the configuration."""

    def __init__(self, meter_id: str) -> None:
        super().__init__(meter_id)
        self.meter_id = meter_id

    def __str__(self) -> str:
        return f"meter {self.meter_id!r} is not configured on this gateway"


@dataclass(slots=True)
class MeterState:
    """What the gateway remembers about one meter between sessions and restarts."""

    meter_id: str
    last_entry: datetime | None = None
    """Timestamp (UTC) of the newest load-profile row already published."""
    clock_deviation_s: float | None = None
    """meter time - true time at the last clock check (positive: the meter is ahead)."""
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    reachable: bool | None = None
    reads_ok: int = 0
    reads_failed: int = 0
    consecutive_failures: int = 0
    energised: bool | None = None
    """Disconnect control output state as last seen (None: never read)."""

    def record_success(self, now: float) -> None:
        self.last_attempt = self.last_success = now
        self.last_error = None
        self.reachable = True
        self.reads_ok += 1
        self.consecutive_failures = 0

    def record_failure(self, now: float, error: str) -> None:
        self.last_attempt = now
        self.last_error = error[:500]
        self.reachable = False
        self.reads_failed += 1
        self.consecutive_failures += 1


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _state(meter_id: str, r: tuple[Any, ...] | None) -> MeterState:
    if r is None:
        return MeterState(meter_id)
    return MeterState(
        meter_id,
        _dt(r[1]),
        r[2],
        r[3],
        r[4],
        r[5],
        _bool(r[6]),
        int(r[7]),
        int(r[8]),
        int(r[9]),
        _bool(r[10]),
    )


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _int(value: bool | None) -> int | None:
    return None if value is None else int(value)


class Fleet:
    """The registry of configured meters with their persisted state."""

    def __init__(
        self, meters: Sequence[MeterConfig], store: Store, states: dict[str, MeterState]
    ) -> None:
        self._meters = {m.id: m for m in meters}
        self._order = [m.id for m in meters]
        self._store = store
        self._states = states
        self._groups: dict[str, list[str]] = {}
        self._index_groups()

    def _index_groups(self) -> None:
        groups: dict[str, list[str]] = {}
        for meter_id in self._order:
            for g in self._meters[meter_id].groups:
                groups.setdefault(g, []).append(meter_id)
        self._groups = groups

    @classmethod
    async def open(cls, meters: Sequence[MeterConfig], path: str | Path) -> Fleet:
        """Open (or create) the state database, migrate it (:mod:`~smmc_gateway.headend.
        persistence`) and load every configured meter's state."""
        store = open_fleet_store(path)  # SchemaTooNew for a newer gateway's file

        def load(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(
                conn.execute(
                    "SELECT meter_id, last_entry, clock_deviation_s, last_attempt, last_success,"
                    " last_error, reachable, reads_ok, reads_failed, consecutive_failures,"
                    " energised"
                    " FROM meter_state"
                )
            )

        rows: dict[str, tuple[Any, ...]] = {str(r[0]): r for r in await store.submit(load)}
        states = {m.id: _state(m.id, rows.get(m.id)) for m in meters}
        return cls(meters, store, states)

    # -- live changes (provisioning, reload) -------------------------------------------
    async def put(self, meter: MeterConfig) -> str:
        """Add ``meter`` or replace the meter with its id: "added", "changed" or
        "unchanged". A meter new to the fleet gets its persisted state back."""
        known = self._meters.get(meter.id)
        if known is not None:
            self._meters[meter.id] = meter
            if replace(known, source=meter.source) == meter:  # only where it is defined moved
                return "unchanged"
            self._index_groups()
            return "changed"
        meter_id = meter.id

        def load(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(
                conn.execute(
                    "SELECT meter_id, last_entry, clock_deviation_s, last_attempt, last_success,"
                    " last_error, reachable, reads_ok, reads_failed, consecutive_failures,"
                    " energised"
                    " FROM meter_state WHERE meter_id = ?",
                    (meter_id,),
                )
            )

        rows = await self._store.submit(load)
        if meter.id in self._meters:  # put twice meanwhile: the later one wins
            return await self.put(meter)
        self._states[meter.id] = _state(meter.id, rows[0] if rows else None)
        self._meters[meter.id] = meter
        self._order.append(meter.id)
        self._index_groups()
        return "added"

    def remove(self, meter_id: str) -> MeterConfig:
        """Take the meter out of the fleet (UnknownMeter if it is not in it); its persisted
        state and discovery stay (a meter added again resumes from them)."""
        meter = self.meter(meter_id)
        del self._meters[meter_id]
        self._order.remove(meter_id)
        self._states.pop(meter_id, None)
        self._index_groups()
        return meter

    # -- registry ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._order)

    def ids(self) -> list[str]:
        return list(self._order)

    def meters(self) -> Iterable[MeterConfig]:
        return (self._meters[i] for i in self._order)

    def meter(self, meter_id: str) -> MeterConfig:
        try:
            return self._meters[meter_id]
        except KeyError:
            raise UnknownMeter(meter_id) from None

    def has(self, meter_id: str) -> bool:
        return meter_id in self._meters

    def group(self, name: str) -> list[str]:
        """Meter ids of a configured group (empty when no meter names it)."""
        return list(self._groups.get(name, ()))

    def state(self, meter_id: str) -> MeterState:
        try:
            return self._states[meter_id]
        except KeyError:
            raise UnknownMeter(meter_id) from None

    def reachable_count(self) -> int:
        return sum(1 for s in self._states.values() if s.reachable)

    # -- persistence ---------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The state database (other head-end tables may live in it too)."""
        return self._store

    async def save(self, *states: MeterState) -> None:
        """Write ``states`` through to SQLite (returns once committed)."""
        await self._store.submit(self.save_job(*states))

    def save_job(self, *states: MeterState) -> Callable[[sqlite3.Connection], None]:
        """What :meth:`save` writes, as a job for :attr:`store` (the states as they are
        now), for a caller that writes it in one transaction with other rows."""
        rows = [
            (
                s.meter_id,
                _ts(s.last_entry),
                s.clock_deviation_s,
                s.last_attempt,
                s.last_success,
                s.last_error,
                _int(s.reachable),
                s.reads_ok,
                s.reads_failed,
                s.consecutive_failures,
                _int(s.energised),
            )
            for s in states
        ]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO meter_state (meter_id, last_entry, clock_deviation_s,"
                " last_attempt, last_success, last_error, reachable, reads_ok, reads_failed,"
                " consecutive_failures, energised) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

        return job

    async def save_discovery(self, meter_id: str, at: datetime, summary: dict[str, Any]) -> None:
        """Keep ``summary`` (JSON-ready) as the meter's discovery (replaces the last one)."""
        row = (self.meter(meter_id).id, at.timestamp(), json.dumps(summary))

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO meter_discovery (meter_id, discovered, summary)"
                " VALUES (?,?,?)",
                row,
            )

        await self._store.submit(job)

    async def discovery(self, meter_id: str) -> dict[str, Any] | None:
        """The meter's last discovery summary (None: never discovered)."""
        self.meter(meter_id)

        def job(conn: sqlite3.Connection) -> list[tuple[str]]:
            return list(
                conn.execute("SELECT summary FROM meter_discovery WHERE meter_id = ?", (meter_id,))
            )

        rows = await self._store.submit(job)
        return dict(json.loads(rows[0][0])) if rows else None

    async def undiscovered(self) -> list[str]:
        """Configured meters without a stored discovery, in configuration order."""

        def job(conn: sqlite3.Connection) -> set[str]:
            return {str(r[0]) for r in conn.execute("SELECT meter_id FROM meter_discovery")}

        done = await self._store.submit(job)
        return [m for m in self._order if m not in done]

    async def close(self) -> None:
        await self._store.close()
