"""sd_notify: datagrams reach a real AF_UNIX datagram socket (path and abstract);
the watchdog pings only while healthy; everything is a no-op outside systemd."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from smmc_gateway.ops.notify import (
    LoopHealth,
    Notifier,
    start_watchdog,
    watchdog_interval,
    watchdog_loop,
)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def recv(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_stopping(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("serving 12 meters")
    assert recv(sock) == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=serving 12 meters"]
    assert n.status("polling\nfeeder 3")
    assert recv(sock) == ["STATUS=polling feeder 3"]
    assert n.watchdog()
    assert recv(sock) == ["WATCHDOG=1"]
    assert n.stopping("bye")
    assert recv(sock) == ["STOPPING=1", "STATUS=bye"]


def test_abstract_namespace_socket() -> None:
    name = f"smmc-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        n = Notifier(f"@{name}")
        assert n.ready()
        assert recv(sock)[0] == "READY=1"


def test_noop_without_systemd(tmp_path: Path) -> None:
    n = Notifier.from_environment({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    # A socket path that nobody listens on: no exception, reported as not sent.
    assert not Notifier(str(tmp_path / "nobody")).ready()


def test_watchdog_interval() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None


async def test_watchdog_pings_only_while_healthy(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    state = {"healthy": True, "unhealthy_checks": 0}
    five_unhealthy_checks = asyncio.Event()

    def healthy() -> bool:
        if not state["healthy"]:
            state["unhealthy_checks"] += 1
            if state["unhealthy_checks"] >= 5:
                five_unhealthy_checks.set()
        return bool(state["healthy"])

    task = asyncio.create_task(watchdog_loop(Notifier(path), 0.01, healthy))
    assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"WATCHDOG=1"
    state["healthy"] = False
    while True:  # drain pings sent before the switch (the loop is single-threaded)
        try:
            sock.recv(100)
        except BlockingIOError:
            break
    await asyncio.wait_for(five_unhealthy_checks.wait(), 5)
    with pytest.raises(BlockingIOError):
        sock.recv(100)
    state["healthy"] = True
    assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"WATCHDOG=1"
    task.cancel()


async def test_start_watchdog_from_environment(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    sock.setblocking(False)
    n = Notifier(path)
    assert start_watchdog(n, lambda: True, {}) is None
    task = start_watchdog(n, lambda: True, {"WATCHDOG_USEC": "20000"})
    assert task is not None
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 100), 5)
    assert data == b"WATCHDOG=1"
    task.cancel()


def test_loop_health() -> None:
    now = [100.0]
    health = LoopHealth(5, clock=lambda: now[0])
    assert not health()
    health.beat()
    now[0] = 104.0
    assert health()
    now[0] = 106.0
    assert not health()
