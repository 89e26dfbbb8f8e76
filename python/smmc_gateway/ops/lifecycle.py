"""The daemon's life under systemd: signals in, sd_notify out.

    async with DaemonLifecycle() as life:        # SIGTERM/SIGINT -> life.stop_requested
        ...start everything...
        life.ready("serving 120 meters")         # READY=1 (+ STATUS=)
        await life.stop_requested.wait()
    # on exit: STOPPING=1, watchdog stopped, signal handlers removed

SIGHUP sets `reload_requested` (the daemon may re-read its configuration). The watchdog
task pings WATCHDOG=1 at half of $WATCHDOG_USEC while `healthy()` (given by the daemon,
e.g. a `LoopHealth` its main loop beats) is true.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from types import TracebackType

from smmc_gateway.ops.notify import Healthy, Notifier, start_watchdog

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DaemonLifecycle:
    def __init__(
        self,
        notifier: Notifier | None = None,
        healthy: Healthy | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.notifier = notifier if notifier is not None else Notifier.from_environment(env)
        self._healthy: Healthy = healthy if healthy is not None else (lambda: True)
        self._env = env
        self.stop_requested = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.stop_signal: signal.Signals | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._installed: list[signal.Signals] = []

    def _on_stop(self, sig: signal.Signals) -> None:
        self.stop_signal = sig
        self.stop_requested.set()

    async def __aenter__(self) -> DaemonLifecycle:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_stop, sig)
            self._installed.append(sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        self._installed.append(signal.SIGHUP)
        self._watchdog = start_watchdog(self.notifier, self._healthy, self._env)
        return self

    def ready(self, status: str | None = None) -> None:
        self.notifier.ready(status)

    def status(self, text: str) -> None:
        self.notifier.status(text)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        reason = "stopping" if exc_type is None else f"stopping after error: {exc_type.__name__}"
        self.notifier.stopping(reason)
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()
