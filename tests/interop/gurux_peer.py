"""Gurux DLMS (a third-party implementation) as a test client over asyncio TCP.

Gurux's ``GXDLMSClient`` is sans-IO: it produces request frames and parses the
bytes it is given. :class:`GuruxPeer` moves those bytes over an asyncio TCP
connection to one of our simulated meters (HDLC or the wrapper) and follows
Gurux's own block/segment handling (``isMoreData``/``receiverReady``). Every
read waits with a timeout, so a peer that stops answering fails the test
instead of hanging it.

The package is GPL: it is only *run* here, as a separate test peer; nothing of
it is copied into or imported by the product.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects import GXDLMSObject
from gurux_dlms.secure import GXDLMSSecureClient


class GuruxExchangeError(AssertionError):
    """A DLMS exchange did not succeed (names the request and the error)."""


@dataclass
class GuruxPeer:
    """One Gurux client on one TCP connection.

    ``trace`` records every (direction, bytes) pair on the wire, so a failing
    test can show the exchange; ``followups`` counts the frames sent to fetch
    the rest of a long reply (GET next block, HDLC RR for the next segment).
    """

    client: GXDLMSClient
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    timeout: float = 5.0
    trace: list[tuple[str, bytes]] = field(default_factory=list)
    followups: int = 0
    """Frames Gurux sent to fetch more of a reply (next block or segment)."""

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        hdlc: bool,
        client_address: int = 16,
        server_address: int = 1,
        authentication: int = Authentication.NONE,
        password: bytes | None = None,
        ciphering: dict[str, bytes] | None = None,
        max_pdu: int = 0xFFFF,
    ) -> GuruxPeer:
        """Open TCP to 127.0.0.1:``port`` and configure the Gurux client.

        ``ciphering``: ``system_title``, ``ek``, ``ak`` (suite 0, security
        0x30: authenticated and encrypted).
        """
        cls_ = GXDLMSClient if ciphering is None else GXDLMSSecureClient
        client = cls_(
            True,
            client_address,
            server_address,
            authentication,
            password,
            InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER,
        )
        client.setMaxReceivePDUSize(max_pdu)
        if ciphering is not None:
            client.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
            client.settings.cipher.systemTitle = bytearray(ciphering["system_title"])
            client.settings.cipher.blockCipherKey = bytearray(ciphering["ek"])
            client.settings.cipher.authenticationKey = bytearray(ciphering["ak"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(client, reader, writer)

    # ------------------------------------------------------------------ wire
    async def _one(self, data: bytes | bytearray, reply: GXReplyData) -> None:
        """Send one frame; read until Gurux has a complete reply frame."""
        notify = GXReplyData()
        self.trace.append((">>", bytes(data)))
        self.writer.write(bytes(data))
        await self.writer.drain()
        buffer = GXByteBuffer()
        while True:
            try:
                chunk = await asyncio.wait_for(self.reader.read(4096), self.timeout)
            except TimeoutError:
                raise GuruxExchangeError(
                    f"no complete answer to {bytes(data).hex()} within {self.timeout}s"
                ) from None
            if not chunk:
                raise GuruxExchangeError(f"connection closed after {bytes(data).hex()}")
            self.trace.append(("<<", chunk))
            buffer.set(chunk)
            if self.client.getData(buffer, reply, notify):
                break
        if reply.error:
            raise GuruxExchangeError(f"DLMS error {reply.error} answering {bytes(data).hex()}")

    async def exchange(self, data: Any, reply: GXReplyData | None = None) -> GXReplyData:
        """Send a request (one frame or Gurux's list of frames), following
        blocks/segments until the reply is complete."""
        reply = reply if reply is not None else GXReplyData()
        frames = data if isinstance(data, list) else [data]
        for frame in frames:
            reply.clear()
            await self._one(frame, reply)
            while reply.isMoreData():
                self.followups += 1
                await self._one(self.client.receiverReady(reply), reply)
        return reply

    # ------------------------------------------------------------------ services
    async def open(self) -> None:
        """SNRM/UA (HDLC only), AARQ/AARE, and the HLS pass-3/4 step when needed."""
        c = self.client
        if c.getInterfaceType() == InterfaceType.HDLC:
            reply = await self.exchange(c.snrmRequest())
            c.parseUAResponse(reply.data)
        reply = await self.exchange(c.aarqRequest())
        c.parseAareResponse(reply.data)
        if c.getAuthentication() > Authentication.LOW:
            for request in c.getApplicationAssociationRequest():
                reply = await self.exchange(request)
                c.parseApplicationAssociationResponse(reply.data)

    async def read(self, obj: GXDLMSObject, attribute: int) -> Any:
        """GET one attribute; Gurux stores it in ``obj`` and returns it."""
        reply = await self.exchange(self.client.read(obj, attribute))
        return self.client.updateValue(obj, attribute, reply.value)

    async def write(self, obj: GXDLMSObject, attribute: int) -> None:
        await self.exchange(self.client.write(obj, attribute))

    async def object_list(self) -> Any:
        reply = await self.exchange(self.client.getObjectsRequest())
        return self.client.parseObjects(reply.data, True)

    async def rows_by_range(self, profile: GXDLMSObject, start: Any, end: Any) -> Any:
        reply = await self.exchange(self.client.readRowsByRange(profile, start, end))
        return self.client.updateValue(profile, 2, reply.value)

    async def rows_by_entry(self, profile: GXDLMSObject, index: int, count: int) -> Any:
        reply = await self.exchange(self.client.readRowsByEntry(profile, index, count))
        return self.client.updateValue(profile, 2, reply.value)

    async def release(self) -> None:
        """RLRQ/RLRE, then DISC/UA on HDLC; closes the connection."""
        c = self.client
        try:
            await self.exchange(c.releaseRequest())
            if c.getInterfaceType() == InterfaceType.HDLC:
                await self.exchange(c.disconnectRequest())
        finally:
            self.writer.close()

    async def close(self) -> None:
        self.writer.close()
