"""Priority gates: bounded session slots, granted by priority then arrival.

A :class:`Gate` has ``capacity`` slots (1 for a serial bus: a half-duplex bus
carries one session at a time; ``max_tcp_sessions`` for TCP). Waiters are served
highest priority first (:class:`Priority`: commands before alarms before reads),
first come first served within a priority. Waiting costs one future, not a thread.

A gate may keep ``reserved`` of its slots for scheduled collection: priorities other
than READ never hold more than ``capacity - reserved`` slots together, so a flood of
commands cannot starve collection; READ may use every slot. A command waiting for a
slot only commands may take does not hold up a read that fits in a reserved one.
:func:`reserved_slots` turns the configured share into a number of slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections import deque
from collections.abc import AsyncIterator
from enum import IntEnum


class Priority(IntEnum):
    """Lower value is served first."""

    COMMAND = 0
    ALARM = 1
    READ = 2


def reserved_slots(capacity: int, share: float) -> int:
    """Slots of a gate of ``capacity`` kept for collection: ``ceil(capacity * share)``,
    but at least one slot stays for commands (none is reserved with a capacity of 1)."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"reserved share {share} must be in 0.0..1.0 (exclusive)")
    if capacity <= 1:
        return 0
    return min(math.ceil(capacity * share), capacity - 1)


class Gate:
    """``capacity`` slots with a priority queue of waiters; ``reserved`` of them for READ."""

    def __init__(self, name: str, capacity: int, reserved: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"gate {name}: capacity {capacity} must be >= 1")
        if not 0 <= reserved < capacity:
            raise ValueError(
                f"gate {name}: reserved {reserved} must be in 0..{capacity - 1} "
                "(at least one slot for commands)"
            )
        self.name = name
        self.capacity = capacity
        self.reserved = reserved
        self.in_use = 0
        self.in_use_urgent = 0  # slots held by priorities other than READ
        self._urgent: list[tuple[int, int, asyncio.Future[None]]] = []  # heap: prio, arrival
        self._reads: deque[asyncio.Future[None]] = deque()
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._urgent if not f.done()) + sum(
            1 for f in self._reads if not f.done()
        )

    def _urgent_fits(self) -> bool:
        return self.in_use_urgent < self.capacity - self.reserved

    def _take(self, priority: Priority) -> None:
        self.in_use += 1
        if priority != Priority.READ:
            self.in_use_urgent += 1

    def _grant(self) -> None:
        """Hand free slots to waiters: the first urgent one if urgent slots are left,
        else the first read."""
        while self.in_use < self.capacity:
            while self._urgent and self._urgent[0][2].done():  # cancelled waiters
                heapq.heappop(self._urgent)
            while self._reads and self._reads[0].done():
                self._reads.popleft()
            if self._urgent and self._urgent_fits():
                prio, _, fut = heapq.heappop(self._urgent)
                self._take(Priority(prio))
            elif self._reads:
                fut = self._reads.popleft()
                self._take(Priority.READ)
            else:
                return
            fut.set_result(None)  # the slot passes straight to this waiter

    async def acquire(self, priority: Priority = Priority.READ) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if priority == Priority.READ:
            self._reads.append(fut)
        else:
            heapq.heappush(self._urgent, (int(priority), next(self._seq), fut))
        self._grant()  # no wait when a slot is free and nobody it must yield to waits
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(priority)  # granted and cancelled at once: pass the slot on
            raise

    def release(self, priority: Priority = Priority.READ) -> None:
        """Give back a slot taken with ``acquire(priority)`` (the same priority)."""
        if self.in_use < 1 or (priority != Priority.READ and self.in_use_urgent < 1):
            raise RuntimeError(f"gate {self.name}: release({priority.name}) without a slot")
        self.in_use -= 1
        if priority != Priority.READ:
            self.in_use_urgent -= 1
        self._grant()

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority = Priority.READ) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release(priority)
