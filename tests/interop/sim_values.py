"""Shared by the interop tests: a simulated meter whose clock stands still, and
what it holds, as plain Python values to compare a third party's decoding with."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from smmc_gateway.cosem.datetime import to_utc

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

CLOCK = "0.0.1.0.0.255"
ENERGY = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255")
LOAD_PROFILE = "1.0.99.1.0.255"
TRANSPORTS = [pytest.param(True, id="hdlc"), pytest.param(False, id="wrapper")]


@contextlib.asynccontextmanager
async def still_fleet(auth: str, *, hdlc: bool) -> AsyncIterator[tuple[RunningFleet, datetime]]:
    """One simulated meter whose clock stands still at the instant returned."""
    async with running_fleet(FleetSpec(meters=1, auth=auth, drift_ppm=0.0), hdlc=hdlc) as sim:
        t0 = sim.fleet.now()
        sim.fleet.clock.now = lambda: t0  # type: ignore[method-assign]
        yield sim, t0


def held(sim: RunningFleet, t0: datetime, class_id: int, obis: str, attr: int, client: int) -> Any:
    """What the simulated meter holds: the typed value (dict) or an error name."""
    return sim.fleet.meters[0].meter.get(class_id, obis, attr, now=t0, client=client)


def instant(data: bytes) -> datetime:
    """A COSEM date-time octet-string as an aware UTC datetime (must be complete)."""
    moment = to_utc(data)
    assert moment is not None, f"not a complete date-time: {data.hex()}"
    return moment


def plain(value: Any) -> Any:
    """A typed value tree as plain Python (ints, bytes, lists) for comparison."""
    kind, inner = value["type"], value["value"]
    if kind in ("array", "structure"):
        return [plain(v) for v in inner]
    if kind == "octet-string":
        return bytes.fromhex(inner) if isinstance(inner, str) else bytes(inner)
    return inner
