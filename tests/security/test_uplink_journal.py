"""The command journal: attempts survive in an old database, answered requests are pruned.

A journal written before attempts were counted gets the column at open (every request
at 0 attempts). Answered requests older than the retention are deleted, at start and
then periodically; unanswered ones are kept whatever their age.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from smmc_gateway.uplink import Uplink, UplinkConfig
from smmc_gateway.uplink.journal import AlreadyReplied, Command, CommandJournal
from smmc_gateway.uplink.store import Store
from uplink_helpers import wait_until

DAY = 86400.0
OLD_SCHEMA = """
CREATE TABLE command (
  correlation_id TEXT PRIMARY KEY, noun TEXT NOT NULL, verb TEXT NOT NULL,
  payload TEXT NOT NULL, received REAL NOT NULL, replied REAL, result TEXT);
INSERT INTO command VALUES ('c-old', 'EndDeviceControls', 'execute', '{"x":1}', 1.0, NULL, NULL);
INSERT INTO command VALUES ('c-done', 'EndDeviceControls', 'execute', '{}', 1.0, 2.0, 'OK');
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def cmd(cid: str) -> Command:
    return Command(cid, "EndDeviceControls", "execute", {"cid": cid})


async def test_an_old_journal_gets_the_attempts_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    store = Store(db)
    journal = CommandJournal(store)
    CommandJournal(store)  # opening again finds the column there
    try:
        (old,) = await journal.unreplied()
        assert (old.correlation_id, old.payload, old.attempts) == ("c-old", {"x": 1}, 0)
        first = await journal.begin_attempt("c-old", 2)
        second = await journal.begin_attempt("c-old", 2)
        third = await journal.begin_attempt("c-old", 2)
        assert [(a.started, a.count) for a in (first, second, third)] == [
            (True, 1),
            (True, 2),
            (False, 2),
        ]
        await journal.undo_attempt("c-old")
        assert await journal.attempts("c-old") == 1
        with pytest.raises(AlreadyReplied):
            await journal.begin_attempt("c-done", 2)
    finally:
        await store.close()


async def test_answered_requests_are_pruned_after_the_retention_unanswered_never(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    store = Store(tmp_path / "j.db")
    journal = CommandJournal(store, clock)
    try:
        for cid in ("c-early", "c-late", "c-open"):
            assert await journal.record(cmd(cid))
        await store.submit(
            journal.mark_replied_sql("c-early", "EndDeviceControls", "execute", "OK")
        )
        clock.now += 10 * DAY
        await store.submit(
            journal.mark_replied_sql("c-late", "EndDeviceControls", "execute", "FAILED")
        )
        clock.now += 25 * DAY  # c-early answered 35 days ago, c-late 25
        assert await journal.prune(30 * DAY) == 1
        assert await journal.is_replied("c-early") is None  # gone
        assert await journal.is_replied("c-late") is True
        clock.now += 365 * DAY
        assert await journal.prune(30 * DAY) == 1
        assert [c.correlation_id for c in await journal.unreplied()] == ["c-open"]  # kept
    finally:
        await store.close()


async def test_the_uplink_prunes_at_start_and_then_periodically(tmp_path: Path) -> None:
    clock = FakeClock()
    db = tmp_path / "u.db"
    cfg = UplinkConfig(
        gateway_id="gw-0001",
        db_path=db,
        port=1,
        backoff_min_s=0.05,
        journal_retention_s=30 * DAY,
        prune_interval_s=0.05,
    )
    up = Uplink(cfg, clock=clock)
    for cid in ("c-1", "c-2"):
        assert await up.journal.record(cmd(cid))
        await up.store.submit(
            up.journal.mark_replied_sql(cid, "EndDeviceControls", "execute", "OK")
        )
        clock.now += 20 * DAY
    # c-1 was answered 40 days ago, c-2 20 days ago: only c-1 goes at start
    task = asyncio.get_running_loop().create_task(up.run())
    try:
        await wait_until(lambda: up.counters.journal_pruned == 1)
        assert await up.journal.is_replied("c-2") is True
        clock.now += 20 * DAY  # later, while it runs, c-2 is old enough too
        await wait_until(lambda: up.counters.journal_pruned == 2)
        assert await up.journal.is_replied("c-2") is None
    finally:
        await up.stop(0)
        await asyncio.wait_for(task, 10)
