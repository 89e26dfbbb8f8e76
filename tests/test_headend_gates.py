"""Priority gates: capacity, priority order (commands, alarms, reads), cancellation, and the
slots reserved for collection that commands never take."""

from __future__ import annotations

import asyncio

import pytest
from smmc_gateway.headend.gates import Gate, Priority, reserved_slots


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

    tasks = [
        asyncio.create_task(waiter(n, p))
        for n, p in (
            ("read-1", Priority.READ),
            ("alarm-1", Priority.ALARM),
            ("cmd-1", Priority.COMMAND),
            ("read-2", Priority.READ),
            ("cmd-2", Priority.COMMAND),
        )
    ]
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


@pytest.mark.parametrize(
    ("capacity", "share", "reserved"),
    [
        (64, 0.25, 16),
        (4, 0.25, 1),
        (3, 0.25, 1),
        (2, 0.9, 1),
        (10, 0.9, 9),
        (1, 0.9, 0),
        (8, 0.0, 0),
    ],
)
def test_reserved_slots_leave_one_for_commands(capacity: int, share: float, reserved: int) -> None:
    assert reserved_slots(capacity, share) == reserved


async def test_commands_never_take_the_reserved_slots_reads_may_use_all() -> None:
    gate = Gate("tcp", 4, reserved=1)
    for _ in range(3):
        await asyncio.wait_for(gate.acquire(Priority.COMMAND), 1)
    blocked = asyncio.create_task(gate.acquire(Priority.COMMAND))
    alarm = asyncio.create_task(gate.acquire(Priority.ALARM))
    await asyncio.sleep(0)
    assert not blocked.done() and not alarm.done() and gate.in_use == 3
    # the reserved slot goes to a read although commands wait ahead of it
    await asyncio.wait_for(gate.acquire(Priority.READ), 1)
    assert gate.in_use == 4 and gate.in_use_urgent == 3 and gate.waiting == 2
    gate.release(Priority.READ)  # a read's slot: still no room for another command
    await asyncio.sleep(0)
    assert not blocked.done() and gate.in_use == 3
    gate.release(Priority.COMMAND)  # a command's slot: the first urgent waiter gets it
    await asyncio.wait_for(blocked, 1)
    assert not alarm.done() and gate.in_use_urgent == 3
    gate.release(Priority.COMMAND)
    await asyncio.wait_for(alarm, 1)
    for prio in (Priority.COMMAND, Priority.COMMAND, Priority.ALARM):
        gate.release(prio)
    assert (gate.in_use, gate.in_use_urgent) == (0, 0)
    for _ in range(4):  # with no command about, reads take every slot
        await asyncio.wait_for(gate.acquire(Priority.READ), 1)
    assert gate.in_use == 4


async def test_a_flood_of_commands_cannot_starve_reads() -> None:
    gate = Gate("tcp", 4, reserved=1)
    order: list[str] = []

    async def user(name: str, prio: Priority, hold: asyncio.Event) -> None:
        async with gate.slot(prio):
            order.append(name)
            await hold.wait()

    hold_commands, hold_reads = asyncio.Event(), asyncio.Event()
    commands = [
        asyncio.create_task(user(f"cmd-{i}", Priority.COMMAND, hold_commands)) for i in range(50)
    ]
    reads = [asyncio.create_task(user(f"read-{i}", Priority.READ, hold_reads)) for i in range(3)]
    for _ in range(100):  # the gate has no event; a few loop turns
        await asyncio.sleep(0)
    assert gate.waiting == 47 + 2
    assert order == ["cmd-0", "cmd-1", "cmd-2", "read-0"]  # one read runs beside the flood
    hold_reads.set()  # reads finish one by one in the reserved slot
    for _ in range(100):
        await asyncio.sleep(0)
    assert [o for o in order if o.startswith("read")] == ["read-0", "read-1", "read-2"]
    assert [o for o in order if o.startswith("cmd")] == ["cmd-0", "cmd-1", "cmd-2"]
    hold_commands.set()
    await asyncio.wait_for(asyncio.gather(*commands, *reads), 5)
    assert [o for o in order if o.startswith("cmd")] == [f"cmd-{i}" for i in range(50)]
    assert gate.in_use == 0 and gate.in_use_urgent == 0


def test_reserved_must_leave_a_slot_and_release_must_match() -> None:
    with pytest.raises(ValueError, match=r"reserved 4 must be in 0\.\.3"):
        Gate("tcp", 4, reserved=4)
    gate = Gate("tcp", 2, reserved=1)
    with pytest.raises(RuntimeError, match="without a slot"):
        gate.release(Priority.COMMAND)
