"""The RS-485 bus: one session at a time, FIFO-fair, timeouts and cancellation."""

from __future__ import annotations

import asyncio

import pytest
from smmc_gateway.dlms.errors import MeterTimeout
from smmc_gateway.dlms.serial import Bus


async def test_one_holder_at_a_time_in_arrival_order() -> None:
    bus = Bus("/dev/ttyUSB0")
    order: list[str] = []
    inside = 0
    gates = {name: asyncio.Event() for name in "abcd"}

    async def session(name: str) -> None:
        nonlocal inside
        async with bus.turn(name):
            inside += 1
            assert inside == 1, "two sessions on the bus at once"
            order.append(name)
            await gates[name].wait()
            inside -= 1

    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(session(name)))
        await asyncio.sleep(0)  # let it queue before the next one arrives
    assert bus.holder == "a"
    assert bus.waiting == 3
    for name in "abcd":
        gates[name].set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["a", "b", "c", "d"]
    assert bus.holder is None
    assert bus.turns_taken == 4


async def test_releasing_holder_cannot_jump_the_queue() -> None:
    bus = Bus("bus1")
    await bus.acquire("a")
    waiter = asyncio.create_task(bus.acquire("b"))
    await asyncio.sleep(0)
    bus.release()
    again = asyncio.create_task(bus.acquire("a"))
    await asyncio.wait_for(waiter, 5)
    assert bus.holder == "b"
    assert not again.done()
    bus.release()
    await asyncio.wait_for(again, 5)
    assert bus.holder == "a"


async def test_waiting_too_long_is_a_timeout_naming_the_holder() -> None:
    bus = Bus("bus1")
    await bus.acquire("meter-1")
    with pytest.raises(MeterTimeout, match="bus bus1 \\(held by meter-1\\)"):
        await bus.acquire("meter-2", timeout=0.05)
    assert bus.waiting == 0
    bus.release()
    assert bus.holder is None


async def test_cancelled_waiter_does_not_block_the_others() -> None:
    bus = Bus("bus1")
    await bus.acquire("a")
    b = asyncio.create_task(bus.acquire("b"))
    c = asyncio.create_task(bus.acquire("c"))
    await asyncio.sleep(0)
    b.cancel()
    bus.release()
    await asyncio.wait_for(c, 5)
    assert bus.holder == "c"
