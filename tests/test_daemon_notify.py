"""The daemon under systemd: READY=1 once serving, STOPPING=1 and exit 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Broker
from test_daemon_e2e import GW, lab

from tests.support_sim import REPO, FleetSpec, running_fleet


async def datagram(sock: socket.socket, want: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()

    async def loop_until() -> str:
        while True:
            data = (await loop.sock_recv(sock, 4096)).decode()
            if want in data.split("\n"):
                return data

    return await asyncio.wait_for(loop_until(), timeout)


async def test_ready_and_stopping_are_notified_and_sigterm_exits_zero(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/status")
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    async with running_fleet(FleetSpec(meters=2)) as sim:
        cfg = lab(sim, tmp_path, mosquitto)
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        with (tmp_path / "gw.log").open("wb") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once, never awaited
                [
                    sys.executable,
                    "-m",
                    "smmc_gateway.cli",
                    "run",
                    "--config",
                    str(cfg),
                    "--assume-clock-synchronised",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        try:
            ready = await datagram(sock, "READY=1")
            assert f"MAINPID={proc.pid}" in ready and "STATUS=serving 2 meters" in ready
            await col.wait(lambda ms: any(b'"online"' in m.payload for m in ms))  # type: ignore[operator]
            proc.send_signal(signal.SIGTERM)
            await datagram(sock, "STOPPING=1")
            assert await asyncio.to_thread(proc.wait, 30) == 0
            # a clean stop says offline itself (the will is for crashes)
            await col.wait(lambda ms: b'"offline"' in ms[-1].payload)  # type: ignore[operator]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.close()
