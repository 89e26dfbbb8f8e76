"""The push listener: a TCP server (wrapper framing) for data-notifications meters push.

Meters push alarms, last-gasp and scheduled data to the head-end as DLMS
data-notification APDUs, or one attribute's value (e.g. an alarm register) as an
event-notification-request, plain or in general-glo-ciphering (which carries the
meter's system title); short-name meters send InformationReport APDUs (0x18,
the same ways), taken with the short name of each value. For each one the
listener finds the meter's keys (by the system title in the APDU, else by the
peer's IP address), deciphers and
authenticates it with each key set the meter may hold (the new keys and, while a
key change is pending, the old ones), rejects a replayed invocation counter (only
once the APDU authenticated), decodes the body and hands a :class:`PushEvent` to
the callback. An unknown sender, a bad tag, a replay, a plain push from a meter
that has keys, or a malformed frame is refused: counted in
:attr:`PushListener.counters`, logged, and never stops the listener.

The listener is exposed to whoever can reach its port, so it is careful with
connections. Before a byte is read:

* a peer outside ``allowed_peers`` (the configured meters' addresses and networks)
  is closed at once; an IPv4-mapped IPv6 peer counts as its IPv4 address;
* at ``max_connections`` open connections, or ``max_per_peer`` from one address, a
  new connection is closed at once.

Then:

* a connection that has not delivered one complete wrapper frame within
  ``first_frame_timeout`` of connecting is closed; after that, one that goes
  ``idle_timeout`` without a complete frame (while the listener waits for one) is
  closed: trickling bytes does not keep a connection open;
* reads are at most :data:`READ_CHUNK` bytes and at most one maximal wrapper frame
  plus one read is buffered per connection: past that the connection is not read
  until its frames are handled (TCP back-pressure), so nothing is dropped.

Every connection the listener closes on its own is counted by reason and passed to
``on_close`` (the daemon's metric). ``host="::"`` listens on IPv6 and IPv4.

A push too long for one APDU may come as general-block-transfer blocks (Landis+Gyr
E450 pushes this way, streaming, the blocks numbered from 1 and the last one marked):
:class:`GbtPushAssembler` joins one connection's blocks, in order and bounded by
``max_apdu``, into the APDU they carry, which is then checked like any other. A lost
or repeated block discards the partial push (refused as malformed, counted).

Protection: a keyed meter's pushes must be ciphered with at least its
``required_protection`` (``0x30``, authenticated and encrypted, unless the meter's
configuration says ``push_protection = "encrypted"``, ``0x20``: then encryption-only
pushes, SC ``0x20``, which carry no authentication tag, are accepted from it too).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import structlog

from smmc_gateway import _core
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.dlms.errors import SecurityFailure
from smmc_gateway.dlms.ic_store import InvocationCounterStore, memory_store
from smmc_gateway.dlms.observe import SessionObserver, quirk_taken
from smmc_gateway.dlms.tags import TAGS
from smmc_gateway.quirk_hints import UNTAGGED_DESCRIPTORS, untagged_descriptors_hint

log = structlog.get_logger("smmc_gateway.dlms.push")

DATA_NOTIFICATION = TAGS["data-notification"]
EVENT_NOTIFICATION = TAGS["event-notification-request"]
INFORMATION_REPORT = TAGS["information-report-request"]
GENERAL_GLO_CIPHERING = TAGS["general-glo-ciphering"]
PUSHED = (DATA_NOTIFICATION, EVENT_NOTIFICATION, INFORMATION_REPORT)
"""The APDUs a meter pushes: data-notification, and event-notification-request (one
attribute's value, e.g. an alarm register, as IEC 62056-5-3 lets a server report)."""
GENERAL_BLOCK_TRANSFER = TAGS["general-block-transfer"]
WRAPPER_HEADER = 8
MAX_APDU = 0xFFFF
READ_CHUNK = 4096
"""Largest single read from a push connection."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CLOSE_REASONS = (
    "unknown_peer",
    "max_connections",
    "max_per_peer",
    "first_frame_timeout",
    "idle_timeout",
    "malformed",
)
"""Why the listener closed a connection (``on_close`` argument, metric label)."""


@dataclass(frozen=True)
class PushKeySet:
    """One key set a pushing meter may cipher with, and the invocation-counter scope
    of its pushes (counters of different keys are independent: a meter may restart
    its counter with new keys)."""

    ek: bytes = field(repr=False)
    ak: bytes = field(repr=False)
    ic_scope: str


def key_fingerprint(ek: bytes, ak: bytes) -> str:
    """A short, one-way name for a key set (for invocation-counter scopes)."""
    return hashlib.sha256(b"smmc-push-ic\x00" + ek + ak).hexdigest()[:16]


@dataclass(frozen=True)
class MeterKeys:
    """What the listener knows of one pushing meter. With keys (``ek``/``ak`` or
    ``key_sets``), only ciphered pushes with at least ``required_protection`` are
    accepted."""

    meter_id: str
    system_title: bytes | None = None
    ek: bytes | None = field(default=None, repr=False)
    ak: bytes | None = field(default=None, repr=False)
    required_protection: int = 0x30
    key_sets: tuple[PushKeySet, ...] = ()
    """Every key set to try, most likely first; empty: ``ek``/``ak`` alone, with the
    invocation-counter scope ``push:{meter_id}``."""
    quirks: Sequence[str] | None = None
    """The quirks of the meter's model tolerated in its pushes (``_core.known_quirks``);
    None: the core's defaults, empty: strict. Never inside the ciphering."""

    def candidates(self) -> tuple[PushKeySet, ...]:
        if self.key_sets:
            return self.key_sets
        if self.ek is not None and self.ak is not None:
            return (PushKeySet(self.ek, self.ak, f"push:{self.meter_id}"),)
        return ()

    @property
    def keyed(self) -> bool:
        """The meter has keys: plain pushes from it are refused."""
        return bool(self.key_sets) or self.ek is not None


KeyLookup = Callable[[bytes | None, str], MeterKeys | None]
"""``(system_title or None, peer IP address) -> MeterKeys | None``; may raise
:class:`PushRefused` (e.g. the keys cannot be known right now)."""


@dataclass(frozen=True)
class PushEvent:
    """One accepted data-notification."""

    meter_id: str
    received_at: datetime
    meter_time: datetime | None
    """The notification's date-time (None when absent or not specified)."""
    body: TypedValue
    """The notification body as a typed value."""
    long_invoke_id: int
    ciphered: bool
    system_title: bytes | None
    invocation_counter: int | None
    peer: str
    attribute: tuple[int, str, int] | None = None
    """An event-notification's attribute (class id, OBIS, attribute id) whose value is the
    ``body``; None for a data-notification."""
    short_names: tuple[int, ...] = ()
    """An InformationReport (short-name meters): the short name of each value;
    ``body`` is then a structure of the reported values, in order, and
    ``long_invoke_id`` 0 (the report has none)."""


@dataclass
class PushCounters:
    accepted: int = 0
    refused_unknown: int = 0
    refused_security: int = 0
    refused_malformed: int = 0
    callback_errors: int = 0
    connections: int = 0
    """Connections admitted."""
    refused_unknown_peer: int = 0
    refused_max_connections: int = 0
    refused_max_per_peer: int = 0
    closed_first_frame_timeout: int = 0
    closed_idle_timeout: int = 0
    peak_open: int = 0
    """Most connections open at once."""

    @property
    def refused_connections(self) -> int:
        """Connections closed before they were read (unknown peer, a cap)."""
        return self.refused_unknown_peer + self.refused_max_connections + self.refused_max_per_peer


class PushRefused(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class GbtPushAssembler:
    """General-block-transfer blocks of one push connection joined into the APDU
    they carry (sans-IO). ``feed(apdu)`` returns the APDU to check now (a non-GBT
    APDU as it is, the joined APDU after the last block), or None while blocks are
    still coming; it raises :class:`PushRefused` (``refused_malformed``) for a block
    out of order, a joined APDU longer than ``max_apdu``, or an APDU that is not a
    block while blocks are pending (the partial push is discarded)."""

    def __init__(self, max_apdu: int = MAX_APDU) -> None:
        self.max_apdu = max_apdu
        self._parts: list[bytes] = []
        self._size = 0
        self._next = 1

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def _reset(self) -> None:
        self._parts.clear()
        self._size = 0
        self._next = 1

    def feed(self, apdu: bytes) -> bytes | None:
        if not apdu or apdu[0] != GENERAL_BLOCK_TRANSFER:
            if self._parts:
                lost = self._next - 1
                self._reset()
                raise PushRefused(
                    "refused_malformed",
                    f"general-block-transfer push cut off after block {lost}: "
                    f"an APDU with tag 0x{apdu[:1].hex() or '--'} came instead",
                )
            return apdu
        try:
            block = _core.decode_apdu(apdu)
        except _core.DlmsError as exc:
            self._reset()
            raise PushRefused("refused_malformed", f"bad general-block-transfer: {exc}") from exc
        number = int(block["block_number"])
        if number != self._next:
            expected = self._next
            self._reset()
            raise PushRefused(
                "refused_malformed",
                f"general-block-transfer block {number} where block {expected} "
                "was expected (a block lost or repeated): partial push dropped",
            )
        data: bytes = block["block_data"]
        if self._size + len(data) > self.max_apdu:
            self._reset()
            raise PushRefused(
                "refused_malformed",
                f"general-block-transfer push longer than {self.max_apdu} bytes",
            )
        self._parts.append(data)
        self._size += len(data)
        self._next += 1
        if not block["last_block"]:
            return None
        whole = b"".join(self._parts)
        self._reset()
        return whole


PushCallback = Callable[[PushEvent], Awaitable[None] | None]
CloseHook = Callable[[str], None]


def normalize_ip(text: str) -> IpAddress | None:
    """An address as the listener compares it: IPv4-mapped IPv6 as IPv4, no zone
    (``fe80::1%eth0``); None when ``text`` is not an IP address."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class PeerFilter:
    """The peers pushes are taken from: single addresses and networks (CIDR)."""

    def __init__(self, addresses: Iterable[str] = (), networks: Iterable[str] = ()) -> None:
        self.addresses: set[IpAddress] = set()
        for a in addresses:
            ip = normalize_ip(a)
            if ip is None:
                raise ValueError(f"push peer {a!r} is not an IP address")
            self.addresses.add(ip)
        self.networks: list[IpNetwork] = [ipaddress.ip_network(n, strict=False) for n in networks]

    def allows(self, peer: str) -> bool:
        ip = normalize_ip(peer)
        if ip is None:
            return False
        return ip in self.addresses or any(ip in n for n in self.networks)

    def __repr__(self) -> str:
        return f"PeerFilter({len(self.addresses)} addresses, {[str(n) for n in self.networks]})"


class _Throttle:
    """At most one log line per key every ``every_s`` seconds, with the count skipped."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, key: str) -> int | None:
        """None: stay silent; else the number of lines skipped since the last one."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._skipped.pop(key, 0)


class _Connection(asyncio.BufferedProtocol):
    """One push connection: admitted (or closed) in ``connection_made``, bytes into
    the framer in bounded reads; a worker task of the listener takes the frames."""

    def __init__(self, listener: PushListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.key = "?"
        self.framer = _core.WrapperFramer(listener.max_apdu)
        self.buffered = 0
        """Bytes fed to the framer and not yet taken out as frames."""
        self.paused = False
        self.eof = False
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.gbt = GbtPushAssembler(listener.max_apdu)
        self._buf = bytearray(READ_CHUNK)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not registered as an asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if peername else "?"
        ip = normalize_ip(self.peer)
        self.key = str(ip) if ip is not None else self.peer
        self.listener._admit(self)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buf

    def buffer_updated(self, nbytes: int) -> None:
        self.framer.feed(bytes(memoryview(self._buf)[:nbytes]))
        self.buffered += nbytes
        if self.buffered >= self.listener.pause_at and self.transport is not None:
            # At least one complete frame is buffered (or the framer will refuse the
            # header): read no more until the worker has taken it.
            self.transport.pause_reading()
            self.paused = True
        self.wake.set()

    def took(self, frame_len: int) -> None:
        self.buffered -= frame_len
        if self.paused and self.buffered < self.listener.pause_at and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self.wake.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.wake.set()


def _dual_stack_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
    except OSError:
        sock.close()
        raise
    return sock


class PushListener:
    """``async with PushListener(lookup, on_event, port=4059) as listener: ...``

    ``allowed_peers`` None takes connections from anyone (tools, tests); the daemon
    always passes the configured meters' addresses and networks."""

    def __init__(
        self,
        lookup: KeyLookup,
        on_event: PushCallback,
        *,
        host: str = "127.0.0.1",
        port: int = 4059,
        ic_store: InvocationCounterStore | None = None,
        idle_timeout: float = 120.0,
        first_frame_timeout: float = 5.0,
        max_connections: int = 256,
        max_per_peer: int = 4,
        allowed_peers: PeerFilter | None = None,
        on_close: CloseHook | None = None,
        max_apdu: int = MAX_APDU,
        backlog: int = 128,
        observer: SessionObserver | None = None,
    ) -> None:
        if max_connections < 1 or max_per_peer < 1:
            raise ValueError(
                f"push listener caps must be >= 1 (max_connections "
                f"{max_connections}, max_per_peer {max_per_peer})"
            )
        if first_frame_timeout <= 0 or idle_timeout <= 0:
            raise ValueError(
                f"push listener timeouts must be > 0 (first_frame_timeout "
                f"{first_frame_timeout}, idle_timeout {idle_timeout})"
            )
        self.lookup = lookup
        self.on_event = on_event
        self.host = host
        self._port = port
        self.store = ic_store or memory_store()
        self.idle_timeout = idle_timeout
        self.first_frame_timeout = first_frame_timeout
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.allowed_peers = allowed_peers
        self.on_close = on_close
        self.max_apdu = min(max_apdu, MAX_APDU)
        self.pause_at = WRAPPER_HEADER + self.max_apdu
        self.backlog = backlog
        self.counters = PushCounters()
        self.observer = observer  # quirks taken: smmc_protocol_quirks_total
        self._server: asyncio.Server | None = None
        self._open: set[_Connection] = set()
        self._per_peer: dict[str, int] = {}
        self._throttle = _Throttle()

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def open_connections(self) -> int:
        return len(self._open)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet handled, over all open connections."""
        return sum(c.buffered for c in self._open)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if normalize_ip(self.host) == ipaddress.IPv6Address("::"):
            # "::" is dual stack (asyncio alone would make it IPv6 only): IPv4 meters
            # then appear as ::ffff:a.b.c.d, which normalize_ip maps back.
            self._server = await loop.create_server(
                lambda: _Connection(self), sock=_dual_stack_socket(self._port), backlog=self.backlog
            )
            return
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self._port, backlog=self.backlog
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            tasks = [c.task for c in self._open if c.task is not None]
            for c in list(self._open):
                if c.transport is not None:
                    c.transport.abort()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._open.clear()  # a task cancelled before it ran did not release its slot
            self._per_peer.clear()
            await self._server.wait_closed()
            self._server = None
        self.store.flush()

    async def __aenter__(self) -> PushListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ connections
    def _admit(self, conn: _Connection) -> None:
        assert conn.transport is not None
        reason = None
        if self.allowed_peers is not None and not self.allowed_peers.allows(conn.peer):
            reason = "unknown_peer"
            self.counters.refused_unknown_peer += 1
        elif len(self._open) >= self.max_connections:
            reason = "max_connections"
            self.counters.refused_max_connections += 1
        elif self._per_peer.get(conn.key, 0) >= self.max_per_peer:
            reason = "max_per_peer"
            self.counters.refused_max_per_peer += 1
        if reason is not None:
            conn.transport.abort()
            self._closed(reason, conn.peer)
            return
        self._open.add(conn)
        self._per_peer[conn.key] = self._per_peer.get(conn.key, 0) + 1
        self.counters.connections += 1
        self.counters.peak_open = max(self.counters.peak_open, len(self._open))
        conn.task = asyncio.get_running_loop().create_task(self._serve(conn))

    def _release(self, conn: _Connection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            left = self._per_peer.get(conn.key, 1) - 1
            if left > 0:
                self._per_peer[conn.key] = left
            else:
                self._per_peer.pop(conn.key, None)

    def _closed(self, reason: str, peer: str) -> None:
        if self.on_close is not None:
            self.on_close(reason)
        skipped = self._throttle(reason)
        if skipped is not None:
            limit = {
                "max_connections": self.max_connections,
                "max_per_peer": self.max_per_peer,
                "first_frame_timeout": self.first_frame_timeout,
                "idle_timeout": self.idle_timeout,
            }.get(reason)
            log.warning(
                "push_connection_closed",
                peer=peer,
                reason=reason,
                limit=limit,
                similar_not_logged=skipped,
            )

    async def _serve(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_frame_timeout
        first = True
        try:
            while True:
                try:
                    frame = conn.framer.next_frame()
                except _core.WrapperError as exc:
                    self.counters.refused_malformed += 1
                    log.warning("push_bad_wrapper", peer=conn.peer, error=str(exc))
                    self._closed("malformed", conn.peer)
                    return
                if frame is None:
                    if conn.eof:
                        return
                    conn.wake.clear()
                    try:
                        async with asyncio.timeout_at(deadline):
                            await conn.wake.wait()
                    except TimeoutError:
                        if first:
                            self.counters.closed_first_frame_timeout += 1
                        else:
                            self.counters.closed_idle_timeout += 1
                        self._closed("first_frame_timeout" if first else "idle_timeout", conn.peer)
                        return
                    continue
                conn.took(WRAPPER_HEADER + len(frame[2]))
                first = False
                await self._frame(frame[2], conn.peer, conn.gbt)
                deadline = loop.time() + self.idle_timeout
        finally:
            if conn.transport is not None:
                conn.transport.abort()  # we never write: nothing to flush
            self._release(conn)

    async def _frame(self, apdu: bytes, peer: str, gbt: GbtPushAssembler) -> None:
        try:
            whole = gbt.feed(apdu)
            if whole is None:
                return  # more blocks to come
            event = self.accept(whole, peer)
        except PushRefused as exc:
            setattr(self.counters, exc.kind, getattr(self.counters, exc.kind) + 1)
            log.warning("push_refused", peer=peer, kind=exc.kind, reason=str(exc))
            return
        self.counters.accepted += 1
        try:
            result = self.on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a consumer bug must not stop the listener: counted and logged
            self.counters.callback_errors += 1
            log.exception("push_callback_failed", meter_id=event.meter_id)

    # ------------------------------------------------------------ one APDU (sans-IO)
    def accept(self, apdu: bytes, peer: str) -> PushEvent:
        """Check and decode one pushed APDU; raises PushRefused (sans-IO part)."""
        if not apdu:
            raise PushRefused("refused_malformed", "empty APDU")
        ciphered = apdu[0] == GENERAL_GLO_CIPHERING
        if apdu[0] not in (*PUSHED, GENERAL_GLO_CIPHERING):
            raise PushRefused(
                "refused_malformed",
                f"not a data-notification or an "
                f"event-notification (nor an information-report): "
                f"tag 0x{apdu[0]:02x}",
            )
        title: bytes | None = None
        counter: int | None = None
        if ciphered:
            try:
                title = _core.ciphering_sender(apdu)
            except _core.DlmsError as exc:
                raise PushRefused("refused_malformed", f"bad general-glo-ciphering: {exc}") from exc
        keys = self.lookup(title, peer)
        who = f"system title {title.hex()}" if title else f"peer {peer}"
        if keys is None:
            raise PushRefused("refused_unknown", f"push from unknown {who}")
        plain = apdu
        if ciphered:
            plain, counter, title = self._decipher(apdu, keys, who)
        elif keys.keyed:
            raise PushRefused(
                "refused_security", f"unciphered push from {who} (meter {keys.meter_id} has keys)"
            )
        if not plain or plain[0] not in PUSHED:
            raise PushRefused(
                "refused_malformed",
                f"push from {who}: the ciphered APDU holds "
                f"tag 0x{plain[:1].hex() or '--'}, not a data-notification or an "
                "event-notification (nor an information-report)",
            )
        attribute: tuple[int, str, int] | None = None
        names: tuple[int, ...] = ()
        taken: list[tuple[str, str]] = []
        try:
            if plain[0] == EVENT_NOTIFICATION:
                fields, taken = _core.decode_apdu_tolerant(plain, keys.quirks)
                ref = fields["attribute"]
                attribute = (int(ref["class_id"]), str(ref["obis"]), int(ref["attribute_id"]))
                body = _core.decode(fields["value_raw"])
                stamp: bytes | None = fields["time"]
                invoke_id = 0
            elif plain[0] == INFORMATION_REPORT:
                stamp, body, names = information_report(plain)
                invoke_id = 0
            else:
                body, stamp, invoke_id = self._data_notification(plain, keys, taken)
        except (_core.DlmsError, ValueError) as exc:
            raise PushRefused("refused_malformed", f"push from {who}: {exc}") from exc
        for quirk, detail in taken:
            quirk_taken(self.observer, keys.meter_id, quirk, f"push: {detail}")
        meter_time = None
        if stamp:
            try:
                meter_time = _core.decode_datetime(stamp)
            except _core.DlmsError:
                meter_time = None
        return PushEvent(
            meter_id=keys.meter_id,
            received_at=datetime.now(UTC),
            meter_time=meter_time,
            body=body,
            long_invoke_id=invoke_id,
            ciphered=ciphered,
            system_title=title,
            invocation_counter=counter,
            peer=peer,
            attribute=attribute,
            short_names=names,
        )

    @staticmethod
    def _data_notification(
        plain: bytes, keys: MeterKeys, taken: list[tuple[str, str]]
    ) -> tuple[TypedValue, bytes | None, int]:
        """(body, date-time, long-invoke-id) of a data-notification: A-XDR (when not
        standard, again with the model's quirks, or refused naming the quirk it would
        need); for a model whose pushes carry untagged attribute descriptors (Sagemcom
        XT211) in that layout first; when neither reads, both errors are named."""
        layout_error: _core.DlmsError | None = None
        if keys.quirks is not None and UNTAGGED_DESCRIPTORS in keys.quirks:
            try:
                invoke_id, stamp, body, found = _core.decode_data_notification_untagged(plain)
            except _core.DlmsError as exc:
                layout_error = exc  # perhaps a standard push from the same meter
            else:
                if found:
                    detail = f"{found} body item(s) read as {{attribute descriptor, value}}"
                    taken.append((UNTAGGED_DESCRIPTORS, detail))
                return body, stamp, invoke_id
        try:
            fields, more = _core.decode_apdu_tolerant(plain, keys.quirks)
        except _core.DlmsError as exc:
            if layout_error is not None:
                raise ValueError(
                    f"{exc}; nor with {UNTAGGED_DESCRIPTORS}: {layout_error}"
                ) from None
            hint = untagged_descriptors_hint(plain)
            if hint is None:
                raise
            raise ValueError(f"{exc}; {hint}") from None
        taken.extend(more)
        return (
            _core.decode(fields["body_raw"]),
            fields["date_time"],
            int(fields["long_invoke_id_and_priority"]),
        )

    def _decipher(self, apdu: bytes, keys: MeterKeys, who: str) -> tuple[bytes, int, bytes]:
        """Authenticate and decipher with the first key set that works, then check
        the invocation counter in that key set's scope (a forged APDU never moves it)."""
        candidates = keys.candidates()
        if not candidates:
            raise PushRefused("refused_security", f"ciphered push from {who}: no keys known")
        failures: list[str] = []
        for n, ks in enumerate(candidates):
            try:
                plain, _sc, counter, title = _core.decipher_apdu(
                    apdu,
                    system_title=None,
                    ek=ks.ek,
                    ak=ks.ak,
                    required_protection=keys.required_protection,
                )
            except _core.SecurityError as exc:
                failures.append(f"key set {n + 1}: {exc}")
                continue
            except _core.DlmsError as exc:
                raise PushRefused("refused_malformed", f"push from {who}: {exc}") from exc
            try:
                self.store.check_incoming(ks.ic_scope, title, counter)
            except SecurityFailure as exc:
                raise PushRefused("refused_security", f"push from {who}: {exc}") from exc
            self.store.flush()
            return plain, counter, title
        tried = f" ({len(candidates)} key sets tried)" if len(candidates) > 1 else ""
        raise PushRefused("refused_security", f"push from {who}{tried}: {'; '.join(failures)}")


def information_report(plain: bytes) -> tuple[bytes, TypedValue, tuple[int, ...]]:
    """An InformationReport (0x18): its current-time (b"" when absent), its
    values as one structure, and the short name of each value (only
    variable-name entries are reports; anything else is malformed: ValueError)."""
    d = _core.decode_apdu(plain)
    names: list[int] = []
    for v in d["variables"]:
        if v.get("access") != "variable-name":
            raise ValueError(f"information-report: {v.get('access')} is not a variable-name")
        names.append(int(v["name"]))
    values = [_core.decode(raw) for raw in d["data_raw"]]
    if len(values) != len(names):
        raise ValueError(f"information-report: {len(values)} values, {len(names)} variable names")
    stamp = d.get("current_time") or b""
    return bytes(stamp), {"type": "structure", "value": values}, tuple(names)
