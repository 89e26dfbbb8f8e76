"""systemd service notification (sd_notify) over $NOTIFY_SOCKET, in plain stdlib.

`Notifier.from_environment()` is a no-op object when the daemon is not started by
systemd (no $NOTIFY_SOCKET), so callers never branch on it. Abstract-namespace
sockets ("@name") are supported. `watchdog_loop` pings WATCHDOG=1 at half of
$WATCHDOG_USEC, but only while the caller's health check says the main loop is
healthy: a wedged daemon stops pinging and systemd restarts it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

Healthy = Callable[[], bool]


class Notifier:
    """Sends sd_notify datagrams; every method is a no-op without a socket."""

    def __init__(self, address: str | None) -> None:
        self._address: str | bytes | None = None
        if address:
            if address.startswith("@"):
                self._address = "\0" + address[1:]
            elif address.startswith("/"):
                self._address = address
            # Other forms (e.g. vsock:) are not supported: stay a no-op.

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send "KEY=value" fields in one datagram; True if it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto(payload, self._address)
            except OSError:
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        fields = ["STOPPING=1"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Half of $WATCHDOG_USEC in seconds, or None when no watchdog is asked for (or it is
    meant for another process: $WATCHDOG_PID names a different pid)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2_000_000


async def watchdog_loop(notifier: Notifier, interval: float, healthy: Healthy) -> None:
    """Ping WATCHDOG=1 every `interval` seconds while `healthy()` is true. Runs until
    cancelled. When unhealthy it skips the ping (so systemd's watchdog fires)."""
    while True:
        if healthy():
            notifier.watchdog()
        await asyncio.sleep(interval)


def start_watchdog(
    notifier: Notifier, healthy: Healthy, env: Mapping[str, str] | None = None
) -> asyncio.Task[None] | None:
    """Start the watchdog task if systemd asked for one; None otherwise."""
    interval = watchdog_interval(env)
    if interval is None or not notifier.enabled:
        return None
    return asyncio.create_task(watchdog_loop(notifier, interval, healthy), name="sd-watchdog")


class LoopHealth:
    """Health as seen from the event loop: the main loop calls `beat()` each turn; the
    loop is healthy while the last beat is younger than `max_age` seconds."""

    def __init__(self, max_age: float, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._max_age = max_age
        self._last: float | None = None

    def beat(self) -> None:
        self._last = self._clock()

    def __call__(self) -> bool:
        return self._last is not None and self._clock() - self._last <= self._max_age
