"""One confirmed request/response exchange of a client session.

Sends a request dict (ciphered when the association is), waits for the answer
within both the response timeout and the operation's deadline, reassembles
general-block-transfer, deciphers and checks the answer, and turns
exception-response / confirmed-service-error into exceptions. The services
(GET/SET/ACTION and their block forms) are built on top, in
:mod:`smmc_gateway.dlms.client`.

What the meter sends is bounded and, in a ciphered association, authenticated:

* every received APDU is at most our max receive PDU size (``max_apdu``), and
  an answer reassembled from blocks at most ``max_block_transfer``
  (:class:`~smmc_gateway.dlms.errors.LimitExceeded` names the limit and size);
* in a ciphered association the only plain APDU taken is an exception-response
  of its exact length (``D8 state-error service-error``, plus the 4-byte
  Unsigned32 invocation counter of an invocation-counter-error: 3 or 7
  bytes); anything else plain — a get-response, a confirmed-service-error, a
  general-block-transfer whose reassembled payload is plain — is a
  SecurityFailure;
* the invocation counter such an exception-response hints at is unauthenticated:
  it is followed only within ``max_counter_jump`` and only tentatively; the
  counter store persists it once a request sent with it got an authenticated
  answer (:meth:`Exchange.request` confirms; see
  :mod:`smmc_gateway.dlms.ic_store`).
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.ciphering import CipherContext
from smmc_gateway.dlms.errors import (
    LimitExceeded,
    LinkLost,
    MeterTimeout,
    ProtocolError,
    SecurityFailure,
)
from smmc_gateway.dlms.ic_store import MAX_COUNTER_JUMP
from smmc_gateway.dlms.stream import Transport

log = structlog.get_logger("smmc_gateway.dlms")

EXCEPTION_RESPONSE = 0xD8
GENERAL_BLOCK_TRANSFER = 0xE0
_UNSOLICITED = {0x0F, 0xC2, 0xCA, 0xD2}  # data-notification, event-notification (plain/glo/ded)
PLAIN_EXCEPTION_SIZES = (3, 7)
"""Lengths of a plain exception-response: tag, state-error, service-error, and
for invocation-counter-error (6) the expected counter as an Unsigned32."""


class Exchange:
    """Request/response plumbing shared by every service of a session."""

    def __init__(
        self,
        transport: Transport,
        response_timeout: float,
        meter_id: str,
        *,
        max_apdu: int = 0xFFFF,
        max_block_transfer: int = 8 << 20,
        max_counter_jump: int = MAX_COUNTER_JUMP,
    ) -> None:
        self.transport = transport
        self.response_timeout = response_timeout
        self.meter_id = meter_id
        self.max_apdu = max_apdu
        self.max_block_transfer = max_block_transfer
        self.max_counter_jump = max_counter_jump
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
        goes out in general-block-transfer blocks of that many bytes. An
        authenticated answer confirms the request's invocation counter (a
        tentatively followed hint becomes the persisted counter)."""
        plain = _core.encode_apdu(apdu)
        used: int | None = None
        out = plain
        if self.cipher is not None:
            used = self.cipher.next_counter() if counter is None else counter
            out = self.cipher.cipher(plain, used)
        if gbt_block is not None and len(out) > gbt_block:
            await self._send_gbt(out, gbt_block, deadline, what, budget)
        else:
            await self.transport.send_apdu(out)
        sent = apdu.get("invoke_id_and_priority")
        while True:
            try:
                answer, authenticated = await self._receive(deadline, what, budget)
            except MeterTimeout:
                if sent is not None:
                    self._abandoned.add(sent & 0x0F)
                raise
            got = answer.get("invoke_id_and_priority")
            if sent is None or got is None or (sent & 0x0F) == (got & 0x0F):
                if authenticated and used is not None and self.cipher is not None:
                    self.cipher.confirm(used)
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
                apdu = await self.transport.receive_apdu(wait)
            except MeterTimeout:
                if self.transport.progress == before:
                    raise MeterTimeout(awaited, wait) from None
                log.debug("response_in_progress", meter_id=self.meter_id, awaiting=what)
                continue
            except LinkLost as exc:
                raise LinkLost(f"{exc} (awaiting {what})") from exc
            if len(apdu) > self.max_apdu:
                raise LimitExceeded(
                    f"{what}: APDU from {self.transport.description}",
                    len(apdu),
                    self.max_apdu,
                    "max receive PDU size",
                )
            return apdu

    async def receive(self, deadline: float, what: str, budget: float) -> dict[str, Any]:
        """The next answer (not an unsolicited notification), deciphered and decoded."""
        return (await self._receive(deadline, what, budget))[0]

    async def _receive(
        self, deadline: float, what: str, budget: float
    ) -> tuple[dict[str, Any], bool]:
        """The next answer and whether it was authenticated (deciphered, tag checked)."""
        while True:
            data = await self.receive_raw(deadline, what, budget)
            via_gbt = bool(data) and data[0] == GENERAL_BLOCK_TRANSFER
            if via_gbt:
                data = await self._reassemble_gbt(data, deadline, what, budget)
            if data and data[0] in _UNSOLICITED:
                log.info("unsolicited_apdu_ignored", meter_id=self.meter_id)
                continue
            authenticated = False
            if self.cipher is not None:
                data, authenticated = self._unprotect(self.cipher, data, what, via_gbt)
            try:
                answer = _core.decode_apdu(data)
            except _core.ApduError as exc:
                raise ProtocolError(f"{what}: undecodable APDU {data[:16].hex()}…: {exc}") from exc
            if answer["apdu"] == "exception-response":
                self._counter_hint(answer, what)
            check_error_apdu(answer, what)
            return answer, authenticated

    def _unprotect(
        self, cipher: CipherContext, data: bytes, what: str, via_gbt: bool
    ) -> tuple[bytes, bool]:
        """A received APDU of a ciphered association, deciphered; a plain one
        is refused unless it is an exception-response of its exact length."""
        source = self.transport.description
        if CipherContext.is_ciphered(data):
            try:
                return cipher.decipher_answer(data)
            except SecurityFailure as exc:
                raise SecurityFailure(f"{what} from {source}: {exc}") from exc
        if data[:1] == bytes([EXCEPTION_RESPONSE]) and not via_gbt:
            if len(data) not in PLAIN_EXCEPTION_SIZES:
                raise SecurityFailure(
                    f"{what} from {source}: unciphered exception-response of {len(data)} bytes "
                    "in a ciphered association (3 bytes, or 7 with an invocation counter)"
                )
            return data, False
        where = " reassembled from general-block-transfer" if via_gbt else ""
        raise SecurityFailure(
            f"{what} from {source}: unciphered {data[:1].hex() or 'empty'} APDU{where} "
            "in a ciphered association"
        )

    def _counter_hint(self, answer: dict[str, Any], what: str) -> None:
        """An exception-response naming the invocation counter the meter
        expects: followed within the bound, tentatively (module doc)."""
        hinted = answer.get("invocation_counter")
        if hinted is None or self.cipher is None:
            return
        try:
            followed = self.cipher.follow_hint(int(hinted), self.max_counter_jump)
        except SecurityFailure as exc:
            raise SecurityFailure(
                f"{what} from {self.transport.description}: meter refused our ciphering "
                f"({answer.get('state_error')}/{answer.get('service_error')}); {exc}"
            ) from exc
        log.warning(
            "invocation_counter_hint",
            meter_id=self.meter_id,
            hint=int(hinted),
            followed="tentatively" if followed else "no: not ahead of ours",
        )

    def check_reassembled(self, what: str, size: int) -> None:
        """Raise LimitExceeded when an answer reassembled from blocks has grown
        past the block-transfer ceiling."""
        if size > self.max_block_transfer:
            raise LimitExceeded(what, size, self.max_block_transfer, "block-transfer ceiling")

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
        total = 0
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
            total += len(gbt["block_data"])
            self.check_reassembled(f"{what}: general-block-transfer up to block {number}", total)
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
