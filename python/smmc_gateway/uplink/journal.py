"""The inbound command journal: each request is recorded before it is acknowledged.

A request (``cmd/{noun}``) is journaled durably by its ``correlationId`` before the
gateway sends the PUBACK of the inbound message. Its reply is stored in the outbox
and the request marked replied in the same transaction (:meth:`CommandJournal.mark_replied_sql`
runs inside :meth:`Outbox.add_many`), so every request gets exactly one reply: after
a restart, requests journaled but not replied are dispatched again
(:meth:`CommandJournal.unreplied`), and a second delivery of a known correlationId
is not executed again.
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
  payload TEXT NOT NULL, received REAL NOT NULL, replied REAL, result TEXT);
"""


class AlreadyReplied(RuntimeError):
    """A second reply to the same correlationId was refused (exactly one reply per request)."""


@dataclass(frozen=True)
class Command:
    """A journaled request."""

    correlation_id: str
    noun: str
    verb: str
    payload: dict[str, Any]


class CommandJournal:
    """Journal of inbound requests on a :class:`Store`."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        store.execute_script(SCHEMA)

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
        """Requests journaled but not yet replied, oldest first."""

        def job(conn: sqlite3.Connection) -> list[Command]:
            return [
                Command(r[0], r[1], r[2], json.loads(r[3]))
                for r in conn.execute(
                    "SELECT correlation_id, noun, verb, payload FROM command WHERE replied IS NULL "
                    "ORDER BY received"
                )
            ]

        return await self.store.submit(job)
