"""The inbound command journal: each request is recorded before it is acknowledged.

A request (``cmd/{noun}``) is journaled durably by its ``correlationId`` before the
gateway sends the PUBACK of the inbound message. Its reply is stored in the outbox
and the request marked replied in the same transaction (:meth:`CommandJournal.mark_replied_sql`
runs inside :meth:`Outbox.add_many`), so every request gets exactly one reply: after
a restart, requests journaled but not replied are dispatched again
(:meth:`CommandJournal.unreplied`), and a second delivery of a known correlationId
is not executed again.

Poison commands: each start of a request's handling is counted durably
(:meth:`CommandJournal.begin_attempt`) before the handler runs, so a request whose handling
kills the process is seen at the next start with its count; once the count reaches the
limit it is no longer run (the uplink answers it FAILED ``PoisonCommand``). A handling cut
short by a clean stop is not an attempt (:meth:`CommandJournal.undo_attempt`).
Answered requests are pruned after a retention time (:meth:`CommandJournal.prune`);
unanswered ones never are.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smmc_gateway.uplink.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS command (
  correlation_id TEXT PRIMARY KEY, noun TEXT NOT NULL, verb TEXT NOT NULL,
  payload TEXT NOT NULL, received REAL NOT NULL, replied REAL, result TEXT,
  attempts INTEGER NOT NULL DEFAULT 0);
"""
# A journal written before attempts were counted gets the column (0 for every row).
MIGRATE_ATTEMPTS = "ALTER TABLE command ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
INDEX = "CREATE INDEX IF NOT EXISTS command_replied ON command (replied);"


class AlreadyReplied(RuntimeError):
    """A second reply to the same correlationId was refused (exactly one reply per request)."""


@dataclass(frozen=True)
class Command:
    """A journaled request."""

    correlation_id: str
    noun: str
    verb: str
    payload: dict[str, Any]
    attempts: int = 0
    """Handlings started and not ended by a reply or a clean stop (crashes, timeouts)."""


@dataclass(frozen=True)
class Attempt:
    """What :meth:`CommandJournal.begin_attempt` decided: ``started`` False means the
    request already reached the limit and must not run; ``count`` is its attempts so far
    (this one included when started)."""

    started: bool
    count: int


class CommandJournal:
    """Journal of inbound requests on a :class:`Store`."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        store.execute_script(SCHEMA)
        try:
            store.execute_script(MIGRATE_ATTEMPTS)
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # it is there already: nothing to do
                raise
        store.execute_script(INDEX)

    async def record(self, cmd: Command) -> bool:
        """Journal ``cmd`` durably; False when its correlationId was already known."""
        now = self.clock()
        body = json.dumps(cmd.payload, separators=(",", ":"))

        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO command (correlation_id, noun, verb, payload,"
                " received) VALUES (?,?,?,?,?)",
                (cmd.correlation_id, cmd.noun, cmd.verb, body, now),
            )
            return cur.rowcount == 1

        return await self.store.submit(job)

    def mark_replied_sql(
        self, correlation_id: str, noun: str, verb: str, result: str
    ) -> Callable[[sqlite3.Connection], None]:
        """A job part that marks a request replied (inserting it if it was never journaled,
        as for a malformed request answered at once). It raises :class:`AlreadyReplied`
        (rolling back the reply stored with it) if the request was already answered."""
        now = self.clock()

        def part(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT replied FROM command WHERE correlation_id=?", (correlation_id,)
            ).fetchone()
            if row is not None and row[0] is not None:
                raise AlreadyReplied(f"correlationId {correlation_id!r} was already replied")
            conn.execute(
                "INSERT INTO command (correlation_id, noun, verb, payload, received, "
                "replied, result) VALUES (?,?,?,'{}',?,?,?) ON CONFLICT(correlation_id) "
                "DO UPDATE SET replied=excluded.replied, result=excluded.result",
                (correlation_id, noun, verb, now, now, result),
            )

        return part

    async def is_replied(self, correlation_id: str) -> bool | None:
        """True/False for a known request, None for an unknown one."""

        def job(conn: sqlite3.Connection) -> bool | None:
            row = conn.execute(
                "SELECT replied FROM command WHERE correlation_id=?", (correlation_id,)
            ).fetchone()
            return None if row is None else row[0] is not None

        return await self.store.submit(job)

    async def unreplied(self) -> list[Command]:
        """Requests journaled but not yet replied, oldest first, with their attempts."""

        def job(conn: sqlite3.Connection) -> list[Command]:
            return [
                Command(r[0], r[1], r[2], json.loads(r[3]), r[4])
                for r in conn.execute(
                    "SELECT correlation_id, noun, verb, payload, attempts FROM command "
                    "WHERE replied IS NULL ORDER BY received"
                )
            ]

        return await self.store.submit(job)

    async def begin_attempt(self, correlation_id: str, max_attempts: int) -> Attempt:
        """Count one more handling of an unreplied request, durably, unless it already
        had ``max_attempts``: then nothing is counted and ``started`` is False.

        Raises :class:`AlreadyReplied` for a request answered meanwhile and ``KeyError``
        for one the journal does not hold."""

        def job(conn: sqlite3.Connection) -> Attempt:
            row = conn.execute(
                "SELECT attempts, replied FROM command WHERE correlation_id=?", (correlation_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"correlationId {correlation_id!r} is not in the journal")
            if row[1] is not None:
                raise AlreadyReplied(f"correlationId {correlation_id!r} was already replied")
            if row[0] >= max_attempts:
                return Attempt(False, row[0])
            conn.execute(
                "UPDATE command SET attempts=attempts+1 WHERE correlation_id=?", (correlation_id,)
            )
            return Attempt(True, row[0] + 1)

        return await self.store.submit(job)

    async def undo_attempt(self, correlation_id: str) -> None:
        """Take back the attempt of a handling a clean stop cut short (it did not fail)."""
        await self.store.submit(
            lambda c: c.execute(
                "UPDATE command SET attempts=MAX(attempts-1, 0) "
                "WHERE correlation_id=? AND replied IS NULL",
                (correlation_id,),
            )
        )

    async def attempts(self, correlation_id: str) -> int | None:
        """The attempts counted for a request (None when it is not in the journal)."""

        def job(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT attempts FROM command WHERE correlation_id=?", (correlation_id,)
            ).fetchone()
            return None if row is None else int(row[0])

        return await self.store.submit(job)

    async def prune(self, retention_s: float) -> int:
        """Delete requests answered more than ``retention_s`` ago; return how many.
        Unanswered requests are kept whatever their age."""
        cutoff = self.clock() - retention_s
        return await self.store.submit(
            lambda c: (
                c.execute(
                    "DELETE FROM command WHERE replied IS NOT NULL AND replied < ?", (cutoff,)
                ).rowcount
            )
        )
