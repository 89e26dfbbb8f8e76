"""The meter's end of a link, sans-IO: framing between bytes and the
:class:`~smmc_gateway.simulator.server.DlmsServer`.

* :class:`WrapperEndpoint` — IEC 62056-47 wrapper frames (TCP); the source
  wPort is the client SAP, the destination wPort must be the meter's logical
  device (1).
* :class:`HdlcEndpoint` — an HDLC server link (IEC 62056-46) of one meter,
  addressed by upper address 1 and its physical (lower) address; an SNRM
  from a client SAP the meter has no association for is answered DM.

Both take received bytes and return the frames to send (one bytes object per
frame, so faults can hit single frames); time is the caller's monotonic
seconds. Whatever the transport is (TCP, pty, RS-485 bus), it is the same.
"""

from __future__ import annotations

from collections.abc import Callable

from smmc_gateway import _core
from smmc_gateway.simulator.faults import split_hdlc
from smmc_gateway.simulator.fleet import SERVER_WPORT, MeterRuntime
from smmc_gateway.simulator.server import DlmsServer

Log = Callable[[str], None]
HDLC_MAX_INFO = 512
HDLC_WINDOW = 7


class WrapperEndpoint:
    """Wrapper framing on one TCP connection; after ``inactivity_s`` without a
    frame the meter closes the connection (``finished``), as meters do."""

    def __init__(self, runtime: MeterRuntime, log: Log, *, inactivity_s: float = 120.0) -> None:
        self.runtime = runtime
        self.log = log
        self.inactivity_s = inactivity_s
        self.last_frame: float | None = None
        self.finished = False
        self.framer = _core.WrapperFramer()
        self.server = DlmsServer(
            runtime.meter,
            runtime.counters,
            runtime.clock.now,
            log=log,
            offered=runtime.offered,
            stale=runtime.faults.stale,
        )
        self.frames_in = 0

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Frames to send; raises :class:`~smmc_gateway._core.WrapperError` on a
        stream that is not wrapper frames (the transport then closes)."""
        self.framer.feed(data)
        out: list[bytes] = []
        while (frame := self.framer.next_frame()) is not None:
            source, dest, apdu = frame
            self.last_frame = now
            if not self.runtime.faults.received():
                continue
            self.frames_in += 1
            if dest != SERVER_WPORT:
                self.log(f"wrapper frame for wPort {dest} dropped (logical device is 1)")
                continue
            for reply in self.server.handle(source, apdu):
                out.append(_core.wrapper_encode(dest, source, reply))
        return out

    def timeout(self, now: float) -> list[bytes]:
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            self.log(f"no frame for {self.inactivity_s} s: closing")
            self.finished = True
        return []

    def deadline(self) -> float | None:
        return None if self.last_frame is None else self.last_frame + self.inactivity_s

    def close(self) -> None:
        self.server.close()


class HdlcEndpoint:
    """One meter's HDLC server link on a connection or a bus."""

    def __init__(self, runtime: MeterRuntime, log: Log, *, inactivity_s: float = 120.0) -> None:
        self.runtime = runtime
        self.log = log
        self.inactivity_s = inactivity_s
        self.address_size: int | None = None
        self.link = self._new_link(None)
        self.watch = _core.HdlcFramer()
        self.server = DlmsServer(
            runtime.meter,
            runtime.counters,
            runtime.clock.now,
            log=log,
            offered=runtime.offered,
            stale=runtime.faults.stale,
        )
        self.client: int | None = None
        self.frames_in = 0
        self.disconnected = False
        self.finished = False  # the link itself never closes the connection

    def _new_link(self, address_size: int | None) -> _core.HdlcLink:
        """A fresh server link answering with ``address_size`` server address
        bytes (the size the client used: 1, 2 or 4)."""
        self.address_size = address_size
        return _core.HdlcLink(
            "server",
            client_address=16,
            server_upper=1,
            server_lower=self.runtime.physical_address if address_size != 1 else None,
            address_size=address_size,
            max_info_tx=HDLC_MAX_INFO,
            max_info_rx=HDLC_MAX_INFO,
            window_tx=HDLC_WINDOW,
            window_rx=HDLC_WINDOW,
            inactivity_timeout=self.inactivity_s,
        )

    def _ours(self, frame: _core.HdlcFrame) -> bool:
        lower = frame.dest_lower
        return frame.dest_upper in (1, 0x7F) and (
            lower is None or lower in (self.runtime.physical_address, 0x3FFF)
        )

    def receive(self, data: bytes, now: float) -> list[bytes]:
        self.watch.feed(data)
        self.watch.errors()
        refused: list[bytes] = []
        feed = True
        while (frame := self.watch.next_frame()) is not None:
            if not self._ours(frame):
                continue
            if not self.runtime.faults.received():
                feed = False
                continue
            self.frames_in += 1
            if frame.kind == "SNRM":
                try:
                    self.runtime.meter.association(frame.src_upper)
                    self.client = frame.src_upper
                    size = snrm_address_size(data)
                    if size is not None and size != self.address_size:
                        self.link = self._new_link(size)  # an SNRM resets the link anyway
                except ValueError:
                    self.log(f"SNRM from unknown client {frame.src_upper}: DM")
                    feed = False
                    refused.append(
                        _core.hdlc_encode(
                            "DM",
                            dest_upper=frame.src_upper,
                            src_upper=1,
                            src_lower=self.runtime.physical_address,
                        )
                    )
        if feed:
            self.link.receive_data(data, now)
        return refused + self._drain(now)

    def _drain(self, now: float) -> list[bytes]:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, _core.LinkApdu) and self.client is not None:
                for reply in self.server.handle(self.client, event.apdu):
                    self.link.send_apdu(reply, now)
            elif isinstance(event, _core.LinkDisconnected):
                self.server.close()
                self.disconnected = True
            elif isinstance(event, _core.LinkConnected):
                self.server.close()  # a new SNRM resets the link and its associations
                self.disconnected = False
            elif isinstance(event, _core.LinkDown):
                self.log(f"HDLC link lost: {event.reason}")
                self.server.close()
                self.disconnected = True
        return split_hdlc(self.link.data_to_send())

    def timeout(self, now: float) -> list[bytes]:
        self.link.handle_timeout(now)
        return self._drain(now)

    def deadline(self) -> float | None:
        return self.link.next_deadline()

    def close(self) -> None:
        self.server.close()


def first_frame(buffer: bytes) -> _core.HdlcFrame | None:
    """The first whole HDLC frame in ``buffer`` (to pick the meter by address)."""
    framer = _core.HdlcFramer()
    framer.feed(buffer)
    return framer.next_frame()


def snrm_address_size(data: bytes) -> int | None:
    """The destination address size (1, 2 or 4 bytes) of the first SNRM frame
    in ``data``, read from its raw bytes (HDLC addresses end with a 1 bit)."""
    at = 0
    while (at := data.find(0x7E, at)) >= 0 and at + 3 < len(data):
        if data[at + 1] & 0xF0 != 0xA0:
            at += 1
            continue
        i = at + 3
        size = 1
        while i < len(data) and not data[i] & 1 and size < 4:
            i += 1
            size += 1
        i += 2  # last destination byte, then the one-byte client address
        if i < len(data) and data[i] & 0xEF == 0x83 and size in (1, 2, 4):
            return size
        at += 1
    return None
