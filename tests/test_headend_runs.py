"""The head-end's use-case runners and their shared wrapper (issue 9 item 7, runs/)."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog
from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.runs.base import EV_CLOCK_REFUSED, Runner
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.store import StoreClosed
from smmc_gateway.usecases.clock import FixedTimeSource

from tests.security.requests_support import FakeUplink, dead_fleet, live_fleet


class Metrics:
    """The part of GatewayMetrics the failure paths use."""

    def __init__(self) -> None:
        self.done: list[tuple[str, bool]] = []

    def read_done(self, use_case: str, ok: bool) -> None:
        self.done.append((use_case, ok))


class Events(FakeUplink):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    async def publish_event(self, meter: str, events: Sequence[Any]) -> str:
        self.names += [e["name"] for e in events]
        return await super().publish_event(meter, events)


def _reads(path: Path) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT meter_id, use_case, ok FROM ds_read"))
    finally:
        conn.close()


async def test_a_failed_scheduled_read_is_counted_and_noted_once(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path, meters=1) as lab:
        metrics = Metrics()
        lab.head.metrics = metrics  # type: ignore[assignment]  # read at every run
        with pytest.raises((SessionError, OSError, TimeoutError)):
            await lab.head.collect("m0")
        with pytest.raises((SessionError, OSError, TimeoutError)):
            await lab.head.read_registers("m0", use_case="schedule")
        with pytest.raises((SessionError, OSError, TimeoutError)):
            await lab.head.switch("m0", "connect")  # a command: no read metric, no note
        assert metrics.done == [("collect", False), ("schedule", False)]
        path = lab.head.fleet.store.path
        assert _reads(path) == [("m0", "collect", 0), ("m0", "schedule", 0)]


async def test_a_refused_clock_sync_is_counted_failed_once_and_published(tmp_path: Path) -> None:
    """The shared session wrapper counts the failure; the clock runner turns the refusal
    into its event and reply, without counting it again."""
    async with live_fleet(tmp_path) as lab:
        metrics, events = Metrics(), Events()
        lab.head.metrics = metrics  # type: ignore[assignment]
        lab.head.publisher = events
        lab.head.time_source = FixedTimeSource(synced=False, offset_s=600.0)
        out = await lab.head.sync_clock(lab.meters[0])
        assert out.result is None and out.refused and "not synchronised" in out.refused
        assert metrics.done == [("clock", False)]
        assert events.names == [EV_CLOCK_REFUSED]


async def test_the_facade_delegates_every_operation_to_its_runner(tmp_path: Path) -> None:
    async with dead_fleet(tmp_path, meters=1) as lab:
        head = lab.head
        runners = {name: r for name, r in vars(head).items() if isinstance(r, Runner)}
        assert set(runners) == {
            "collection",
            "clock",
            "switching",
            "limiter",
            "events",
            "account",
            "discovery",
        }
        operations = [
            n
            for n, f in inspect.getmembers(HeadEnd, inspect.isfunction)
            if not n.startswith("_") and n not in ("model_of", "obis")
        ]
        assert operations == sorted(
            [  # the façade's operations, as before the split
                "alarm_events",
                "bulk_export",
                "collect",
                "discover",
                "emergency",
                "limit",
                "move",
                "poll",
                "poll_events",
                "read_on_demand",
                "read_registers",
                "schedule_events",
                "scheduled_read",
                "switch",
                "sync_clock",
            ]
        )
        for name in operations:
            owner = [r for r in runners.values() if hasattr(r, name)]
            assert len(owner) == 1, name
            calls: list[tuple[Any, ...]] = []
            is_async = inspect.iscoroutinefunction(getattr(type(owner[0]), name))

            def record(
                *args: Any,
                _calls: list[tuple[Any, ...]] = calls,
                _async: bool = is_async,
                **kw: Any,
            ) -> Any:
                _calls.append(args)

                async def nothing() -> str:
                    return "ran"

                return nothing() if _async else "ran"

            setattr(owner[0], name, record)
            params = list(inspect.signature(getattr(HeadEnd, name)).parameters.values())[1:]
            args = [
                object()
                for p in params
                if p.default is inspect.Parameter.empty
                and p.kind is not inspect.Parameter.KEYWORD_ONLY
            ]
            got = getattr(head, name)(*args)
            if inspect.isawaitable(got):
                got = await got
            assert got in ("ran", None) and len(calls) == 1, name
            assert calls[0][: len(args)] == tuple(args), name


def _count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def test_a_collection_keeps_its_bulk_data_only_with_its_progress(tmp_path: Path) -> None:
    """The end of a collection (the bulk export's copy, the meter's progress, the read's
    outcome) is one transaction: when the progress cannot be written, the kept copy is
    not written either and the read is neither counted nor noted as a success."""
    async with live_fleet(tmp_path) as lab:
        metrics = Metrics()
        lab.head.metrics = metrics  # type: ignore[assignment]
        store = lab.head.fleet.store
        store.execute_script(  # the session's own state write (no progress yet) passes
            "CREATE TRIGGER refuse_progress BEFORE INSERT ON meter_state "
            "WHEN NEW.last_entry IS NOT NULL BEGIN SELECT RAISE(ABORT, 'progress refused'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="progress refused"):
            await lab.head.collect(lab.meters[0])
        assert _count(store.path, "bulk_pending") == 0
        assert _reads(store.path) == []
        assert ("collect", True) not in metrics.done


async def test_a_read_outcome_that_cannot_be_noted_leaves_the_collection_written(
    tmp_path: Path,
) -> None:
    async with live_fleet(tmp_path) as lab:
        metrics = Metrics()
        lab.head.metrics = metrics  # type: ignore[assignment]
        store = lab.head.fleet.store
        store.execute_script("ALTER TABLE ds_read RENAME TO ds_read_gone")
        meter = lab.meters[0]
        with structlog.testing.capture_logs() as logs:
            result = await lab.head.collect(meter)
        assert result.profile is not None and result.profile.newest is not None
        assert metrics.done == [("collect", True)]
        failed = [e["kind"] for e in logs if e["event"] == "datastore_write_failed"]
        assert failed.count("read") == 1  # (the readings' copy prunes ds_read too: fails)
        assert _count(store.path, "bulk_pending") == 1
        conn = sqlite3.connect(store.path)
        try:
            (saved,) = conn.execute(
                "SELECT last_entry FROM meter_state WHERE meter_id=?", (meter,)
            ).fetchone()
        finally:
            conn.close()
        assert saved is not None


def _state_row(path: Path, meter: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT last_entry, reads_ok, last_success FROM meter_state WHERE meter_id=?", (meter,)
        ).fetchone()
        return tuple(row) if row else ()
    finally:
        conn.close()


async def test_a_collection_writes_the_fleet_database_once_and_keeps_its_success(
    tmp_path: Path,
) -> None:
    """Per collection one transaction: the bulk copy, the meter's state (the session's
    success, the progress), the data store's copy of what was published and the outcome;
    the session's success is not saved on its own before."""
    async with live_fleet(tmp_path) as lab:
        store, meter = lab.head.fleet.store, lab.meters[0]
        jobs: list[str] = []
        submit = store.submit

        async def counting(fn: Any) -> Any:
            name = getattr(fn, "__qualname__", "?")
            if "prune" not in name:  # (the retention's, now and then)
                jobs.append(name)
            return await submit(fn)

        store.submit = counting  # type: ignore[method-assign]
        for n in (1, 2):  # the first read (rows, progress) and one with nothing new
            jobs.clear()
            await lab.head.collect(meter)
            assert len(jobs) == 1, jobs
            last_entry, reads_ok, last_success = _state_row(store.path, meter)
            assert last_entry is not None and reads_ok == n and last_success is not None
            assert _count(store.path, "ds_register") > 0 and _count(store.path, "ds_interval") > 0


async def test_a_data_store_copy_that_fails_does_not_hold_the_progress(
    tmp_path: Path,
) -> None:
    """The data store's copy fails on its own (its blocks do not make rows): logged with
    its kind, the progress, the success and the bulk copy are written all the same."""
    async with live_fleet(tmp_path) as lab:
        store, meter = lab.head.fleet.store, lab.meters[0]
        record = lab.head.datastore.record_readings_job

        def broken(meter_id: str, readings: Any, blocks: Any) -> Any:
            return record(meter_id, readings, b'[{"IntervalReadings": [{}]}]')  # no timeStamp

        lab.head.datastore.record_readings_job = broken  # type: ignore[method-assign]
        with structlog.testing.capture_logs() as logs:
            await lab.head.collect(meter)
        failed = [e for e in logs if e["event"] == "datastore_write_failed"]
        assert [e["kind"] for e in failed] == ["readings"], logs
        assert "timeStamp" in failed[0]["error"]
        last_entry, reads_ok, _ = _state_row(store.path, meter)
        assert last_entry is not None and reads_ok == 1
        assert _count(store.path, "bulk_pending") == 1
        assert _count(store.path, "ds_interval") == 0 and _count(store.path, "ds_register") == 0


async def test_a_collection_whose_publish_fails_still_saves_the_sessions_success(
    tmp_path: Path,
) -> None:
    async with live_fleet(tmp_path) as lab:
        store, meter = lab.head.fleet.store, lab.meters[0]

        async def refused(*args: Any, **kwargs: Any) -> str:
            raise StoreClosed("outbox closed")

        lab.head.publisher.publish_reading = refused  # type: ignore[method-assign]
        with pytest.raises(StoreClosed):
            await lab.head.collect(meter)
        last_entry, reads_ok, _ = _state_row(store.path, meter)
        assert reads_ok == 1 and last_entry is None  # the success, not the progress
        assert _count(store.path, "bulk_pending") == 0


async def test_progress_not_written_is_not_kept_in_memory_either(tmp_path: Path) -> None:
    """When the last transaction fails, the next collection reads the same rows again."""
    async with live_fleet(tmp_path) as lab:
        store, meter = lab.head.fleet.store, lab.meters[0]
        store.execute_script(
            "CREATE TRIGGER refuse_progress BEFORE INSERT ON meter_state "
            "WHEN NEW.last_entry IS NOT NULL BEGIN SELECT RAISE(ABORT, 'progress refused'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="progress refused"):
            await lab.head.collect(meter)
        assert lab.head.fleet.state(meter).last_entry is None
        store.execute_script("DROP TRIGGER refuse_progress")
        result = await lab.head.collect(meter)
        assert result.profile is not None and result.profile.rows > 0
        assert _state_row(store.path, meter)[0] is not None


async def test_a_failed_publish_is_the_error_raised_even_when_the_state_cannot_be_saved(
    tmp_path: Path,
) -> None:
    async with live_fleet(tmp_path) as lab:
        store, meter = lab.head.fleet.store, lab.meters[0]

        async def refused(*args: Any, **kwargs: Any) -> str:
            raise StoreClosed("outbox closed")

        lab.head.publisher.publish_reading = refused  # type: ignore[method-assign]
        store.execute_script(
            "CREATE TRIGGER refuse_state BEFORE INSERT ON meter_state "
            "BEGIN SELECT RAISE(ABORT, 'state refused'); END"
        )
        with structlog.testing.capture_logs() as logs, pytest.raises(StoreClosed, match="outbox"):
            await lab.head.collect(meter)
        failed = [e for e in logs if e["event"] == "meter_state_save_failed"]
        assert len(failed) == 1 and "state refused" in failed[0]["error"]
