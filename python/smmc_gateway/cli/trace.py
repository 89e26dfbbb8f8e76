"""`meter --trace`: every APDU exchanged, decoded by the translator, on stderr.

A :class:`TracingTransport` wraps the real transport and shows each APDU as the
`decode` command would (ciphered ones stay ciphered: keys are never used or
shown here), with the direction and the time since the session started. The
text goes through the output redactor, so an LLS password in an AARQ is masked.
"""

# ruff: noqa: ASYNC109  (the Transport API takes explicit timeouts)

from __future__ import annotations

import sys
import time

from rich.console import Console

from smmc_gateway import console, translate
from smmc_gateway.cli.common import REDACT
from smmc_gateway.dlms.stream import Transport


class TracingTransport(Transport):
    """Delegates to ``inner`` and prints each APDU sent and received."""

    def __init__(self, inner: Transport, err: Console | None = None) -> None:
        self.inner = inner
        self.counters = inner.counters
        self.description = inner.description
        self._err = err if err is not None else console.make_console(sys.stderr)
        self._t0 = time.monotonic()

    def _show(self, arrow: str, apdu: bytes) -> None:
        layers = translate.translate(apdu)
        title = f"{arrow} {time.monotonic() - self._t0:7.3f} s  {len(apdu)} bytes"
        with self._err.capture() as cap:
            self._err.print(console.layer_tree(layers, title))
        sys.stderr.write(REDACT(cap.get()))
        sys.stderr.flush()

    async def open(self, timeout: float = 10.0) -> None:
        self._t0 = time.monotonic()
        await self.inner.open(timeout)

    async def send_apdu(self, apdu: bytes) -> None:
        self._show("->", apdu)
        await self.inner.send_apdu(apdu)

    async def receive_apdu(self, timeout: float) -> bytes:
        apdu = await self.inner.receive_apdu(timeout)
        self._show("<-", apdu)
        return apdu

    async def close(self, timeout: float = 3.0) -> None:
        await self.inner.close(timeout)

    @property
    def max_apdu_size(self) -> int | None:
        return self.inner.max_apdu_size
