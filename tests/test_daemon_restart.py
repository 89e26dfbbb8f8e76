"""The gateway process killed and restarted: nothing lost, same messageIds, one reply.

The gateway runs as a real process (``smmc-gateway run``); the simulated meters
and the broker outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from conftest import Broker
from smmc_gateway.simulator.faults import FaultOptions
from test_daemon_e2e import GW, control, lab, on, online, reply, request, send
from uplink_helpers import wait_until

from tests.support_sim import REPO, FleetSpec, running_fleet


@contextlib.contextmanager
def gateway_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smmc_gateway.cli",
                "run",
                "--config",
                str(config),
                "--assume-clock-synchronised",
                "--first-read",
                "14400",
                "--log-format",
                "json",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql))
    except sqlite3.OperationalError:
        return []  # the gateway has not created the table yet
    finally:
        conn.close()


async def wait_rows(
    db: Path,
    sql: str,
    cond: Callable[[list[tuple[Any, ...]]], bool],
    timeout: float = 30.0,  # noqa: ASYNC109
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []

    def check() -> bool:
        nonlocal rows
        rows = query(db, sql)
        return cond(rows)

    await wait_until(check, timeout)
    return rows


async def test_sigkill_then_restart_loses_nothing_and_resends_same_ids(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    mosquitto.stop()  # the broker is away: everything the gateway reads waits in the outbox
    async with running_fleet(FleetSpec(meters=3)) as sim:
        cfg = lab(sim, tmp_path, mosquitto)
        outbox = cfg.parent / "state" / "outbox.sqlite"
        log = tmp_path / "gateway.log"
        with gateway_process(cfg, log) as gw:
            # (the registry of served meters is stored at start too: issue 11)
            meter_rows = (
                "SELECT message_id, topic, payload FROM outbox WHERE topic LIKE '%/meter/%'"
            )
            stored = await wait_rows(outbox, meter_rows, lambda rows: len(rows) >= 3)
            gw.send_signal(signal.SIGKILL)
            assert gw.wait(10) == -signal.SIGKILL
        stored = query(outbox, meter_rows)
        assert len({t for _, t, _ in stored}) == 3
        mosquitto.start()
        col = await collector(mosquitto, f"smmc/v1/{GW}/#")
        with gateway_process(cfg, log) as gw:
            want = {mid for mid, _, _ in stored}
            await col.wait(
                lambda ms: (
                    want
                    <= {
                        json.loads(m.payload)["header"]["messageId"]
                        for m in ms
                        if "/meter/" in str(m.topic)
                    }
                ),
                30,
            )
            by_id = {
                json.loads(m.payload)["header"]["messageId"]: m
                for m in col.messages
                if "/meter/" in str(m.topic)
            }
            for mid, topic, payload in stored:
                assert str(by_id[mid].topic) == topic
                assert by_id[mid].payload == bytes(payload)  # the stored bytes, re-sent as is
            gw.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(gw.wait, 30) == 0
        assert query(outbox, "SELECT count(*) FROM outbox") == [(0,)]


async def test_a_command_survives_a_restart_and_gets_exactly_one_reply(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    slow = FleetSpec(meters=1, faults=FaultOptions(delay_s=0.4))
    async with running_fleet(slow) as sim:
        meter = sim.info[0]["meter_id"]
        cfg = lab(sim, tmp_path, mosquitto)
        outbox = cfg.parent / "state" / "outbox.sqlite"
        log = tmp_path / "gateway.log"
        with gateway_process(cfg, log) as gw:
            await online(col)
            await send(mosquitto, "EndDeviceControls", request("ping-r", control("ping", [meter])))
            await wait_rows(
                outbox,
                "SELECT correlation_id, replied FROM command",
                lambda rows: ("ping-r", None) in rows,
            )
            gw.send_signal(signal.SIGKILL)  # journaled, not yet replied (the meter is slow)
            gw.wait(10)
        assert not on(col, "/reply/ping-r")
        with gateway_process(cfg, log) as gw:
            doc = await reply(col, "ping-r")
            assert doc["reply"]["result"] == "OK"
            assert doc["payload"]["EndDeviceControl"][0]["state"] == "energised"
            await send(mosquitto, "EndDeviceControls", request("ping-2", control("ping", [meter])))
            await reply(col, "ping-2")
            gw.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(gw.wait, 30) == 0
        assert len(on(col, "/reply/ping-r")) == 1
        assert query(outbox, "SELECT result FROM command WHERE correlation_id='ping-r'") == [
            ("OK",)
        ]
