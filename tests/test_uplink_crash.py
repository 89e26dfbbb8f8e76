"""The uplink process is SIGKILLed mid-flow and restarted: nothing is lost, ids are stable.

The child (this file run as a script) stores readings in batches and prints each
messageId once its commit returned; the parent kills it with SIGKILL while it is
publishing, reads what was left in its outbox, restarts it in drain mode and checks
that a persistent-session subscriber got every stored message, re-sends with the
same messageId and the same bytes, and that the broker published the will (offline).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Broker, Collector
from uplink_helpers import ids_on, validate_message

GW = "gw-0001"


async def _child(db: str, port: int, count: int) -> None:
    from smmc_gateway.uplink import Uplink, UplinkConfig
    from smmc_gateway.uplink.envelope import meter_readings

    up = Uplink(
        UplinkConfig(gateway_id=GW, db_path=Path(db), port=port, max_inflight=2 if count else 32)
    )
    task = asyncio.get_running_loop().create_task(up.run())
    await asyncio.wait_for(up.connected.wait(), 10)
    for start in range(0, count, 50):
        ids = await up.publish(
            [meter_readings(up.topics, f"m{i}") for i in range(start, min(count, start + 50))]
        )
        print("\n".join(f"stored {i}" for i in ids), flush=True)
        await asyncio.sleep(0.005)  # let the sender run: the kill lands mid-flow
    if count == 0:  # drain mode: wait until the outbox is empty, then stop cleanly
        while sum(b["depth"] for b in (await up.status())["backlog"].values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await up.stop(10)
    await task


def _spawn(db: Path, port: int, count: int, out: Path) -> subprocess.Popen[bytes]:
    """Run the child; its stdout goes to a file so a full pipe never blocks it."""
    with out.open("wb") as f:
        return subprocess.Popen(
            [sys.executable, __file__, str(db), str(port), str(count)], stdout=f
        )


async def test_sigkill_mid_flow_loses_nothing(
    mosquitto: Broker, tmp_path: Path, collector: Any
) -> None:
    col: Collector = await collector(mosquitto, f"smmc/v1/{GW}/#")
    db = tmp_path / "uplink.db"
    child = _spawn(db, mosquitto.port, 1500, tmp_path / "child.out")
    await col.wait(lambda m: len(ids_on(m, "/readings")) >= 100, timeout=30)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    out = (tmp_path / "child.out").read_text()
    stored_before_kill = [ln[7:] for ln in out.splitlines() if ln.startswith("stored ")]
    assert child.returncode == -signal.SIGKILL
    await col.wait(
        lambda m: any(
            json.loads(x.payload).get("state") == "offline"  # type: ignore[arg-type]
            for x in m
            if str(x.topic).endswith("/status")
        )
    )  # the will
    conn = sqlite3.connect(db)
    left = {r[0]: bytes(r[1]) for r in conn.execute("SELECT message_id, payload FROM outbox")}
    conn.close()
    assert left, "the kill did not land mid-flow (nothing left in the outbox)"

    drain = _spawn(db, mosquitto.port, 0, tmp_path / "drain.out")
    must = set(stored_before_kill) | set(left)
    await col.wait(lambda m: set(ids_on(m, "/readings")) >= must, timeout=60)
    assert drain.wait(timeout=30) == 0

    got = [m for m in col.messages if str(m.topic).endswith("/readings")]
    by_id: dict[str, bytes] = {}
    for m in got:
        assert isinstance(m.payload, bytes)
        mid = validate_message(m.payload)["header"]["messageId"]
        assert by_id.setdefault(mid, m.payload) == m.payload  # a re-send is byte-identical
    assert set(by_id) <= must | set(by_id)  # nothing unknown
    for mid, payload in left.items():
        assert by_id[mid] == payload  # re-sent after the restart with the same messageId
    seqs = sorted(json.loads(p)["header"]["seq"] for p in by_id.values())
    assert seqs == list(range(1, len(seqs) + 1))  # seq is gap-free across the crash


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
