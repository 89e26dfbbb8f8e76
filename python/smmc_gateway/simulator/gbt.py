"""General-block-transfer on the meter's side (Green Book, GBT), offered only
when the fleet enables it and the client proposes it.

Outgoing: an answer APDU (already ciphered if the association is) longer
than the client's max receive PDU size goes out in GBT blocks numbered from
1, one per client acknowledgement (window 1, no streaming); an
acknowledgement of an earlier block makes the next one go again.
Incoming: a request the client sends in GBT blocks is acknowledged block by
block (empty block-data) and, once the last block is in, handled as one APDU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smmc_gateway import _core

GBT_OVERHEAD = 12  # tag, block control, two block numbers, octet-string length


@dataclass
class GbtState:
    """One association's GBT transfers in both directions."""

    out_blocks: list[bytes] = field(default_factory=list)
    out_sent: int = 0
    in_buffer: bytearray = field(default_factory=bytearray)
    in_last: int = 0  # the last block number received from the client
    own_number: int = 0


def _block(state: GbtState, number: int, data: bytes, last: bool) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "general-block-transfer",
            "last_block": last,
            "streaming": False,
            "window": 1,
            "block_number": number,
            "block_number_ack": state.in_last,
            "block_data": data,
        }
    )


def start(state: GbtState, apdu: bytes, max_pdu: int) -> bytes:
    """The first block of ``apdu``; the rest wait for acknowledgements."""
    size = max(max_pdu - GBT_OVERHEAD, 16)
    state.out_blocks = [apdu[i : i + size] for i in range(0, len(apdu), size)]
    return _send(state, 1)


def _send(state: GbtState, number: int) -> bytes:
    last = number == len(state.out_blocks)
    data = state.out_blocks[number - 1]
    state.out_sent = number
    if last:
        state.out_blocks = []
    return _block(state, number, data, last)


def receive(state: GbtState, gbt: dict[str, Any]) -> tuple[list[bytes], bytes | None]:
    """(blocks to send, a reassembled request APDU or None) for one GBT APDU."""
    number: int = gbt["block_number"]
    ack: int = gbt["block_number_ack"]
    data: bytes = gbt["block_data"]
    if state.out_blocks and not data:
        # The client acknowledges our block ``ack``: the next (or the same again).
        if ack == state.out_sent:
            return [_send(state, ack + 1)], None
        if 0 < ack < state.out_sent:
            return [_send(state, ack + 1)], None
        return [], None
    if number != state.in_last + 1 and number != 1:
        return [], None  # a gap: wait for the client to repeat
    if number == 1:
        state.in_buffer = bytearray()
    state.in_buffer += data
    state.in_last = number
    if not gbt["last_block"]:
        state.own_number += 1
        return [_block(state, state.own_number, b"", False)], None
    request = bytes(state.in_buffer)
    state.in_buffer = bytearray()
    return [], request


def finish_incoming(state: GbtState) -> None:
    state.in_last = 0
