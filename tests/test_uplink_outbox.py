"""The durable outbox and the command journal on a real SQLite file (no broker)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.envelope import MessageClass
from smmc_gateway.uplink.journal import AlreadyReplied, Command, CommandJournal
from smmc_gateway.uplink.outbox import ClassLimit, Outbox
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics

T = Topics("gw-0001")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "uplink.db")
    yield s
    await s.close()


def reading(meter: str) -> envelope.Draft:
    return envelope.meter_readings(T, meter, [])


def event(meter: str) -> envelope.Draft:
    return envelope.end_device_events(
        T,
        meter,
        [envelope.event("smmc.alarm.outage", mrid="e")],
    )


async def test_priority_then_age_and_stable_ids(store: Store) -> None:
    ob = Outbox.open(store, "gw-0001")
    bulk = await ob.add(envelope.bulk_readings(T, [{"meter": "m0"}]))
    r1, r2 = await ob.add_many([reading("m1"), reading("m2")])
    ev = await ob.add(event("m1"))
    rep = await ob.add(envelope.reply(T, "EndDeviceControls", "c-1", "OK"))
    rows = await ob.next_batch(10)
    assert [r.message_id for r in rows] == [rep, ev, r1, r2, bulk]
    assert [r.cls for r in rows] == [
        MessageClass.REPLY,
        MessageClass.EVENT,
        MessageClass.TELEMETRY,
        MessageClass.TELEMETRY,
        MessageClass.BULK,
    ]
    # the stored bytes carry the same messageId and a monotonic seq
    docs = [json.loads(r.payload) for r in rows]
    assert [d["header"]["messageId"] for d in docs] == [r.message_id for r in rows]
    assert sorted(d["header"]["seq"] for d in docs) == [1, 2, 3, 4, 5]
    # in-flight rows are skipped; ack deletes
    assert [r.message_id for r in await ob.next_batch(2, exclude={rows[0].id})] == [ev, r1]
    await ob.ack(rows[0].id)
    assert (await ob.next_batch(1))[0].message_id == ev
    backlog = await ob.backlog()
    assert backlog[MessageClass.REPLY].depth == 0 and backlog[MessageClass.TELEMETRY].depth == 2


async def test_survives_reopen_and_seq_continues(tmp_path: Path) -> None:
    s = Store(tmp_path / "u.db")
    ob = Outbox.open(s, "gw-0001")
    ids = await ob.add_many([reading(f"m{i}") for i in range(3)])
    await s.close()
    s2 = Store(tmp_path / "u.db")
    ob2 = Outbox.open(s2, "gw-0001")
    rows = await ob2.next_batch(10)
    assert [r.message_id for r in rows] == ids
    new = await ob2.add(reading("m9"))
    last = json.loads((await ob2.next_batch(10))[-1].payload)
    assert last["header"]["messageId"] == new and last["header"]["seq"] == 4
    await s2.close()


async def test_telemetry_ages_out_oldest_first_events_kept(store: Store) -> None:
    clock = FakeClock()
    drops: list[tuple[MessageClass, int]] = []
    ob = Outbox.open(
        store,
        "gw-0001",
        {MessageClass.TELEMETRY: ClassLimit(ttl_s=60, max_rows=3)},
        clock,
        lambda c, n: drops.append((c, n)),
    )
    events = [await ob.add(event("m1")) for _ in range(5)]
    ids = [await ob.add(reading(f"m{i}")) for i in range(5)]  # cap 3: m0, m1 go
    tele = [r.message_id for r in await ob.next_batch(100) if r.cls is MessageClass.TELEMETRY]
    assert tele == ids[2:]
    assert ob.counters.dropped[MessageClass.TELEMETRY] == 2
    clock.now += 30
    newer = await ob.add(reading("m9"))  # cap again drops the oldest (m2)
    clock.now += 40  # m3, m4 are now 70 s old, m9 40 s
    assert await ob.expire() == {MessageClass.TELEMETRY: 2}
    rows = await ob.next_batch(100)
    assert [r.message_id for r in rows if r.cls is MessageClass.TELEMETRY] == [newer]
    assert [r.message_id for r in rows if r.cls is MessageClass.EVENT] == events
    assert ob.counters.dropped[MessageClass.TELEMETRY] == 5
    assert sum(n for _, n in drops) == 5 and all(c is MessageClass.TELEMETRY for c, _ in drops)
    backlog = await ob.backlog()
    assert backlog[MessageClass.TELEMETRY].oldest_age_s == pytest.approx(40)


def test_never_dropped_classes_cannot_have_limits(tmp_path: Path) -> None:
    s = Store(tmp_path / "x.db")
    with pytest.raises(ValueError, match="EVENT is never dropped"):
        Outbox.open(s, "gw", {MessageClass.EVENT: ClassLimit(ttl_s=1)})


async def test_dead_letter(store: Store) -> None:
    ob = Outbox.open(store, "gw-0001")
    mid = await ob.add(reading("m1"))
    row = (await ob.next_batch(1))[0]
    await ob.dead_letter(row.id, 0x87, "Not authorized")
    assert await ob.next_batch(1) == []
    assert await ob.dead_letters() == [(mid, T.readings("m1"), 0x87, "Not authorized")]


async def test_journal_exactly_once(store: Store) -> None:
    ob = Outbox.open(store, "gw-0001")
    j = CommandJournal(store)
    cmd = Command("c-1", "EndDeviceControls", "execute", {"x": 1})
    assert await j.record(cmd) is True
    assert await j.record(cmd) is False  # duplicate delivery
    assert await j.unreplied() == [cmd]
    assert await j.is_replied("c-1") is False
    await ob.add_many(
        [envelope.reply(T, cmd.noun, "c-1", "OK")],
        also=j.mark_replied_sql("c-1", cmd.noun, cmd.verb, "OK"),
    )
    assert await j.unreplied() == []
    assert await j.is_replied("c-1") is True
    with pytest.raises(AlreadyReplied, match="c-1"):  # a second reply is refused, not stored
        await ob.add_many(
            [envelope.reply(T, cmd.noun, "c-1", "FAILED")],
            also=j.mark_replied_sql("c-1", cmd.noun, cmd.verb, "FAILED"),
        )
    assert len(await ob.next_batch(10)) == 1
    assert await j.is_replied("c-2") is None


async def test_failing_job_does_not_poison_the_batch(store: Store) -> None:
    ob = Outbox.open(store, "gw-0001")

    def boom(conn: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await ob.add_many([reading("m1")], also=boom)  # type: ignore[arg-type]
    assert await ob.next_batch(10) == []  # rolled back with its job
    await ob.add(reading("m2"))
    assert len(await ob.next_batch(10)) == 1


async def test_ddl_while_the_writer_is_busy_never_breaks_a_batch(tmp_path: Path) -> None:
    """execute_script (DDL from the event loop, e.g. a table created on first use)
    must wait for the writer's batch: executescript() commits the open transaction,
    which would destroy the batch's savepoints ("no such savepoint: job")."""
    import asyncio
    import sqlite3

    from smmc_gateway.uplink.store import Store

    store = Store(tmp_path / "ddl.sqlite")
    store.execute_script("CREATE TABLE IF NOT EXISTS t (n INTEGER)")

    def insert(conn: sqlite3.Connection) -> None:
        for n in range(200):
            conn.execute("INSERT INTO t VALUES (?)", (n,))

    jobs = [asyncio.ensure_future(store.submit(insert)) for _ in range(50)]
    for i in range(50):
        store.execute_script(f"CREATE TABLE IF NOT EXISTS extra{i} (x INTEGER)")
        await asyncio.sleep(0)
    await asyncio.gather(*jobs)

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

    assert await store.submit(count) == 50 * 200
    await store.close()


async def test_a_batch_wakes_the_event_loop_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs committed together are settled by one call into the event loop (each
    call_soon_threadsafe writes to its self-pipe), each with its own outcome and in
    submission order."""
    import asyncio
    import sqlite3
    import threading

    from smmc_gateway.uplink.store import Store

    store = Store(tmp_path / "wake.sqlite")
    loop = asyncio.get_running_loop()
    wakes: list[object] = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kw: Any) -> Any:
        wakes.append(callback)
        return call_soon_threadsafe(callback, *args, **kw)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    gate, started = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> str:
        started.set()
        gate.wait(10)  # the writer is busy: what follows queues up for one batch
        return "held"

    order: list[int] = []

    def job(n: int) -> Any:
        def run(conn: sqlite3.Connection) -> int:
            if n == 3:
                raise ValueError("job 3 fails alone")
            return n

        return run

    first = asyncio.ensure_future(store.submit(hold))
    assert await asyncio.to_thread(started.wait, 10)  # the writer runs the first job

    async def one(n: int) -> int:
        try:
            return await store.submit(job(n))
        finally:
            order.append(n)

    rest = [asyncio.ensure_future(one(n)) for n in range(8)]
    await asyncio.sleep(0)
    before = len(wakes)
    gate.set()
    assert await first == "held"
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert [r if not isinstance(r, ValueError) else "failed" for r in results] == [
        0,
        1,
        2,
        "failed",
        4,
        5,
        6,
        7,
    ]
    assert order == list(range(8))
    assert len(wakes) - before == 2  # the held job's batch, then the batch of 8
    await store.close()
