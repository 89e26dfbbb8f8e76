"""The durable outbox: every outbound message is committed here before its first publish.

A row is deleted only after a PUBACK with a success reason code (:meth:`Outbox.ack`);
a permanent refusal by the broker moves it to the ``dead_letter`` table
(:meth:`Outbox.dead_letter`). Rows are drained by priority class, then age
(:class:`MessageClass`). TELEMETRY and BULK may have a TTL and a size cap and then
age out oldest first (counted in :attr:`Outbox.dropped`, reported to ``on_drop``);
REPLY and EVENT rows are never dropped. ``messageId`` and ``seq`` are assigned here,
at store time, so a re-send carries the same bytes. A draft with a caller-chosen
``message_id`` that is already pending here is not stored again (its id is returned).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smmc_gateway.uplink.envelope import Draft, MessageClass, render
from smmc_gateway.uplink.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  cls INTEGER NOT NULL, message_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
  payload BLOB NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (cls, id);
CREATE TABLE IF NOT EXISTS dead_letter (
  id INTEGER PRIMARY KEY, cls INTEGER NOT NULL, message_id TEXT NOT NULL, topic TEXT NOT NULL,
  payload BLOB NOT NULL, created REAL NOT NULL, refused_at REAL NOT NULL,
  reason_code INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

DROPPABLE = frozenset({MessageClass.TELEMETRY, MessageClass.BULK})


@dataclass(frozen=True)
class ClassLimit:
    """Limits of one droppable class: ``ttl_s`` (age) and ``max_rows`` (count); None = no limit."""

    ttl_s: float | None = None
    max_rows: int | None = None


@dataclass(frozen=True)
class OutboxRow:
    """A stored message as the publisher sees it."""

    id: int
    cls: MessageClass
    message_id: str
    topic: str
    payload: bytes
    retain: bool
    created: float


@dataclass
class ClassBacklog:
    depth: int
    oldest_age_s: float | None


@dataclass
class OutboxCounters:
    """Plain counters; whoever wires metrics reads them."""

    stored: int = 0
    acked: int = 0
    dead_lettered: int = 0
    dropped: dict[MessageClass, int] = field(default_factory=lambda: {c: 0 for c in MessageClass})


class Outbox:
    """The priority outbox on a :class:`Store`. Create with :meth:`open`."""

    def __init__(
        self,
        store: Store,
        source: str,
        limits: dict[MessageClass, ClassLimit],
        clock: Callable[[], float],
        on_drop: Callable[[MessageClass, int], None] | None,
    ):
        self.store = store
        self.source = source
        self.limits = limits
        self.clock = clock
        self.on_drop = on_drop
        self.counters = OutboxCounters()

    @classmethod
    def open(
        cls,
        store: Store,
        source: str,
        limits: dict[MessageClass, ClassLimit] | None = None,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[MessageClass, int], None] | None = None,
    ) -> Outbox:
        limits = dict(limits or {})
        for klass, lim in limits.items():
            if klass not in DROPPABLE and (lim.ttl_s is not None or lim.max_rows is not None):
                raise ValueError(
                    f"outbox limits: class {klass.name} is never dropped; only "
                    f"{sorted(c.name for c in DROPPABLE)} may have a ttl or cap"
                )
            if lim.max_rows is not None and lim.max_rows < 1:
                raise ValueError(
                    f"outbox limits: {klass.name}.max_rows must be >= 1, got {lim.max_rows}"
                )
        store.execute_script(SCHEMA)
        return cls(store, source, limits, clock, on_drop)

    async def add(self, draft: Draft) -> str:
        """Store one message durably; return its messageId."""
        return (await self.add_many([draft]))[0]

    async def add_many(
        self, drafts: Sequence[Draft], also: Callable[[sqlite3.Connection], None] | None = None
    ) -> list[str]:
        """Store many messages in one transaction (plus ``also(conn)`` atomically with them)."""
        now = self.clock()

        def job(conn: sqlite3.Connection) -> tuple[list[str], dict[MessageClass, int], int]:
            row = conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            seq = int(row[0]) if row else 0
            ids: list[str] = []
            rows = []
            taken: set[str] = set()
            stamp = datetime.fromtimestamp(now, UTC)
            for d in drafts:
                if d.message_id is not None:
                    mid = d.message_id
                    if (
                        mid in taken
                        or conn.execute(
                            "SELECT 1 FROM outbox WHERE message_id=?", (mid,)
                        ).fetchone()
                    ):
                        ids.append(mid)  # already pending: store it once only
                        continue
                else:
                    mid = str(uuid.uuid4())
                taken.add(mid)
                seq += 1
                body = render(d, message_id=mid, seq=seq, timestamp=stamp, source=self.source)
                rows.append((int(d.cls), mid, d.topic, body, int(d.retain), now))
                ids.append(mid)
            conn.executemany(
                "INSERT INTO outbox (cls, message_id, topic, payload, retain, created)"
                " VALUES (?,?,?,?,?,?)",
                rows,
            )
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (seq,),
            )
            if also is not None:
                also(conn)
            return ids, self._enforce(conn, now, {d.cls for d in drafts}), len(rows)

        ids, dropped, stored = await self.store.submit(job)
        self.counters.stored += stored
        self._count_drops(dropped)
        return ids

    def _enforce(
        self, conn: sqlite3.Connection, now: float, classes: set[MessageClass]
    ) -> dict[MessageClass, int]:
        dropped: dict[MessageClass, int] = {}
        for klass in classes & DROPPABLE:
            lim = self.limits.get(klass)
            if lim is None:
                continue
            n = 0
            if lim.ttl_s is not None:
                n += conn.execute(
                    "DELETE FROM outbox WHERE cls=? AND created < ?", (int(klass), now - lim.ttl_s)
                ).rowcount
            if lim.max_rows is not None:
                n += conn.execute(
                    "DELETE FROM outbox WHERE cls=? AND id <= (SELECT id FROM outbox WHERE cls=? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (int(klass), int(klass), lim.max_rows),
                ).rowcount
            if n:
                dropped[klass] = n
        return dropped

    def _count_drops(self, dropped: dict[MessageClass, int]) -> None:
        for klass, n in dropped.items():
            self.counters.dropped[klass] += n
            if self.on_drop is not None:
                self.on_drop(klass, n)

    async def expire(self) -> dict[MessageClass, int]:
        """Apply TTL and caps now (the publisher calls this periodically)."""
        now = self.clock()
        dropped = await self.store.submit(lambda c: self._enforce(c, now, set(DROPPABLE)))
        self._count_drops(dropped)
        return dropped

    async def next_batch(self, limit: int, exclude: Collection[int] = ()) -> list[OutboxRow]:
        """Up to ``limit`` rows by class then age, skipping the ids in ``exclude`` (in flight)."""
        skip = set(exclude)

        def job(conn: sqlite3.Connection) -> list[OutboxRow]:
            out: list[OutboxRow] = []
            cur = conn.execute(
                "SELECT id, cls, message_id, topic, payload, retain, created "
                "FROM outbox ORDER BY cls, id"
            )
            for r in cur:
                if r[0] in skip:
                    continue
                out.append(
                    OutboxRow(r[0], MessageClass(r[1]), r[2], r[3], bytes(r[4]), bool(r[5]), r[6])
                )
                if len(out) >= limit:
                    break
            return out

        return await self.store.submit(job)

    async def ack(self, row_id: int) -> None:
        """The broker accepted the message: delete it."""
        await self.store.submit(lambda c: c.execute("DELETE FROM outbox WHERE id=?", (row_id,)))
        self.counters.acked += 1

    async def dead_letter(self, row_id: int, reason_code: int, reason: str) -> None:
        """The broker refused the message for good: move it to ``dead_letter``."""
        now = self.clock()

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO dead_letter SELECT id, cls, message_id, topic, "
                "payload, created, ?, ?, ? FROM outbox WHERE id=?",
                (now, reason_code, reason, row_id),
            )
            conn.execute("DELETE FROM outbox WHERE id=?", (row_id,))

        await self.store.submit(job)
        self.counters.dead_lettered += 1

    async def dead_letters(self) -> list[tuple[str, str, int, str]]:
        """(messageId, topic, reason code, reason) of every refused message."""
        return await self.store.submit(
            lambda c: [
                tuple(r)
                for r in c.execute(
                    "SELECT message_id, topic, reason_code, reason FROM dead_letter ORDER BY id"
                )
            ]
        )

    async def backlog(self) -> dict[MessageClass, ClassBacklog]:
        """Depth and oldest age per class."""
        now = self.clock()

        def job(conn: sqlite3.Connection) -> dict[MessageClass, ClassBacklog]:
            out = {c: ClassBacklog(0, None) for c in MessageClass}
            for klass, n, oldest in conn.execute(
                "SELECT cls, COUNT(*), MIN(created) FROM outbox GROUP BY cls"
            ):
                out[MessageClass(klass)] = ClassBacklog(n, max(0.0, now - oldest))
            return out

        return await self.store.submit(job)
