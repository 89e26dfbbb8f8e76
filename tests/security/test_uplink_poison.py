"""Poison commands: a request whose handling kills the gateway is not run at every start.

The crash is real: the child process (this file run as a script) serves requests with an
uplink whose handler ``os._exit``s on a request asking for it, as a segfault in a native
library or an OOM kill would end it. Each start re-dispatches the unanswered request;
after ``max_attempts`` deaths the next start answers it FAILED ``PoisonCommand`` once, and
other requests are served. A clean stop in the middle of a handling is not an attempt, a
handling longer than the timeout is answered FAILED ``Timeout`` (firmware campaigns
excepted) and a reply above the size limit becomes FAILED ``ReplyTooLarge``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from smmc_gateway.uplink import Outcome, Uplink, UplinkConfig
from test_uplink_mqtt import request, send_request
from uplink_helpers import running, validate_message, wait_until

GW = "gw-0001"
CRASH = 3


def config(broker: Broker, db: Path, **kw: Any) -> UplinkConfig:
    return UplinkConfig(gateway_id=GW, db_path=db, host=broker.host, port=broker.port, **kw)


async def _child(db: str, port: int) -> None:
    """Serve until SIGTERM; a request with ``"crash": true`` kills the process."""
    from smmc_gateway.uplink import Outcome, Uplink, UplinkConfig

    async def handler(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        if payload.get("crash"):
            print("crashing", flush=True)
            os._exit(CRASH)
        return Outcome("OK", {"echo": payload})

    up = Uplink(UplinkConfig(gateway_id=GW, db_path=Path(db), port=port, max_attempts=2), handler)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(up.stop(5)))
    task = loop.create_task(up.run())
    await asyncio.wait_for(up.connected.wait(), 10)
    print("ready", flush=True)
    await task


def _spawn(db: Path, port: int, out: Path) -> subprocess.Popen[bytes]:
    tests = str(Path(__file__).resolve().parent.parent)  # conftest, helpers (module imports)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p),
    }
    with out.open("wb") as f:
        return subprocess.Popen([sys.executable, __file__, str(db), str(port)], stdout=f, env=env)


async def _exit_code(child: subprocess.Popen[bytes], timeout: float = 30.0) -> int:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        assert time.monotonic() < deadline, "the child did not end"
        await asyncio.sleep(0.05)
    return child.returncode


async def _ready(out: Path, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while "ready" not in out.read_text():  # noqa: ASYNC240 - a small local file, polled
        assert child.poll() is None, f"the child ended ({child.returncode}) before serving"
        assert time.monotonic() < deadline, "the child never connected"
        await asyncio.sleep(0.05)


def _attempts(db: Path, cid: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute("SELECT attempts FROM command WHERE correlation_id=?", (cid,)).fetchone()[
                0
            ]
        )
    finally:
        conn.close()


def _replies(col: Collector) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in col.messages:
        doc = validate_message(m.payload)  # type: ignore[arg-type]
        out.setdefault(doc["header"]["correlationId"], []).append(doc)
    return out


async def test_a_request_that_kills_the_gateway_twice_is_answered_poison_once(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    db = tmp_path / "uplink.db"
    # 1st start: the request arrives and kills the gateway while it is handled
    out = tmp_path / "run1.out"
    child = _spawn(db, mosquitto.port, out)
    await _ready(out, child)
    await send_request(mosquitto, "EndDeviceControls", request("c-poison", crash=True))
    assert await _exit_code(child) == CRASH
    assert _attempts(db, "c-poison") == 1
    # 2nd start: re-dispatched from the journal, it kills the gateway again
    out = tmp_path / "run2.out"
    child = _spawn(db, mosquitto.port, out)
    assert await _exit_code(child) == CRASH
    assert "crashing" in out.read_text() and _attempts(db, "c-poison") == 2
    # meanwhile another request waits at the broker for the next start
    await send_request(mosquitto, "EndDeviceControls", request("c-queued", n=1))
    # 3rd start: answered PoisonCommand without running it; the other requests are served
    out = tmp_path / "run3.out"
    child = _spawn(db, mosquitto.port, out)
    await _ready(out, child)
    await send_request(mosquitto, "EndDeviceControls", request("c-after", n=2))
    await col.wait(lambda m: len(m) == 3, timeout=30)
    child.send_signal(signal.SIGTERM)
    assert await _exit_code(child) == 0
    assert "crashing" not in out.read_text()
    replies = _replies(col)
    assert sorted(replies) == ["c-after", "c-poison", "c-queued"]
    assert all(len(r) == 1 for r in replies.values())  # one reply each
    (poison,) = replies["c-poison"]
    assert poison["reply"]["result"] == "FAILED"
    (err,) = poison["reply"]["errors"]
    assert err["code"] == "PoisonCommand"
    assert "2 times" in err["details"] and "max_attempts = 2" in err["details"]
    assert replies["c-queued"][0]["reply"]["result"] == "OK"
    assert replies["c-after"][0]["payload"] == {"echo": {"n": 2}}
    assert _attempts(db, "c-poison") == 2  # not counted again: it was not run


async def test_a_clean_stop_during_handling_is_not_an_attempt(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    """With max_attempts = 1 a counted stop would poison the request at the next start."""
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    db = tmp_path / "uplink.db"
    for i in range(2):
        started = asyncio.Event()

        async def parked(
            noun: str, verb: str, payload: dict[str, Any], started: asyncio.Event = started
        ) -> Outcome:
            started.set()
            await asyncio.Event().wait()  # like a command parked by GatewayStopping
            raise AssertionError("unreachable")

        up = Uplink(config(mosquitto, db, max_attempts=1), parked)
        async with running(up, stop_deadline_s=0.5):
            if i == 0:  # then re-dispatched from the journal at the second start
                await send_request(mosquitto, "EndDeviceFirmware", request("c-fw", verb="create"))
            await asyncio.wait_for(started.wait(), 10)
            assert await up.journal.attempts("c-fw") == 1  # counted while it runs
        assert _attempts(db, "c-fw") == 0  # the clean stop took it back

    async def ok(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        return Outcome("OK")

    up = Uplink(config(mosquitto, db, max_attempts=1), ok)
    async with running(up):
        await col.wait(lambda m: len(m) == 1)
    doc = validate_message(col.messages[0].payload)  # type: ignore[arg-type]
    assert doc["header"]["correlationId"] == "c-fw" and doc["reply"]["result"] == "OK"


async def test_a_handling_past_the_timeout_is_answered_timeout_but_firmware_is_not(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")
    cancelled: list[str] = []

    async def handler(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        try:
            if noun == "EndDeviceFirmware":
                await asyncio.sleep(0.6)  # longer than the timeout: a campaign may take days
                return Outcome("OK")
            await asyncio.Event().wait()  # a handler that never ends
        except asyncio.CancelledError:
            cancelled.append(noun)
            raise
        raise AssertionError("unreachable")

    up = Uplink(config(mosquitto, tmp_path / "u.db", command_timeout_s=0.2), handler)
    async with running(up):
        await send_request(mosquitto, "EndDeviceControls", request("c-hang"))
        await send_request(mosquitto, "EndDeviceFirmware", request("c-fw", verb="create"))
        await col.wait(lambda m: len(m) == 2)
        attempts = await up.journal.attempts("c-hang")
    replies = {
        d["header"]["correlationId"]: d["reply"]
        for d in (validate_message(m.payload) for m in col.messages)
    }  # type: ignore[arg-type]
    assert replies["c-fw"]["result"] == "OK"
    assert replies["c-hang"]["result"] == "FAILED"
    (err,) = replies["c-hang"]["errors"]
    assert err["code"] == "Timeout" and "commands.timeout = 0.2s" in err["details"]
    assert cancelled == ["EndDeviceControls"]  # the handler was cancelled, not left running
    assert attempts == 1 and up.counters.timed_out_commands == 1


async def test_a_reply_above_the_size_limit_or_not_json_is_replaced_by_failed(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/reply/#")

    async def handler(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        if payload.get("big"):
            return Outcome("OK", {"blob": "x" * 5000})
        if payload.get("odd"):
            return Outcome("OK", {"when": {1, 2}})  # a set: not JSON
        return Outcome("OK", {"blob": "x" * 100})

    up = Uplink(config(mosquitto, tmp_path / "u.db", max_reply_bytes=4096), handler)
    async with running(up):
        for cid, kw in (("c-big", {"big": True}), ("c-odd", {"odd": True}), ("c-ok", {})):
            await send_request(mosquitto, "MeterReadings", request(cid, verb="get", **kw))
        await col.wait(lambda m: len(m) == 3)
    replies = {
        d["header"]["correlationId"]: d for d in (validate_message(m.payload) for m in col.messages)
    }  # type: ignore[arg-type]
    big = replies["c-big"]
    assert big["reply"]["result"] == "FAILED" and big["payload"] == {}
    (err,) = big["reply"]["errors"]
    assert err["code"] == "ReplyTooLarge"
    assert "5035 bytes" in err["details"] and "commands.max_reply_bytes = 4096" in err["details"]
    odd = replies["c-odd"]["reply"]
    assert odd["result"] == "FAILED" and odd["errors"][0]["code"] == "HandlerError"
    assert "JSON" in odd["errors"][0]["details"]
    assert replies["c-ok"]["reply"]["result"] == "OK"
    assert len(json.dumps(replies["c-ok"]["payload"])) > 100
    assert up.counters.oversized_replies == 1


async def test_redispatch_at_start_answers_poison_without_a_connection(tmp_path: Path) -> None:
    """The journal's count decides at start, before any broker is reachable."""
    db = tmp_path / "u.db"
    seen: list[str] = []

    async def handler(noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        seen.append(payload["n"])
        return Outcome("OK")

    cfg = UplinkConfig(gateway_id=GW, db_path=db, port=1, max_attempts=2, backoff_min_s=0.05)
    up = Uplink(cfg, handler)
    from smmc_gateway.uplink.journal import Command

    for cid, n in (("c-a", "a"), ("c-b", "b")):
        assert await up.journal.record(Command(cid, "EndDeviceControls", "execute", {"n": n}))
    for _ in range(2):  # two handlings of c-a that never ended (the process died)
        assert (await up.journal.begin_attempt("c-a", 2)).started
    task = asyncio.get_running_loop().create_task(up.run())
    await wait_until(lambda: up.counters.poison_commands == 1 and seen == ["b"])
    await up.stop(0)
    await asyncio.wait_for(task, 10)
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT correlation_id, result FROM command").fetchall())
    replies = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY id")]
    conn.close()
    assert rows == {"c-a": "FAILED", "c-b": "OK"}
    by_cid = {r["header"]["correlationId"]: r["reply"] for r in replies}
    assert by_cid["c-a"]["errors"][0]["code"] == "PoisonCommand"


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], int(sys.argv[2])))
