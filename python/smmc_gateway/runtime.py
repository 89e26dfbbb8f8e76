"""The event loop every smmc-gateway program runs on.

The daemon, the simulator, the technician's CLI and the profile runner start their
loop with :func:`run`. It is uvloop (libuv, the loop written in C) where it is
installed, which it is with the package on Linux: a meter read is a few round
trips of small APDUs, so the loop's own work (waking up, connecting, reading a
socket, scheduling a callback) is most of the CPU a read costs, and uvloop does
it in about a third less than asyncio's loop written in Python
(``bench/session.py`` prints both). Where uvloop is missing (another platform)
or not wanted, asyncio's own loop is used; the choice is logged by the daemon
and printed by the benches.

``SMMC_EVENT_LOOP`` chooses: ``uvloop`` (the default where it imports; an error
if it does not), ``asyncio`` (the standard library's loop, e.g. to compare or to
rule the loop out while chasing a fault), or unset / ``auto``.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "SMMC_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")


class EventLoopChoiceError(ValueError):
    """``SMMC_EVENT_LOOP`` names a loop that is unknown or cannot be loaded."""


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_factory(choice: str | None = None) -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop to run on: (its name, a factory). ``choice`` defaults to
    ``$SMMC_EVENT_LOOP``; raises EventLoopChoiceError for an unknown name or
    for ``uvloop`` where it is not installed."""
    wanted = (choice if choice is not None else os.environ.get(ENV, "")).strip().lower() or "auto"
    if wanted not in CHOICES:
        raise EventLoopChoiceError(
            f"{ENV}={wanted!r} is not an event loop this program knows "
            f"(one of {', '.join(CHOICES)})"
        )
    if wanted != "asyncio":
        uv = _uvloop_factory()
        if uv is not None:
            return "uvloop", uv
        if wanted == "uvloop":
            raise EventLoopChoiceError(
                f"{ENV}=uvloop but uvloop is not installed (pip install uvloop, "
                f"or {ENV}=asyncio for the standard library's loop)"
            )
    return "asyncio", asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], *, choice: str | None = None) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` chooses."""
    try:
        _, factory = loop_factory(choice)
    except EventLoopChoiceError:
        main.close()  # never started: no "was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop this coroutine runs on (for logs and benches)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


GEN0_THRESHOLD = 10_000
"""Container allocations between two young-generation collections (CPython's default
is 700). A read allocates a few thousand short-lived containers, almost none in
cycles; collecting every 700 of them cost the fleet bench ~0.1 ms per read."""


def settle_heap() -> None:
    """After start-up (and after a reload): what is loaded now lives as long as the
    process, so the cyclic garbage collector stops traversing it (``gc.freeze``)
    and collects the young generation less often (:data:`GEN0_THRESHOLD`).

    The collector keeps running; only objects alive at this call are left out
    of it (reference counting still frees them). A reload calls this again: what
    became garbage since the last call is collected first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
