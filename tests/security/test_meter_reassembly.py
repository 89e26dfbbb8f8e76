"""Issue 7 item 3: what a meter sends is bounded per session. Each received APDU
(so each block) by the max receive PDU size we proposed, an answer reassembled
from blocks (general-block-transfer, DataBlock-G, pblocks) by
``max_block_transfer``, a wrapper frame and an HDLC segmented APDU at the
framing, and the queue of received APDUs. Every violation names the limit and
the size seen."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from smmc_gateway import _core
from smmc_gateway.cli.trace import TracingTransport
from smmc_gateway.dlms.session import LimitExceeded, LinkLost
from smmc_gateway.dlms.stream import MAX_QUEUED_APDUS
from smmc_gateway.dlms.transport import HdlcTransport, WrapperTransport

from tests.security.meter_peer import (
    Script,
    gbt_block,
    get_response,
    hdlc_transport,
    plain_meter,
    session,
    wrapper_transport,
)

PROFILE = (7, "1.0.99.1.0.255", 2)
BLOCK = bytes(range(200))
LIMITS: dict[str, Any] = {"max_pdu_size": 256, "max_block_transfer": 1000}


def endless_gbt() -> Script:
    """Answers the GET with GBT blocks of 200 bytes, the next one on each
    acknowledgement, never the last."""

    def on_request(request: dict[str, Any]) -> list[bytes] | None:
        if request["apdu"] == "general-block-transfer":
            return [gbt_block(request["block_number_ack"] + 1, BLOCK, last=False)]
        return [gbt_block(1, BLOCK, last=False)]

    return plain_meter(on_request)


def endless_datablocks(request: dict[str, Any]) -> list[bytes] | None:
    number = request.get("block_number", 0) + 1
    return [
        _core.encode_apdu(
            {
                "apdu": "get-response-with-datablock",
                "invoke_id_and_priority": request["invoke_id_and_priority"],
                "last_block": False,
                "block_number": number,
                "raw_data": BLOCK,
            }
        )
    ]


def endless_pblocks(request: dict[str, Any]) -> list[bytes] | None:
    number = request.get("block_number", 0) + 1
    return [
        _core.encode_apdu(
            {
                "apdu": "action-response-with-pblock",
                "invoke_id_and_priority": request["invoke_id_and_priority"],
                "last_block": False,
                "block_number": number,
                "raw_data": BLOCK,
            }
        )
    ]


def check_limit(exc: LimitExceeded, limit: int, name: str) -> None:
    assert exc.limit == limit and exc.size > limit, (exc.size, exc.limit)
    assert f"{exc.size} bytes exceed the {name} of {limit} bytes" in str(exc)


async def test_general_block_transfer_total_is_capped() -> None:
    async with session(wrapper_transport(endless_gbt()), **LIMITS) as s:
        with pytest.raises(LimitExceeded) as caught:
            await s.get_raw(*PROFILE)
    check_limit(caught.value, 1000, "block-transfer ceiling")
    assert "general-block-transfer up to block 6" in str(caught.value)


async def test_datablock_g_total_is_capped() -> None:
    async with session(wrapper_transport(plain_meter(endless_datablocks)), **LIMITS) as s:
        with pytest.raises(LimitExceeded) as caught:
            await s.get_raw(*PROFILE)
    check_limit(caught.value, 1000, "block-transfer ceiling")
    assert "data blocks up to block 6" in str(caught.value)


async def test_action_pblock_total_is_capped() -> None:
    async with session(wrapper_transport(plain_meter(endless_pblocks)), **LIMITS) as s:
        with pytest.raises(LimitExceeded) as caught:
            await s.action(9, "0.0.10.0.0.255", 1, {"type": "integer", "value": 1})
    check_limit(caught.value, 1000, "block-transfer ceiling")
    assert "pblocks up to pblock 6" in str(caught.value)


def oversize_block(request: dict[str, Any]) -> list[bytes] | None:
    return [
        _core.encode_apdu(
            {
                "apdu": "get-response-with-datablock",
                "invoke_id_and_priority": request["invoke_id_and_priority"],
                "last_block": True,
                "block_number": 1,
                "raw_data": bytes(300),
            }
        )
    ]


async def test_oversize_wrapper_frame_closes_the_link() -> None:
    transport = wrapper_transport(plain_meter(oversize_block))
    async with session(transport, **LIMITS) as s:
        with pytest.raises(LinkLost) as caught:
            await s.get_raw(*PROFILE)
        assert transport._pipe is not None and transport._pipe.is_closing()
    assert "bad wrapper frame" in str(caught.value)
    assert "exceeds the limit 256" in str(caught.value)
    assert transport.counters.frame_errors == 1


async def test_over_long_hdlc_segmented_apdu_is_refused() -> None:
    def long_answer(request: dict[str, Any]) -> list[bytes] | None:
        return [
            get_response(
                request["invoke_id_and_priority"],
                _core.encode({"type": "octet-string", "value": "ab" * 1000}),
            )
        ]

    transport = hdlc_transport(plain_meter(long_answer))
    async with session(transport, **LIMITS) as s:
        with pytest.raises(LinkLost) as caught:
            await s.get_raw(*PROFILE)
    text = str(caught.value)
    assert "longer than the limit of 256 bytes" in text, text
    assert "APDU of at least" in text


async def test_hdlc_link_takes_the_session_limit() -> None:
    transport = hdlc_transport(plain_meter(lambda request: None))
    session(transport, max_pdu_size=300)
    assert transport._link.max_reassembly == 300
    with pytest.raises(ValueError, match="max_reassembly 0"):
        _core.HdlcLink("client", client_address=16, max_reassembly=0)
    with pytest.raises(ValueError, match="max_reassembly"):
        transport._link.set_max_reassembly((1 << 20) + 1)


async def test_wrapper_framer_takes_the_session_limit() -> None:
    transport = wrapper_transport(plain_meter(lambda request: None))
    session(transport, max_pdu_size=300)
    assert transport._framer.max_apdu == 300


async def test_each_received_apdu_is_capped_even_without_a_framing_limit() -> None:
    """A transport that cannot apply the limit (the CLI's trace wrapper does
    not pass it on): the session still refuses a block longer than the PDU size."""
    inner = wrapper_transport(plain_meter(oversize_block))
    transport = TracingTransport(inner, err=Console(file=io.StringIO()))
    async with session(transport, **LIMITS) as s:
        with pytest.raises(LimitExceeded) as caught:
            await s.get_raw(*PROFILE)
    check_limit(caught.value, 256, "max receive PDU size")


@pytest.mark.parametrize("kind", [WrapperTransport, HdlcTransport])
async def test_answers_within_the_limits_still_work(kind: type) -> None:
    def blocks(request: dict[str, Any]) -> list[bytes] | None:
        number = request.get("block_number", 0) + 1
        return [
            _core.encode_apdu(
                {
                    "apdu": "get-response-with-datablock",
                    "invoke_id_and_priority": request["invoke_id_and_priority"],
                    "last_block": number == 5,
                    "block_number": number,
                    "raw_data": BLOCK,
                }
            )
        ]

    make = wrapper_transport if kind is WrapperTransport else hdlc_transport
    async with session(make(plain_meter(blocks)), **LIMITS) as s:
        assert await s.get_raw(*PROFILE) == BLOCK * 5  # exactly 1000: at the ceiling


async def test_apdu_flood_fails_the_link() -> None:
    notification = bytes.fromhex("0f0000000100120001")

    def flood(request: dict[str, Any]) -> list[bytes] | None:
        return [notification] * (MAX_QUEUED_APDUS * 2) + [
            get_response(request["invoke_id_and_priority"])
        ]

    transport = wrapper_transport(plain_meter(flood))
    async with session(transport, **LIMITS) as s:
        with pytest.raises(LinkLost, match=f"flooded: more than {MAX_QUEUED_APDUS} APDUs"):
            await s.get_raw(*PROFILE)
        assert transport._pipe is not None and transport._pipe.is_closing()


async def test_a_few_unsolicited_apdus_are_fine() -> None:
    notification = bytes.fromhex("0f0000000100120001")

    def some(request: dict[str, Any]) -> list[bytes] | None:
        return [notification] * (MAX_QUEUED_APDUS - 1) + [
            get_response(request["invoke_id_and_priority"])
        ]

    async with session(wrapper_transport(plain_meter(some)), **LIMITS) as s:
        assert (await s.get(*PROFILE))["value"] == 230
