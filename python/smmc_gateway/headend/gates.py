"""Priority gates: bounded session slots, granted by priority then arrival.

A :class:`Gate` has ``capacity`` slots (1 for a serial bus: a half-duplex bus
carries one session at a time; ``max_tcp_sessions`` for TCP). Waiters are served
highest priority first (:class:`Priority`: commands before alarms before reads),
first come first served within a priority. Waiting costs one future, not a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from enum import IntEnum


class Priority(IntEnum):
    """Lower value is served first."""

    COMMAND = 0
    ALARM = 1
    READ = 2


class Gate:
    """``capacity`` slots with a priority queue of waiters."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"gate {name}: capacity {capacity} must be >= 1")
        self.name = name
        self.capacity = capacity
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def acquire(self, priority: Priority = Priority.READ) -> None:
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release_slot()  # granted and cancelled at once: pass the slot on
            raise

    def release(self) -> None:
        self._release_slot()

    def _release_slot(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to this waiter
                return
        self.in_use -= 1

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority = Priority.READ) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
