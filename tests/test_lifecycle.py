"""The daemon lifecycle in a real child process: READY, WATCHDOG, then SIGTERM gives
STOPPING and a clean exit; SIGHUP only asks for a reload."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import asyncio
    from smmc_gateway.ops.lifecycle import DaemonLifecycle

    async def main() -> None:
        async with DaemonLifecycle() as life:
            life.ready("serving 3 meters")
            await life.reload_requested.wait()
            life.status("reloaded")
            await life.stop_requested.wait()
            print("stopped by", life.stop_signal.name, flush=True)

    asyncio.run(main())
    """
)


def test_lifecycle_under_a_fake_systemd(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(20)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "PATH": "/usr/bin:/bin"}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ready = sock.recv(4096).decode().split("\n")
            assert ready[0] == "READY=1" and ready[-1] == "STATUS=serving 3 meters"
            assert f"MAINPID={child.pid}" in ready
            assert sock.recv(4096) == b"WATCHDOG=1"
            child.send_signal(signal.SIGHUP)
            while (msg := sock.recv(4096)) == b"WATCHDOG=1":
                pass
            assert msg == b"STATUS=reloaded"
            child.send_signal(signal.SIGTERM)
            while (msg := sock.recv(4096)) == b"WATCHDOG=1":
                pass
            assert msg.decode().split("\n") == ["STOPPING=1", "STATUS=stopping"]
            out, err = child.communicate(timeout=20)
        finally:
            child.kill()
        assert child.returncode == 0, err
        assert out.strip() == "stopped by SIGTERM"
