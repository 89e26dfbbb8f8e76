"""The uplink's SQLite database and its single writer thread (group commit).

Outbox and command journal live in one database file so that storing a reply
and marking its request replied is one atomic transaction. All SQLite work runs
on one dedicated thread: callers submit a function ``fn(conn)``; the thread takes
every job queued so far, runs each inside its own SAVEPOINT in one transaction,
commits once (``synchronous=FULL``: the commit is fsynced), and only then
resolves the callers' futures. Many concurrent callers thus share one fsync
while each call still returns only after its data is durable.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class StoreClosed(RuntimeError):
    """The store was closed; nothing more can be written."""


class Store:
    """One SQLite database with a writer thread. Use :meth:`submit` from asyncio."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        # Held by the writer thread for a whole batch (BEGIN..COMMIT) and by
        # execute_script, whose executescript() would commit a batch half-way.
        self._batch_lock = threading.Lock()
        self.commits = 0
        """Number of transactions committed (for the benchmark and metrics)."""
        self._thread = threading.Thread(
            target=self._run, name=f"uplink-store:{self.path.name}", daemon=True
        )
        self._thread.start()

    def execute_script(self, sql: str) -> None:
        """Run DDL synchronously. ``executescript`` commits whatever transaction is open,
        so it waits for the writer thread to finish its current batch (never running in
        the middle of one, which would destroy the batch's savepoints)."""
        with self._batch_lock:
            self._conn.executescript(sql)

    async def submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a transaction on the writer thread; return after the commit."""
        if self._closed:
            raise StoreClosed(f"store {self.path} is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, fut))
        return await fut

    def _run(self) -> None:
        conn = self._conn
        while True:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while True:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            results: list[tuple[bool, Any]] = []
            self._batch_lock.acquire()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for fn, _loop, _fut in batch:
                    conn.execute("SAVEPOINT job")
                    try:
                        results.append((True, fn(conn)))
                        conn.execute("RELEASE job")
                    except Exception as exc:  # each job fails alone
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        results.append((False, exc))
                conn.execute("COMMIT")
                self.commits += 1
            except sqlite3.Error as exc:  # the commit itself failed: every job failed
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                results = [(False, exc)] * len(batch)
            finally:
                self._batch_lock.release()
            # One wake-up per event loop for the whole batch (each call_soon_threadsafe
            # writes to the loop's self-pipe), the futures settled in submission order.
            settled: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
            for (_fn, loop, fut), (ok, value) in zip(batch, results, strict=True):
                settled.setdefault(loop, []).append((fut, ok, value))
            for loop, outcomes in settled.items():
                loop.call_soon_threadsafe(_settle_all, outcomes)
            if stop:
                break
        conn.close()

    async def close(self) -> None:
        """Finish queued jobs, stop the thread and close the database."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)


_Settled = tuple["asyncio.Future[Any]", bool, Any]


def _settle_all(outcomes: list[_Settled]) -> None:
    for fut, ok, value in outcomes:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
