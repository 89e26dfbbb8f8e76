"""Use case 7 (first part) — OMS poll, unicast and multicast.

The outage management system asks whether meters are energised. Each meter is
polled with a GET of its clock (the association itself proves the meter is
powered and reachable) and of the Disconnect control's output_state when the
model has one, so "reachable but disconnected" is told apart from "energised".
A group is polled concurrently (the scheduler's gates still bound the sessions);
every meter ends in exactly one :class:`PollResult` within its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from smmc_gateway.cosem.objects import Clock, DisconnectControl
from smmc_gateway.dlms.session import ClientSession, DataAccessError

OpenSession = Callable[[str], AbstractAsyncContextManager[ClientSession]]
"""``open_session(meter_id)`` -> an async context manager giving an open session."""


@dataclass(frozen=True)
class PollResult:
    meter_id: str
    state: str  # "energised" | "disconnected" | "unreachable"
    details: str
    rtt_s: float | None = None


async def poll_one(
    open_session: OpenSession,
    meter_id: str,
    *,
    clock_obis: str,
    disconnect_obis: str | None,
    timeout_s: float,
) -> PollResult:
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s), open_session(meter_id) as s:
            t1 = time.monotonic()
            await s.get(*Clock(clock_obis).time)
            rtt = time.monotonic() - t1
            state, details = "energised", "clock answered"
            if disconnect_obis:
                with contextlib.suppress(DataAccessError):
                    out = await s.get(*DisconnectControl(disconnect_obis).output_state)
                    if not out["value"]:
                        state, details = "disconnected", "clock answered; output_state false"
            return PollResult(meter_id, state, details, rtt)
    except TimeoutError:
        return PollResult(
            meter_id,
            "unreachable",
            f"no answer within {timeout_s:.1f}s (after {time.monotonic() - t0:.1f}s)",
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every other failure is an answer too: unreachable, why
        return PollResult(meter_id, "unreachable", f"{type(exc).__name__}: {exc}")


async def poll(
    open_session: OpenSession,
    meter_ids: Sequence[str],
    *,
    clock_obis: Callable[[str], str],
    disconnect_obis: Callable[[str], str | None],
    timeout_s: float = 30.0,
) -> list[PollResult]:
    """Poll ``meter_ids`` concurrently; results in the order asked."""
    return list(
        await asyncio.gather(
            *(
                poll_one(
                    open_session,
                    m,
                    clock_obis=clock_obis(m),
                    disconnect_obis=disconnect_obis(m),
                    timeout_s=timeout_s,
                )
                for m in meter_ids
            )
        )
    )
