"""Invocation counters that survive a crash: ours never reused, theirs never going back.

Suite 0 ciphering is AES-GCM with IV = system title || invocation counter: one
reused counter under the same key leaks the authentication key. So the
client's outgoing counter is reserved in blocks (default 1,000) persisted to
SQLite (``synchronous=FULL``: the commit is on disk) *before* any counter of
the block is used; after a crash the store continues from the end of the last
reserved block, skipping at most one block.

The other direction: a response or push whose counter is not greater than the
last seen for that server system title is a replay and is refused with
:class:`~smmc_gateway.dlms.errors.SecurityFailure`. Last-seen counters are
checked in memory and written to the database by :meth:`flush` (the session
calls it on close, the push listener after each notification).

A *scope* names one key set (typically the meter id, or meter id + key
version): counters of different keys are independent.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from smmc_gateway.dlms.errors import SecurityFailure

MAX_COUNTER = 0xFFFFFFFF


class InvocationCounterStore:
    """Outgoing and incoming invocation counters, persisted in SQLite at ``path``
    (``":memory:"`` for a store that lives only as long as the process)."""

    def __init__(self, path: Path | str, *, block: int = 1000) -> None:
        if block < 1:
            raise ValueError(f"invocation counter block size {block}: must be >= 1")
        self.path = str(path)
        self.block = block
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outgoing (scope TEXT PRIMARY KEY, reserved_end INTEGER)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS incoming (scope TEXT, system_title BLOB, "
            "last INTEGER, PRIMARY KEY (scope, system_title))"
        )
        self._next: dict[str, int] = {}
        self._end: dict[str, int] = {}
        self._seen: dict[tuple[str, bytes], int] = {}
        self._dirty: set[tuple[str, bytes]] = set()
        for scope, st, last in self._db.execute("SELECT scope, system_title, last FROM incoming"):
            self._seen[(scope, bytes(st))] = int(last)

    # ------------------------------------------------------------ ours
    def next(self, scope: str) -> int:
        """The next outgoing counter for ``scope``; never returned twice, even
        across restarts. Raises SecurityFailure when the 32-bit space is spent
        (the keys must be changed)."""
        with self._lock:
            value = self._next.get(scope)
            if value is None or value >= self._end[scope]:
                value = self._reserve(scope, value)
            if value > MAX_COUNTER:
                raise SecurityFailure(
                    f"invocation counter of {scope!r} exhausted: the keys must be changed"
                )
            self._next[scope] = value + 1
            return value

    def _reserve(self, scope: str, current: int | None) -> int:
        if current is None:
            row = self._db.execute(
                "SELECT reserved_end FROM outgoing WHERE scope = ?", (scope,)
            ).fetchone()
            current = int(row[0]) if row else 1  # counter 0 is never used
        end = current + self.block
        self._db.execute(
            "INSERT INTO outgoing (scope, reserved_end) VALUES (?, ?) "
            "ON CONFLICT(scope) DO UPDATE SET reserved_end = excluded.reserved_end",
            (scope, end),
        )
        self._end[scope] = end
        return current

    def skip_to(self, scope: str, value: int) -> None:
        """Continue at ``value`` or later (e.g. after reading the meter's
        expected counter from its security setup)."""
        with self._lock:
            if value > self._next.get(scope, 0):
                self._next[scope] = value
                self._end[scope] = value  # forces a persisted reservation first

    # ------------------------------------------------------------ theirs
    def check_incoming(self, scope: str, system_title: bytes, counter: int) -> None:
        """Accept ``counter`` from ``system_title`` only if greater than the
        last one seen; raises SecurityFailure naming both otherwise."""
        key = (scope, bytes(system_title))
        with self._lock:
            last = self._seen.get(key)
            if last is not None and counter <= last:
                raise SecurityFailure(
                    f"replayed invocation counter {counter} from {system_title.hex()} "
                    f"(last seen {last})"
                )
            self._seen[key] = counter
            self._dirty.add(key)

    def last_incoming(self, scope: str, system_title: bytes) -> int | None:
        return self._seen.get((scope, bytes(system_title)))

    def flush(self) -> None:
        """Persist the last seen incoming counters."""
        with self._lock:
            if not self._dirty:
                return
            rows = [(s, st, self._seen[(s, st)]) for s, st in self._dirty]
            self._dirty.clear()
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO incoming (scope, system_title, last) VALUES (?, ?, ?) "
                "ON CONFLICT(scope, system_title) DO UPDATE SET last = excluded.last",
                rows,
            )
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()


_memory: InvocationCounterStore | None = None


def memory_store() -> InvocationCounterStore:
    """The process-wide in-memory store used when a session has none
    (counters restart at 1 with the process: for tests and one-off reads)."""
    global _memory
    if _memory is None:
        _memory = InvocationCounterStore(":memory:")
    return _memory
