"""Priority gates: capacity, priority order (commands, alarms, reads), cancellation."""

from __future__ import annotations

import asyncio

import pytest
from smmc_gateway.headend.gates import Gate, Priority


async def test_capacity_is_never_exceeded() -> None:
    gate = Gate("tcp", 3)
    peak = 0
    inside = 0

    async def user() -> None:
        nonlocal peak, inside
        async with gate.slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(user() for _ in range(20))), 5)
    assert peak == 3
    assert gate.in_use == 0


async def test_waiters_are_served_by_priority_then_arrival() -> None:
    gate = Gate("bus:rs485-1", 1)
    await gate.acquire(Priority.READ)  # the bus is busy
    order: list[str] = []

    async def waiter(name: str, prio: Priority) -> None:
        async with gate.slot(prio):
            order.append(name)

    tasks = [asyncio.create_task(waiter(n, p)) for n, p in (
        ("read-1", Priority.READ), ("alarm-1", Priority.ALARM), ("cmd-1", Priority.COMMAND),
        ("read-2", Priority.READ), ("cmd-2", Priority.COMMAND))]
    while gate.waiting < 5:  # noqa: ASYNC110 - the gate has no event; five loop turns at most
        await asyncio.sleep(0)
    gate.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["cmd-1", "cmd-2", "alarm-1", "read-1", "read-2"]
    assert gate.in_use == 0


async def test_a_cancelled_waiter_does_not_leak_the_slot() -> None:
    gate = Gate("bus", 1)
    await gate.acquire()
    t = asyncio.create_task(gate.acquire(Priority.COMMAND))
    await asyncio.sleep(0)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    gate.release()
    assert gate.in_use == 0
    await asyncio.wait_for(gate.acquire(), 1)
    assert gate.in_use == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity 0"):
        Gate("tcp", 0)
