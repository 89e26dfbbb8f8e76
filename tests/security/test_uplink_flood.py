"""A flood of requests: bounded handlers and queue, FAILED Busy beyond, first come first served.

At most ``max_concurrent`` handlers run and ``max_queued`` requests wait; one more is
answered FAILED ``Busy`` at once (journaled as replied in the reply's transaction), the
queued ones are served in arrival order, requests re-dispatched at start take their
places in the queue, and a second delivery of a queued request is a duplicate, not Busy.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from smmc_gateway.uplink import Outcome, Uplink, UplinkConfig
from test_uplink_mqtt import request, send_request
from uplink_helpers import running, validate_message, wait_until

GW = "gw-0001"


def config(broker: Broker, db: Path, **kw: Any) -> UplinkConfig:
    return UplinkConfig(gateway_id=GW, db_path=db, host=broker.host, port=broker.port, **kw)


class Gated:
    """A handler that records each call and holds it until :meth:`open`."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.running = 0
        self.peak = 0
        self.gate = asyncio.Event()

    async def __call__(self, noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        self.calls.append(payload["n"])
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return Outcome("OK", {"n": payload["n"]})


def replies(col: Collector) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in col.messages:
        doc = validate_message(m.payload)  # type: ignore[arg-type]
        out.setdefault(doc["header"]["correlationId"], []).append(doc)
    return out


async def test_beyond_running_and_queued_requests_are_answered_busy_at_once(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    handler = Gated()
    db = tmp_path / "u.db"
    up = Uplink(config(mosquitto, db, max_concurrent=2, max_queued=2), handler)
    async with running(up):
        for i in range(7):
            await send_request(mosquitto, "EndDeviceControls", request(f"c-{i}", n=str(i)))
        # 2 run, 2 wait, 3 are refused without waiting for any handler
        await col.wait(lambda m: len(m) == 3)
        got = replies(col)
        assert sorted(got) == ["c-4", "c-5", "c-6"]
        for cid in ("c-4", "c-5", "c-6"):
            (doc,) = got[cid]
            assert doc["reply"]["result"] == "FAILED"
            (err,) = doc["reply"]["errors"]
            assert err["code"] == "Busy"
            assert "commands.max_concurrent = 2" in err["details"]
            assert "commands.max_queued = 2" in err["details"]
            assert "2 requests and 2 more wait" in err["details"]
        assert handler.calls == ["0", "1"] and handler.running == 2
        handler.gate.set()
        await col.wait(lambda m: len(m) == 7)
    got = replies(col)
    assert all(len(v) == 1 for v in got.values())
    assert [got[f"c-{i}"][0]["reply"]["result"] for i in range(4)] == ["OK"] * 4
    assert handler.calls == ["0", "1", "2", "3"]  # first come, first served
    assert handler.peak == 2 and up.counters.busy_commands == 3
    conn = sqlite3.connect(db)
    results = dict(conn.execute("SELECT correlation_id, result FROM command").fetchall())
    conn.close()
    assert results == {
        **{f"c-{i}": "OK" for i in range(4)},
        **{f"c-{i}": "FAILED" for i in range(4, 7)},
    }


async def test_requests_redispatched_at_start_hold_their_places(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    db = tmp_path / "u.db"
    first = Gated()
    up = Uplink(config(mosquitto, db, max_concurrent=1, max_queued=1), first)
    async with running(up, stop_deadline_s=0.5):
        for i in range(2):
            await send_request(mosquitto, "EndDeviceControls", request(f"c-{i}", n=str(i)))
        await wait_until(lambda: up.counters.commands == 2)
    assert col.messages == []  # stopped before answering: both stay in the journal

    second = Gated()
    up = Uplink(config(mosquitto, db, max_concurrent=1, max_queued=1), second)
    async with running(up):
        await send_request(mosquitto, "EndDeviceControls", request("c-new", n="new"))
        await col.wait(lambda m: len(m) == 1)
        (doc,) = replies(col)["c-new"]
        assert doc["reply"]["errors"][0]["code"] == "Busy"
        second.gate.set()
        await col.wait(lambda m: len(m) == 3)
    assert second.calls == ["0", "1"]
    assert {k: v[0]["reply"]["result"] for k, v in replies(col).items()} == {
        "c-0": "OK",
        "c-1": "OK",
        "c-new": "FAILED",
    }


async def test_a_second_delivery_of_a_queued_request_is_a_duplicate_not_busy(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    handler = Gated()
    up = Uplink(config(mosquitto, tmp_path / "u.db", max_concurrent=1, max_queued=1), handler)
    async with running(up):
        await send_request(mosquitto, "EndDeviceControls", request("c-0", n="0"))
        await send_request(mosquitto, "EndDeviceControls", request("c-1", n="1"))  # queued
        await send_request(mosquitto, "EndDeviceControls", request("c-1", n="1"))  # again
        await wait_until(lambda: up.counters.duplicate_commands == 1)
        await send_request(mosquitto, "EndDeviceControls", request("c-2", n="2"))
        await col.wait(lambda m: len(m) == 1)
        handler.gate.set()
        await col.wait(lambda m: len(m) == 3)
    got = replies(col)
    assert {k: [d["reply"]["result"] for d in v] for k, v in got.items()} == {
        "c-0": ["OK"],
        "c-1": ["OK"],
        "c-2": ["FAILED"],
    }
    assert json.dumps(got["c-2"][0]["reply"]).count("Busy") == 1
