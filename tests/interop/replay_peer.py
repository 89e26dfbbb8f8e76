"""A scripted meter that replays recorded exchanges of real meters.

:class:`ReplayPeer` listens on a loopback port; for every frame our client
sends it takes the next :class:`Step`, checks the frame against the recorded
request (``check`` returns a mismatch description or None) and answers with
the recorded response. A mismatch, an unexpected frame or running out of
steps is recorded in ``mismatches`` and ends the connection, so the client
fails with a clear error and the test shows why. An HDLC DISC ends the
connection (the recorded traces hold no answer to it).

Frames are delimited here independently of our core (HDLC by its format
field, the wrapper by its 8-byte header), so a recorded byte string is
compared with what the client really put on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

Check = Callable[[bytes], str | None]
Respond = Callable[[bytes], bytes]


@dataclass
class Step:
    what: str
    check: Check
    respond: Respond


@dataclass
class HdlcParts:
    """An HDLC frame cut into its fields (frame format type 3)."""

    dest: bytes
    src: bytes
    control: int
    info: bytes


def hdlc_parts(frame: bytes) -> HdlcParts:
    """Split one HDLC frame (flags included) into addresses, control, info."""
    if len(frame) < 9 or frame[0] != 0x7E or frame[-1] != 0x7E:
        raise ValueError(f"not an HDLC frame: {frame.hex()}")
    pos = 3
    addresses = []
    for _ in range(2):
        start = pos
        while not frame[pos] & 1:
            pos += 1
        pos += 1
        addresses.append(frame[start:pos])
    control = frame[pos]
    pos += 1
    info = b""
    if pos < len(frame) - 3:  # an information field follows the HCS
        info = frame[pos + 2 : -3]
    return HdlcParts(addresses[0], addresses[1], control, info)


def split_hdlc(buffer: bytearray) -> list[bytes]:
    """Complete HDLC frames at the head of ``buffer`` (removed from it)."""
    frames: list[bytes] = []
    while True:
        while buffer[:1] == b"\x7e" and buffer[1:2] == b"\x7e":
            del buffer[0]  # shared or repeated flags
        if len(buffer) < 3:
            return frames
        if buffer[0] != 0x7E:
            raise ValueError(f"garbage before an HDLC frame: {bytes(buffer[:16]).hex()}")
        total = (((buffer[1] & 0x07) << 8) | buffer[2]) + 2
        if len(buffer) < total:
            return frames
        frames.append(bytes(buffer[:total]))
        del buffer[:total]


def split_wrapper(buffer: bytearray) -> list[bytes]:
    """Complete wrapper frames (IEC 62056-47) at the head of ``buffer``."""
    frames: list[bytes] = []
    while len(buffer) >= 8:
        total = 8 + int.from_bytes(buffer[6:8], "big")
        if len(buffer) < total:
            break
        frames.append(bytes(buffer[:total]))
        del buffer[:total]
    return frames


def wrapper_frame(source: int, dest: int, apdu: bytes) -> bytes:
    return (
        (1).to_bytes(2, "big")
        + source.to_bytes(2, "big")
        + dest.to_bytes(2, "big")
        + len(apdu).to_bytes(2, "big")
        + apdu
    )


@dataclass
class ReplayPeer:
    steps: list[Step]
    hdlc: bool
    port: int = 0
    received: list[bytes] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    done: int = 0

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ReplayPeer]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        try:
            yield self
        except Exception as exc:
            if self.mismatches:  # the client failed because the peer stopped: say why
                raise AssertionError(f"replay mismatch: {self.mismatches}") from exc
            raise
        finally:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(4096):
                buffer += data
                frames = split_hdlc(buffer) if self.hdlc else split_wrapper(buffer)
                for frame in frames:
                    self.received.append(frame)
                    answer = self._answer(frame)
                    if answer is None:
                        return
                    writer.write(answer)
                    await writer.drain()
        except (ValueError, ConnectionError) as exc:
            self.mismatches.append(f"stream: {exc}")
        finally:
            writer.close()

    def _answer(self, frame: bytes) -> bytes | None:
        if self.hdlc and hdlc_parts(frame).control & 0xEF == 0x43:  # DISC (P/F masked)
            return None
        if self.done >= len(self.steps):
            self.mismatches.append(f"unexpected frame after the recorded exchange: {frame.hex()}")
            return None
        step = self.steps[self.done]
        problem = step.check(frame)
        if problem is not None:
            self.mismatches.append(f"{step.what}: {problem}")
            return None
        self.done += 1
        return step.respond(frame)
