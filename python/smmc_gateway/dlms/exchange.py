"""One confirmed request/response exchange of a client session.

Sends a request dict (ciphered when the association is), waits for the answer
within both the response timeout and the operation's deadline, reassembles
general-block-transfer, deciphers and checks the answer, and turns
exception-response / confirmed-service-error into exceptions. The services
(GET/SET/ACTION and their block forms) are built on top, in
:mod:`smmc_gateway.dlms.client`.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.ciphering import CipherContext
from smmc_gateway.dlms.errors import LinkLost, MeterTimeout, ProtocolError, SecurityFailure
from smmc_gateway.dlms.stream import Transport

log = structlog.get_logger("smmc_gateway.dlms")

EXCEPTION_RESPONSE = 0xD8
GENERAL_BLOCK_TRANSFER = 0xE0
_UNSOLICITED = {0x0F, 0xC2, 0xCA, 0xD2}  # data-notification, event-notification (plain/glo/ded)


class Exchange:
    """Request/response plumbing shared by every service of a session."""

    def __init__(self, transport: Transport, response_timeout: float, meter_id: str) -> None:
        self.transport = transport
        self.response_timeout = response_timeout
        self.meter_id = meter_id
        self.cipher: CipherContext | None = None
        self.priority_high = True
        self._invoke = 0
        self._abandoned: set[int] = set()
        """Invoke ids of requests we stopped waiting for: a late answer to one
        of them is dropped instead of being taken for the current answer."""

    def next_invoke(self) -> int:
        """The next invoke-id-and-priority byte: confirmed service, priority
        high unless configured otherwise, invoke ids 1..15 cycling."""
        self._invoke = self._invoke % 15 + 1
        self._abandoned.discard(self._invoke)
        return (0xC0 if self.priority_high else 0x40) | self._invoke

    async def send(self, apdu: dict[str, Any], counter: int | None = None) -> None:
        plain = _core.encode_apdu(apdu)
        out = self.cipher.cipher(plain, counter) if self.cipher else plain
        await self.transport.send_apdu(out)

    async def request(
        self,
        apdu: dict[str, Any],
        deadline: float,
        what: str,
        budget: float,
        *,
        counter: int | None = None,
        gbt_block: int | None = None,
    ) -> dict[str, Any]:
        """Send ``apdu`` and return the decoded answer whose invoke id matches.
        With ``gbt_block``, an APDU (ciphered if need be) longer than that
        goes out in general-block-transfer blocks of that many bytes."""
        plain = _core.encode_apdu(apdu)
        out = self.cipher.cipher(plain, counter) if self.cipher else plain
        if gbt_block is not None and len(out) > gbt_block:
            await self._send_gbt(out, gbt_block, deadline, what, budget)
        else:
            await self.transport.send_apdu(out)
        sent = apdu.get("invoke_id_and_priority")
        while True:
            try:
                answer = await self.receive(deadline, what, budget)
            except MeterTimeout:
                if sent is not None:
                    self._abandoned.add(sent & 0x0F)
                raise
            got = answer.get("invoke_id_and_priority")
            if sent is None or got is None or (sent & 0x0F) == (got & 0x0F):
                return answer
            if (got & 0x0F) in self._abandoned:
                self._abandoned.discard(got & 0x0F)
                log.info("late_answer_dropped", meter_id=self.meter_id, invoke_id=got & 0x0F)
                continue
            raise ProtocolError(
                f"{what}: invoke id {got & 0x0F} in the {answer['apdu']}, expected {sent & 0x0F}"
            )

    async def receive_raw(self, deadline: float, what: str, budget: float) -> bytes:
        """The next APDU. The response timeout is a silence timeout: while the
        transport makes progress (a long segmented APDU still arriving, HDLC
        retransmissions recovering lost frames) we wait on, up to the
        operation's deadline."""
        awaited = f"{what} from {self.transport.description}"  # name the meter's link
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MeterTimeout(awaited, budget)
            wait = min(self.response_timeout, remaining)
            before = self.transport.progress
            try:
                return await self.transport.receive_apdu(wait)
            except MeterTimeout:
                if self.transport.progress == before:
                    raise MeterTimeout(awaited, wait) from None
                log.debug("response_in_progress", meter_id=self.meter_id, awaiting=what)
            except LinkLost as exc:
                raise LinkLost(f"{exc} (awaiting {what})") from exc

    async def receive(self, deadline: float, what: str, budget: float) -> dict[str, Any]:
        """The next answer (not an unsolicited notification), deciphered and decoded."""
        while True:
            data = await self.receive_raw(deadline, what, budget)
            if data and data[0] == GENERAL_BLOCK_TRANSFER:
                data = await self._reassemble_gbt(data, deadline, what, budget)
            if data and data[0] in _UNSOLICITED:
                log.info("unsolicited_apdu_ignored", meter_id=self.meter_id)
                continue
            if self.cipher is not None:
                if CipherContext.is_ciphered(data):
                    try:
                        data = self.cipher.decipher(data)
                    except SecurityFailure as exc:
                        raise SecurityFailure(
                            f"{what} from {self.transport.description}: {exc}"
                        ) from exc
                elif data[:1] != bytes([EXCEPTION_RESPONSE]):
                    raise SecurityFailure(
                        f"{what}: unciphered {data[:1].hex()} APDU in a ciphered association"
                    )
            try:
                answer = _core.decode_apdu(data)
            except _core.ApduError as exc:
                raise ProtocolError(f"{what}: undecodable APDU {data[:16].hex()}…: {exc}") from exc
            expected = answer.get("invocation_counter")
            if answer["apdu"] == "exception-response" and expected and self.cipher is not None:
                # The meter says which counter it expects: never go below it
                # again (moving forward never reuses a counter).
                self.cipher.store.skip_to(self.cipher.scope, int(expected))
            check_error_apdu(answer, what)
            return answer

    async def _send_gbt(
        self, apdu: bytes, size: int, deadline: float, what: str, budget: float
    ) -> None:
        """General-block-transfer, send side: window 1, no streaming; each
        block but the last waits for the meter's acknowledgement."""
        chunks = [apdu[i : i + size] for i in range(0, len(apdu), size)]
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            block = {
                "apdu": "general-block-transfer",
                "last_block": last,
                "streaming": False,
                "window": 1,
                "block_number": number,
                "block_number_ack": 0,
                "block_data": chunk,
            }
            await self.transport.send_apdu(_core.encode_apdu(block))
            if last:
                return
            data = await self.receive_raw(deadline, f"{what} GBT block {number} ack", budget)
            try:
                ack = _core.decode_apdu(data)
            except _core.ApduError as exc:
                raise ProtocolError(f"{what}: undecodable GBT acknowledgement: {exc}") from exc
            check_error_apdu(ack, what)
            if ack["apdu"] != "general-block-transfer" or ack["block_number_ack"] != number:
                got = ack.get("block_number_ack", ack["apdu"])
                raise ProtocolError(f"{what}: GBT block {number} acknowledged as {got}")

    async def _reassemble_gbt(
        self, first: bytes, deadline: float, what: str, budget: float
    ) -> bytes:
        """General-block-transfer, receive side: collect blocks until the last,
        acknowledging each window (the meter streams up to its window size)."""
        parts: list[bytes] = []
        expected = None
        data = first
        our_block = 0
        while True:
            try:
                gbt = _core.decode_apdu(data)
            except _core.ApduError as exc:
                raise ProtocolError(f"{what}: bad general-block-transfer: {exc}") from exc
            if gbt["apdu"] != "general-block-transfer":
                raise ProtocolError(f"{what}: {gbt['apdu']} in the middle of a block transfer")
            number = gbt["block_number"]
            if expected is not None and number != expected:
                raise ProtocolError(f"{what}: GBT block {number}, expected {expected}")
            parts.append(gbt["block_data"])
            expected = number + 1
            if gbt["last_block"]:
                return b"".join(parts)
            if not gbt["streaming"]:
                our_block += 1
                await self.transport.send_apdu(
                    _core.encode_apdu(
                        {
                            "apdu": "general-block-transfer",
                            "last_block": False,  # a pure acknowledgement, no data of ours
                            "streaming": False,
                            "window": 1,
                            "block_number": our_block,
                            "block_number_ack": number,
                            "block_data": b"",
                        }
                    )
                )
            data = await self.receive_raw(deadline, what, budget)


def check_error_apdu(answer: dict[str, Any], what: str) -> None:
    """Raise for exception-response and confirmed-service-error answers."""
    kind = answer["apdu"]
    if kind == "exception-response":
        detail = f"{answer.get('state_error')}/{answer.get('service_error')}"
        if answer.get("service_error") in ("deciphering-error", "invocation-counter-error"):
            counter = answer.get("invocation_counter")
            extra = f" (meter expects invocation counter {counter})" if counter is not None else ""
            raise SecurityFailure(f"{what}: meter refused our ciphering: {detail}{extra}")
        raise ProtocolError(f"{what}: exception-response {detail}")
    if kind == "confirmed-service-error":
        raise ProtocolError(
            f"{what}: confirmed-service-error {answer.get('service')}: "
            f"{answer.get('error')} {answer.get('value')}"
        )
