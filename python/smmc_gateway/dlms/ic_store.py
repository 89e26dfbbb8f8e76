"""Invocation counters that survive a crash: ours never reused, theirs never going back.

Suite 0 ciphering is AES-GCM with IV = system title || invocation counter: one
reused counter under the same key leaks the authentication key. So the
client's outgoing counter is reserved in blocks (default 1,000) persisted to
SQLite (``synchronous=FULL``: the commit is on disk) *before* any counter of
the block is used; after a crash the store continues from the end of the last
reserved block, skipping at most one block.

**Counter hints.** A meter that refuses our counter may say which one it
expects (exception-response ``D8 01 06 <counter>``). Such an answer is plain,
so anyone on the path can forge it: a hint is *unauthenticated* and must never
move the persisted counter by itself (``D8 01 06 FFFFFFFF`` would otherwise
spend the whole 32-bit space and brick the key set). :meth:`hint` therefore

* ignores a hint that is not ahead of the next counter we would send;
* refuses (SecurityFailure naming the hint and the bound) one more than
  ``max_jump`` ahead of our *confirmed* position — so unconfirmed hints cannot
  chain past that bound either;
* otherwise follows it *tentatively*: the next counter handed out is the hint,
  the start of a **tentative run**. Before a counter of the run is handed out,
  the run's range ``[low, high)`` is persisted in the ``tentative`` table
  (extended :data:`TENTATIVE_BLOCK` counters at a time), and the persisted
  position (``outgoing.reserved_end``) does not move;
* :meth:`confirm` (called with the counter of a request whose answer was
  deciphered and its tag checked) turns the run into the normal sequence and
  persists it. Until then the run goes on (the meter may simply have lost an
  answer), and a new hint starts a new run.

A counter that was handed out tentatively is never handed out again, even
after a crash: the normal sequence skips every persisted tentative range it
reaches (and the range is dropped once the persisted position is past it). At
most :data:`MAX_TENTATIVE_RANGES` ranges are kept per scope; one more merges
them into their covering range (every hint is within ``max_jump`` of the
confirmed counter, so that range spans at most ``max_jump`` plus what the runs
used). So an unconfirmed forged hint wastes one block of counters when the
normal sequence reaches it, and a confirmed one (the genuine meter accepts any
counter above its last, so an attacker can let it confirm) moves us at most
``max_jump``: never the whole space in one message.

The other direction: a response or push whose counter is not greater than the
last seen for that server system title is a replay and is refused with
:class:`~smmc_gateway.dlms.errors.SecurityFailure`. Last-seen counters are
checked in memory and written to the database by :meth:`flush` (the session
calls it on close, the push listener after each notification); the ciphering
context records a counter only from an authenticated response.

A *scope* names one key set (typically the meter id, or meter id + key
version): counters of different keys are independent.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from smmc_gateway.dlms.errors import SecurityFailure

MAX_COUNTER = 0xFFFFFFFF
MAX_COUNTER_JUMP = 1 << 20
"""Default bound on how far ahead of our confirmed counter a hint is followed."""
TENTATIVE_BLOCK = 8
"""Counters a tentative range is extended by (persisted before any is used)."""
MAX_TENTATIVE_RANGES = 16
"""Persisted tentative ranges per scope; one more merges them into one."""


@dataclass
class _Run:
    """The tentative run of a scope: counters ``low..next-1`` handed out,
    ``[low, end)`` persisted as tentative."""

    low: int
    next: int
    end: int


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
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tentative (scope TEXT, low INTEGER, high INTEGER, "
            "PRIMARY KEY (scope, low))"
        )
        self._next: dict[str, int] = {}
        self._end: dict[str, int] = {}
        self._seen: dict[tuple[str, bytes], int] = {}
        self._titles: dict[str, set[bytes]] = {}
        """The server system titles seen per scope (an index of ``_seen``)."""
        self._dirty: set[tuple[str, bytes]] = set()
        self._hints: dict[str, int] = {}
        self._runs: dict[str, _Run] = {}
        self._tentative: dict[str, dict[int, int]] = {}
        """Persisted tentative ranges per scope: low -> high (exclusive)."""
        for scope, st, last in self._db.execute("SELECT scope, system_title, last FROM incoming"):
            self._seen[(scope, bytes(st))] = int(last)
            self._titles.setdefault(scope, set()).add(bytes(st))
        for scope, low, high in self._db.execute("SELECT scope, low, high FROM tentative"):
            self._tentative.setdefault(scope, {})[int(low)] = int(high)

    # ------------------------------------------------------------ ours
    def next(self, scope: str) -> int:
        """The next outgoing counter for ``scope``; never returned twice, even
        across restarts. Raises SecurityFailure when the 32-bit space is spent
        (the keys must be changed)."""
        with self._lock:
            return self._next_locked(scope)

    def take(self, scope: str, count: int) -> tuple[int, int]:
        """A run of consecutive outgoing counters ``(first, n)``, 1 <= n <=
        ``count``, handed out as by :meth:`next` (persisted first, never
        again): what an association is granted (``grant_counters``). The run
        ends early where the sequence jumps (a tentative range skipped, a
        pending hint) or at the end of the 32-bit space."""
        if count < 1:
            raise ValueError(f"take {count} counters: must be >= 1")
        with self._lock:
            first = self._next_locked(scope)
            if scope not in self._hints and scope not in self._runs:
                # the normal sequence: up to the end of the reservation or the next
                # tentative range, at once
                want = min(first + count, MAX_COUNTER + 1)
                for low in self._tentative.get(scope, {}):
                    if first < low < want:
                        want = low
                while self._end[scope] < want:
                    self._reserve(scope, self._end[scope])  # the next block, persisted first
                self._next[scope] = max(want, first + 1)
                return first, self._next[scope] - first
            n = 1
            while n < count and first + n <= MAX_COUNTER and self._follows(scope, first + n):
                self._next_locked(scope)
                n += 1
            return first, n

    def _follows(self, scope: str, value: int) -> bool:
        """Whether the next counter handed out would be ``value`` (no jump)."""
        if scope in self._hints:
            return False
        run = self._runs.get(scope)
        if run is not None:
            return run.next == value
        return self._next.get(scope) == value and (
            _containing(self._tentative.get(scope, {}), value) is None
        )

    def _next_locked(self, scope: str) -> int:
        if scope in self._hints:
            value = self._start_run(scope, self._hints.pop(scope))
        elif scope in self._runs:
            value = self._take_run(self._runs[scope], scope)
        else:
            value = self._take_normal(scope)
        if value > MAX_COUNTER:
            raise SecurityFailure(
                f"invocation counter of {scope!r} exhausted: the keys must be changed"
            )
        return value

    def _take_normal(self, scope: str) -> int:
        value = self._next.get(scope)
        if value is None or value >= self._end[scope]:
            value = self._reserve(scope, value)
        ranges = self._tentative.get(scope, {})
        while (high := _containing(ranges, value)) is not None:
            value = high  # those were (maybe) sent tentatively: never again
            if value >= self._end[scope]:
                value = self._reserve(scope, value)
        self._prune(scope, value)
        self._next[scope] = value + 1
        return value

    def _reserve(self, scope: str, current: int | None) -> int:
        if current is None:
            current = self._persisted(scope)
        end = current + self.block
        self._db.execute(
            "INSERT INTO outgoing (scope, reserved_end) VALUES (?, ?) "
            "ON CONFLICT(scope) DO UPDATE SET reserved_end = excluded.reserved_end",
            (scope, end),
        )
        self._end[scope] = end
        return current

    def _persisted(self, scope: str) -> int:
        row = self._db.execute(
            "SELECT reserved_end FROM outgoing WHERE scope = ?", (scope,)
        ).fetchone()
        return int(row[0]) if row else 1  # counter 0 is never used

    def _position(self, scope: str) -> int:
        """The next counter of the normal (confirmed) sequence, without taking it."""
        value = self._next.get(scope)
        return self._persisted(scope) if value is None else value

    def _start_run(self, scope: str, hinted: int) -> int:
        end = min(hinted + TENTATIVE_BLOCK, MAX_COUNTER + 1)
        ranges = self._tentative.setdefault(scope, {})
        if len(ranges) >= MAX_TENTATIVE_RANGES:
            low, high = min(ranges), max(max(ranges.values()), end)
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM tentative WHERE scope = ?", (scope,))
            self._db.execute(
                "INSERT INTO tentative (scope, low, high) VALUES (?, ?, ?)", (scope, low, high)
            )
            self._db.execute("COMMIT")
            ranges.clear()
            ranges[low] = high
        self._put_range(scope, hinted, end)
        self._runs[scope] = _Run(low=hinted, next=hinted + 1, end=end)
        return hinted

    def _put_range(self, scope: str, low: int, high: int) -> None:
        ranges = self._tentative.setdefault(scope, {})
        high = max(high, ranges.get(low, high))
        self._db.execute(
            "INSERT INTO tentative (scope, low, high) VALUES (?, ?, ?) "
            "ON CONFLICT(scope, low) DO UPDATE SET high = excluded.high",
            (scope, low, high),
        )
        ranges[low] = high

    def _take_run(self, run: _Run, scope: str) -> int:
        if run.next >= run.end:
            run.end = min(run.next + TENTATIVE_BLOCK, MAX_COUNTER + 1)
            self._put_range(scope, run.low, run.end)
        value = run.next
        run.next += 1
        return value

    def _prune(self, scope: str, position: int) -> None:
        """Drop the tentative ranges the persisted position has passed."""
        ranges = self._tentative.get(scope)
        if not ranges:
            return
        passed = [low for low, high in ranges.items() if high <= position]
        if passed and position <= self._end.get(scope, 0):
            self._db.executemany(
                "DELETE FROM tentative WHERE scope = ? AND low = ?", [(scope, lo) for lo in passed]
            )
            for low in passed:
                del ranges[low]

    def hint(self, scope: str, value: int, max_jump: int = MAX_COUNTER_JUMP) -> bool:
        """An unauthenticated hint that the meter expects ``value`` or later.
        True when it will be followed (tentatively, by the next counter handed
        out), False when ignored (not ahead of our next counter); raises
        SecurityFailure naming the hint and the bound when it jumps too far."""
        with self._lock:
            base = self._position(scope)
            run = self._runs.get(scope)
            upcoming = self._hints.get(scope, run.next if run is not None else base)
            if value <= upcoming:
                return False
            if value - base > max_jump:
                raise SecurityFailure(
                    f"invocation counter hint {value} is {value - base} ahead of our confirmed "
                    f"counter {base} for {scope!r} (at most {max_jump} followed): not followed "
                    "(an unauthenticated answer never moves the counter that far; set it "
                    "explicitly if the meter really is that far ahead)"
                )
            self._hints[scope] = value
            return True

    def confirm(self, scope: str, counter: int) -> bool:
        """A request sent with ``counter`` got an authenticated answer: when
        the counter is of the tentative run, the run becomes the persisted
        sequence (True). Any other counter changes nothing (False)."""
        with self._lock:
            run = self._runs.get(scope)
            if run is None or not run.low <= counter < run.next:
                return False
            end = max(run.end, self._end.get(scope, 0), self._persisted(scope))
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO outgoing (scope, reserved_end) VALUES (?, ?) "
                "ON CONFLICT(scope) DO UPDATE SET reserved_end = excluded.reserved_end",
                (scope, end),
            )
            self._db.execute("DELETE FROM tentative WHERE scope = ? AND low = ?", (scope, run.low))
            self._db.execute("COMMIT")
            self._tentative.get(scope, {}).pop(run.low, None)
            del self._runs[scope]
            self._next[scope] = run.next
            self._end[scope] = end
            self._prune(scope, run.next)
            return True

    def skip_to(self, scope: str, value: int) -> None:
        """Continue at ``value`` or later: a trusted, explicit move (e.g. after
        reading the meter's expected counter from its security setup over an
        authenticated association). A pending hint or tentative run ends; the
        counters it handed out stay skipped."""
        with self._lock:
            self._hints.pop(scope, None)
            self._runs.pop(scope, None)
            if value > self._position(scope):
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
            self._titles.setdefault(scope, set()).add(key[1])
            self._dirty.add(key)

    def last_incoming(self, scope: str, system_title: bytes) -> int | None:
        return self._seen.get((scope, bytes(system_title)))

    def known_incoming(self, scope: str) -> list[tuple[bytes, int]]:
        """Every server system title of ``scope`` with its last seen counter
        (what a client association is told before it opens)."""
        with self._lock:
            return [(st, self._seen[(scope, st)]) for st in self._titles.get(scope, ())]

    def record_incoming(self, scope: str, system_title: bytes, counter: int) -> None:
        """An association checked the server's counters (each above the last)
        and ended at ``counter``: it becomes the last seen (never lowered;
        persisted by :meth:`flush`)."""
        key = (scope, bytes(system_title))
        with self._lock:
            if counter > self._seen.get(key, -1):
                self._seen[key] = counter
                self._titles.setdefault(scope, set()).add(key[1])
                self._dirty.add(key)

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


def _containing(ranges: dict[int, int], value: int) -> int | None:
    """The end of a range ``[low, high)`` containing ``value``, if any."""
    for low, high in ranges.items():
        if low <= value < high:
            return high
    return None


_memory: InvocationCounterStore | None = None


def memory_store() -> InvocationCounterStore:
    """The process-wide in-memory store used when a session has none
    (counters restart at 1 with the process: for tests and one-off reads)."""
    global _memory
    if _memory is None:
        _memory = InvocationCounterStore(":memory:")
    return _memory
