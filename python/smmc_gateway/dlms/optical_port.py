"""The optical port transport: IEC 62056-21 mode E sign-on, then HDLC on the same port.

The port opens at 300 baud 7E1; the reader sends the request, the meter its
identification (:class:`~smmc_gateway.dlms.optical.OpticalSignOn` parses it,
tolerating an echoing head), the reader acknowledges with mode E and the
agreed rate; once the acknowledgement has left the UART the same port is
switched to that rate 8N1 and handed to HDLC. A meter that answers the
acknowledgement with NAK, gives no or a wrong identification, or does not
offer mode E ends in :class:`OpticalSignOnError` with what it sent.

:class:`ModeESignOnTransport` is the sign-on on any byte pipe; the same
handshake over TCP (a converter in front of the meter's port) is
:class:`smmc_gateway.dlms.mode_e_tcp.ModeETcpTransport`.
"""

# ruff: noqa: ASYNC109  (an explicit per-call timeout is this API's contract)

from __future__ import annotations

import asyncio
import os
import termios
import time
from typing import Any

import structlog

from smmc_gateway.dlms.errors import TransportError
from smmc_gateway.dlms.hdlc_transport import HdlcSettings, HdlcTransport
from smmc_gateway.dlms.optical import NAK, SIGN_ON_BAUD, OpticalHandshakeError, OpticalSignOn
from smmc_gateway.dlms.serial import Bus, serial_connector
from smmc_gateway.dlms.stream import Connector

log = structlog.get_logger("smmc_gateway.dlms")


class OpticalSignOnError(TransportError):
    """The mode E sign-on failed (optical port, or over TCP); the message says what
    the meter sent or did not."""


class ModeESignOnTransport(HdlcTransport):
    """HDLC after the IEC 62056-21 mode E sign-on, on any byte pipe.

    ``identification_timeout``: how long the meter has to identify itself
    after each of ``sign_on_attempts`` requests (IEC 62056-21 allows 1.5 s
    after the request; heads and slow meters need margin); ``nak_window``:
    how long to listen for a NAK after the acknowledgement before handing the
    line to HDLC. Subclasses say how the pipe is opened and what the line does
    around the acknowledgement (a serial port changes rate and frame format;
    a TCP converter does that itself).
    """

    def __init__(
        self,
        connector: Connector,
        settings: HdlcSettings,
        *,
        description: str,
        where: str,
        max_baud: int = 9600,
        device_address: str = "",
        identification_timeout: float = 2.0,
        sign_on_attempts: int = 3,
        nak_window: float = 0.3,
    ) -> None:
        super().__init__(connector, settings, description=description)
        self.where = where
        self.identification_timeout = identification_timeout
        self.sign_on_attempts = max(1, sign_on_attempts)
        self.nak_window = nak_window
        self._sign_on = OpticalSignOn(device_address=device_address, max_baud=max_baud)
        self._signing_on = True
        self._after_ack = bytearray()
        self._sign_on_error: Exception | None = None
        self._progress: asyncio.Event = asyncio.Event()
        self.identification: str | None = None
        self.baud: int | None = None

    async def open(self, timeout: float = 10.0) -> None:
        start = time.monotonic()
        try:
            await self._open_pipe(timeout)
            await self._handshake()
            await self.start_link(timeout - (time.monotonic() - start))
        except BaseException:
            await self.close()
            raise

    # ------------------------------------------------------------ line hooks
    def _sign_on_format(self) -> None:
        """Prepare the line for the sign-on (serial: 300 baud 7E1)."""

    async def _drain(self) -> None:
        """Wait until the acknowledgement has left (serial: out of the UART)."""
        pipe: Any = self._pipe
        if self._protocol is not None and pipe is not None:
            pipe.set_write_buffer_limits(high=0)  # pause_writing until the buffer is empty
            try:
                if pipe.get_write_buffer_size() > 0:
                    self._protocol.drained.clear()
                await self._protocol.drained.wait()
            finally:
                pipe.set_write_buffer_limits()  # the defaults again, for HDLC

    def _switch(self, baud: int) -> None:
        """Hand the line to HDLC at ``baud`` (serial: the new rate, 8N1)."""

    # ------------------------------------------------------------ the sign-on
    async def _handshake(self) -> None:
        self._sign_on_format()
        attempt = 0
        deadline = 0.0
        while self._sign_on.identification is None:
            if self._sign_on_error is not None:
                raise OpticalSignOnError(f"{self.where}: {self._sign_on_error}")
            if self._error is not None:
                raise OpticalSignOnError(
                    f"{self.where}: connection closed during the mode E sign-on, after "
                    f"{attempt} request(s), before an identification{self._heard()}"
                )
            if time.monotonic() >= deadline:
                if attempt == self.sign_on_attempts:
                    raise OpticalSignOnError(
                        f"{self.where}: no identification within "
                        f"{self.identification_timeout:g} s after each of {attempt} sign-on "
                        f"requests{self._heard()} ({self._silence_hint()})"
                    )
                # A meter's optical port may miss the first request (it wakes
                # up on it): readers repeat the request.
                attempt += 1
                self._write(self._sign_on.start())
                deadline = time.monotonic() + self.identification_timeout
            await self._wait_progress(deadline)
        ident = self._sign_on.identification
        self.identification = f"{ident.manufacturer} {ident.identification}"
        self.baud = self._sign_on.baud
        ack = self._sign_on.acknowledgement()
        self._after_ack.clear()
        self._write(ack)
        await self._drain()
        # A meter that refuses the acknowledgement answers NAK (at 300 baud).
        deadline = time.monotonic() + self.nak_window
        while True:
            if NAK in self._after_ack:  # may have come while the ack drained
                raise OpticalSignOnError(
                    f"{self.where}: meter {self.identification!r} refused mode E at "
                    f"{self.baud} baud (NAK to the acknowledgement {ack!r})"
                )
            if self._error is not None:
                raise OpticalSignOnError(
                    f"{self.where}: connection closed after the mode E acknowledgement "
                    f"{ack!r} to meter {self.identification!r}"
                )
            if not await self._wait_progress(deadline):
                break
        self._switch(self.baud)
        self._signing_on = False
        log.info(
            "mode_e_signed_on",
            where=self.where,
            meter=self.identification,
            baud=self.baud,
            requests=attempt,
        )

    def _silence_hint(self) -> str:
        return "is the head on the meter's optical port?"

    def _heard(self) -> str:
        """What the meter sent that was not an identification (for the error)."""
        heard = self._sign_on.pending
        if not heard:
            return ": nothing received"
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in heard[:40])
        more = "…" if len(heard) > 40 else ""
        return f": received {len(heard)} byte(s) '{shown}'{more} (wrong rate or parity?)"

    def _connection_lost(self, exc: Exception | None) -> None:
        super()._connection_lost(exc)
        self._progress.set()  # wake the sign-on: it names the loss

    async def _wait_progress(self, deadline: float) -> bool:
        """Wait for received bytes until ``deadline``; False on timeout."""
        self._progress.clear()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            async with asyncio.timeout(remaining):
                await self._progress.wait()
        except TimeoutError:
            return False
        return True

    def _data_received(self, data: bytes) -> None:
        if not self._signing_on:
            super()._data_received(data)
            return
        self.counters.bytes_received += len(data)
        if self._sign_on.identification is None:
            try:
                self._sign_on.receive_data(data)
            except OpticalHandshakeError as exc:
                self._sign_on_error = exc
        else:
            self._after_ack += data
        self._progress.set()


class OpticalTransport(ModeESignOnTransport):
    """HDLC through an optical head after the mode E sign-on: the port opens at
    300 baud 7E1 and is switched to the agreed rate 8N1 after the acknowledgement."""

    def __init__(
        self,
        device: str,
        settings: HdlcSettings,
        *,
        max_baud: int = 9600,
        device_address: str = "",
        identification_timeout: float = 2.0,
        sign_on_attempts: int = 3,
        nak_window: float = 0.3,
        bus: Bus | None = None,
    ) -> None:
        super().__init__(
            # Opened 8N1 and then set to 7E1 (see _sign_on_format).
            serial_connector(device, SIGN_ON_BAUD),
            settings,
            description=f"optical {device}",
            where=device,
            max_baud=max_baud,
            device_address=device_address,
            identification_timeout=identification_timeout,
            sign_on_attempts=sign_on_attempts,
            nak_window=nak_window,
        )
        self.device = device
        self._pty = _is_pseudo_terminal(device)
        self.bus = bus

    async def open(self, timeout: float = 10.0) -> None:
        start = time.monotonic()
        if self.bus is not None:
            await self.bus.acquire(self.description, timeout)
        try:
            await super().open(timeout - (time.monotonic() - start))
        except BaseException:
            await self.close()
            raise

    async def close(self, timeout: float = 3.0) -> None:
        try:
            await super().close(timeout)
            await self._wait_closed(1.0)
        finally:
            if self.bus is not None and self.bus.holder == self.description:
                self.bus.release()

    def _sign_on_format(self) -> None:
        """7E1 for the sign-on. Linux pseudo-terminals (socat, simulators)
        refuse parity/7-bit settings with EINVAL and pass bytes unchanged
        anyway: on them the frame format is left alone."""
        if self._pty:
            return
        serial = self._serial()
        try:
            serial.bytesize = 7
            serial.parity = "E"
        except (OSError, termios.error) as exc:
            raise OpticalSignOnError(f"{self.device}: cannot set 300 baud 7E1: {exc}") from exc

    def _serial(self) -> Any:
        serial = getattr(self._pipe, "serial", None)
        if serial is None:
            raise OpticalSignOnError(f"{self.device}: not a serial port transport")
        return serial

    async def _drain(self) -> None:
        """Wait until the acknowledgement has left the UART (at 300 baud)."""
        await super()._drain()
        await asyncio.to_thread(self._serial().flush)  # tcdrain: out of the UART

    def _switch(self, baud: int) -> None:
        serial = self._serial()
        try:
            serial.baudrate = baud
            if not self._pty:
                serial.bytesize = 8
                serial.parity = "N"
        except (OSError, termios.error) as exc:
            raise OpticalSignOnError(f"{self.device}: cannot switch to {baud} 8N1: {exc}") from exc
        serial.reset_input_buffer()  # the ACK echoed by the head, line noise of the switch


def _is_pseudo_terminal(device: str) -> bool:
    """Unix98 pseudo-terminal slaves have major numbers 136..143."""
    try:
        return 136 <= os.major(os.stat(device).st_rdev) <= 143
    except OSError:
        return False
