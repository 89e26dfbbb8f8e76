"""The push listener: a TCP server (wrapper framing) for data-notifications meters push.

Meters push alarms, last-gasp and scheduled data to the head-end as DLMS
data-notification APDUs, plain or in general-glo-ciphering (which carries the
meter's system title). For each one the listener finds the meter's keys (by
the system title in the APDU, else by the peer's IP address), deciphers and
authenticates it, rejects a replayed invocation counter, decodes the body and
hands a :class:`PushEvent` to the callback. An unknown sender, a bad tag, a
replay, a plain push from a meter that has keys, or a malformed frame is
refused: counted in :attr:`PushListener.counters`, logged, and never stops the
listener.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.errors import SecurityFailure
from smmc_gateway.dlms.ic_store import InvocationCounterStore, memory_store

log = structlog.get_logger("smmc_gateway.dlms.push")

DATA_NOTIFICATION = 0x0F
GENERAL_GLO_CIPHERING = 0xDB


@dataclass(frozen=True)
class MeterKeys:
    """What the listener knows of one pushing meter. With ``ek``/``ak`` set,
    only ciphered pushes with at least ``required_protection`` are accepted."""

    meter_id: str
    system_title: bytes | None = None
    ek: bytes | None = field(default=None, repr=False)
    ak: bytes | None = field(default=None, repr=False)
    required_protection: int = 0x30


KeyLookup = Callable[[bytes | None, str], MeterKeys | None]
"""``(system_title or None, peer IP address) -> MeterKeys | None``."""


@dataclass(frozen=True)
class PushEvent:
    """One accepted data-notification."""

    meter_id: str
    received_at: datetime
    meter_time: datetime | None
    """The notification's date-time (None when absent or not specified)."""
    body: dict[str, Any]
    """The notification body as a typed value."""
    long_invoke_id: int
    ciphered: bool
    system_title: bytes | None
    invocation_counter: int | None
    peer: str


@dataclass
class PushCounters:
    accepted: int = 0
    refused_unknown: int = 0
    refused_security: int = 0
    refused_malformed: int = 0
    callback_errors: int = 0
    connections: int = 0


class PushRefused(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


PushCallback = Callable[[PushEvent], Awaitable[None] | None]


class PushListener:
    """``async with PushListener(lookup, on_event, port=4059) as listener: ...``"""

    def __init__(
        self,
        lookup: KeyLookup,
        on_event: PushCallback,
        *,
        host: str = "0.0.0.0",
        port: int = 4059,
        ic_store: InvocationCounterStore | None = None,
        idle_timeout: float = 120.0,
    ) -> None:
        self.lookup = lookup
        self.on_event = on_event
        self.host = host
        self._port = port
        self.store = ic_store or memory_store()
        self.idle_timeout = idle_timeout
        self.counters = PushCounters()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        self.store.flush()

    async def __aenter__(self) -> PushListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if peername else "?"
        self.counters.connections += 1
        framer = _core.WrapperFramer()
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout):
                    data = await reader.read(65536)
                if not data:
                    return
                framer.feed(data)
                while (frame := framer.next_frame()) is not None:
                    await self._frame(frame[2], peer)
        except _core.WrapperError as exc:
            self.counters.refused_malformed += 1
            log.warning("push_bad_wrapper", peer=peer, error=str(exc))
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _frame(self, apdu: bytes, peer: str) -> None:
        try:
            event = self.accept(apdu, peer)
        except PushRefused as exc:
            setattr(self.counters, exc.kind, getattr(self.counters, exc.kind) + 1)
            log.warning("push_refused", peer=peer, kind=exc.kind, reason=str(exc))
            return
        self.counters.accepted += 1
        try:
            result = self.on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # a consumer bug must not stop the listener
            self.counters.callback_errors += 1
            log.error("push_callback_failed", meter_id=event.meter_id, error=repr(exc))

    def accept(self, apdu: bytes, peer: str) -> PushEvent:
        """Check and decode one pushed APDU; raises PushRefused (sans-IO part)."""
        if not apdu:
            raise PushRefused("refused_malformed", "empty APDU")
        ciphered = apdu[0] == GENERAL_GLO_CIPHERING
        if apdu[0] not in (DATA_NOTIFICATION, GENERAL_GLO_CIPHERING):
            raise PushRefused("refused_malformed", f"not a data-notification: tag 0x{apdu[0]:02x}")
        title: bytes | None = None
        counter: int | None = None
        if ciphered:
            try:
                title = _core.decode_apdu(apdu)["system_title"]
            except _core.DlmsError as exc:
                raise PushRefused("refused_malformed", f"bad general-glo-ciphering: {exc}") from exc
        keys = self.lookup(title, peer)
        who = f"system title {title.hex()}" if title else f"peer {peer}"
        if keys is None:
            raise PushRefused("refused_unknown", f"push from unknown {who}")
        plain = apdu
        if ciphered:
            if keys.ek is None or keys.ak is None:
                raise PushRefused("refused_security", f"ciphered push from {who}: no keys known")
            try:
                plain, _sc, counter, title = _core.decipher_apdu(
                    apdu,
                    system_title=None,
                    ek=keys.ek,
                    ak=keys.ak,
                    required_protection=keys.required_protection,
                )
                self.store.check_incoming(f"push:{keys.meter_id}", title, counter)
            except (_core.SecurityError, SecurityFailure) as exc:
                raise PushRefused("refused_security", f"push from {who}: {exc}") from exc
            except _core.DlmsError as exc:
                raise PushRefused("refused_malformed", f"push from {who}: {exc}") from exc
            self.store.flush()
        elif keys.ek is not None:
            raise PushRefused(
                "refused_security", f"unciphered push from {who} (meter {keys.meter_id} has keys)"
            )
        try:
            notification = _core.decode_apdu(plain)
            if notification["apdu"] != "data-notification":
                raise PushRefused("refused_malformed", f"{notification['apdu']} pushed")
            body = _core.decode(notification["body_raw"])
        except _core.DlmsError as exc:
            raise PushRefused("refused_malformed", f"push from {who}: {exc}") from exc
        meter_time = None
        if notification.get("date_time"):
            try:
                meter_time = _core.decode_datetime(notification["date_time"])
            except _core.DlmsError:
                meter_time = None
        return PushEvent(
            meter_id=keys.meter_id,
            received_at=datetime.now(UTC),
            meter_time=meter_time,
            body=body,
            long_invoke_id=notification["long_invoke_id_and_priority"],
            ciphered=ciphered,
            system_title=title,
            invocation_counter=counter,
            peer=peer,
        )
