"""The client session's protocol edges against a scripted peer built from core
primitives (a unit-test peer; the integration proof is test_session_simulator):
liberal AAREs, invoke-id mismatch, exception-response, silence, a dropped
connection, general-block-transfer, out-of-order blocks, and the security
checks on responses (replayed counter, too little protection, plain answer)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import (
    ClientSession,
    LinkLost,
    MeterTimeout,
    ProtocolError,
    Security,
    SecurityFailure,
    SessionSettings,
)
from smmc_gateway.dlms.transport import WrapperTransport

Script = Callable[[dict[str, Any], bytes], list[bytes] | None]
"""(decoded request, raw request) -> APDUs to answer (None: hang up)."""

EK = bytes(range(16))
AK = bytes(range(16, 32))
SERVER_TITLE = b"SRV\x00\x00\x00\x00\x01"
VALUE = _core.encode({"type": "long-unsigned", "value": 230})
CONFORMANCE = ["get", "set", "action", "block-transfer-with-get-or-read"]


def initiate_response(pdu: int = 512) -> dict[str, Any]:
    return {
        "apdu": "initiate-response",
        "negotiated_dlms_version_number": 6,
        "negotiated_conformance": CONFORMANCE,
        "server_max_receive_pdu_size": pdu,
        "vaa_name": 7,
    }


def aare(**fields: Any) -> bytes:
    apdu = {
        "apdu": "aare",
        "application_context_name": "logical-name",
        "result": "accepted",
        "result_source_diagnostic": {"source": "acse-service-user", "value": "null"},
        "user_information": initiate_response(),
    }
    apdu.update(fields)
    return _core.encode_apdu(apdu)


def get_response(request: dict[str, Any], data: bytes = VALUE, *, iid: int | None = None) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "get-response-normal",
            "invoke_id_and_priority": request["invoke_id_and_priority"] if iid is None else iid,
            "result": {"data_raw": data},
        }
    )


@contextlib.asynccontextmanager
async def peer(script: Script) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = _core.WrapperFramer()
        try:
            while data := await reader.read(4096):
                framer.feed(data)
                while (frame := framer.next_frame()) is not None:
                    raw = frame[2]
                    answers = script(_core.decode_apdu(raw), raw)
                    if answers is None:
                        writer.close()
                        return
                    for apdu in answers:
                        writer.write(_core.wrapper_encode(1, 16, apdu))
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def plain_meter(on_get: Callable[[dict[str, Any]], list[bytes] | None]) -> Script:
    def script(request: dict[str, Any], raw: bytes) -> list[bytes] | None:
        if request["apdu"] == "aarq":
            return [aare()]
        if request["apdu"] == "rlrq":
            return [_core.encode_apdu({"apdu": "rlre", "reason": "normal"})]
        return on_get(request)

    return script


def session(port: int, **settings: Any) -> ClientSession:
    settings.setdefault("response_timeout", 2.0)
    return ClientSession(
        WrapperTransport.tcp("127.0.0.1", port), SessionSettings(**settings), meter_id="t"
    )


async def test_minimal_aare_and_missing_initiate_response_are_accepted() -> None:
    answers = iter(
        [
            aare(application_context_name=None, result_source_diagnostic=None),
            aare(user_information=None),
        ]
    )

    def script(request: dict[str, Any], raw: bytes) -> list[bytes] | None:
        if request["apdu"] == "aarq":
            return [next(answers)]
        if request["apdu"] == "rlrq":
            return [_core.encode_apdu({"apdu": "rlre"})]
        return [get_response(request)]

    async with peer(script) as port:
        async with session(port) as s:
            assert s.max_pdu_size == 512 and set(s.conformance) == set(CONFORMANCE)
            assert (await s.get(3, "1.0.32.7.0.255", 2))["value"] == 230
        async with session(port) as s:
            assert s.max_pdu_size == 0xFFFF  # assumed
            assert (await s.get(3, "1.0.32.7.0.255", 2))["value"] == 230


async def test_invoke_id_mismatch_is_a_protocol_error() -> None:
    async with (
        peer(plain_meter(lambda r: [get_response(r, iid=0xC0 | 9)])) as port,
        session(port) as s,
    ):
        with pytest.raises(ProtocolError, match="invoke id 9"):
            await s.get(3, "1.0.32.7.0.255", 2)


async def test_exception_response_is_a_protocol_error_naming_it() -> None:
    refusal = _core.encode_apdu(
        {
            "apdu": "exception-response",
            "state_error": "service-not-allowed",
            "service_error": "operation-not-possible",
        }
    )
    async with peer(plain_meter(lambda r: [refusal])) as port, session(port) as s:
        with pytest.raises(ProtocolError, match="service-not-allowed/operation-not-possible"):
            await s.get(3, "1.0.32.7.0.255", 2)


async def test_silent_meter_is_a_timeout_within_the_response_timeout() -> None:
    async with (
        peer(plain_meter(lambda r: [])) as port,
        session(port, response_timeout=0.3) as s,
    ):
        start = time.monotonic()
        with pytest.raises(MeterTimeout, match=r"GET 3/1\.0\.32\.7\.0\.255/2") as err:
            await s.get(3, "1.0.32.7.0.255", 2)
        assert time.monotonic() - start < 1.5
        assert err.value.timeout == pytest.approx(0.3)


async def test_operation_deadline_bounds_a_dripping_block_transfer() -> None:
    """A meter that answers every block at once but never sends the last one
    cannot stretch one GET past the operation timeout."""

    def drip(request: dict[str, Any]) -> list[bytes] | None:
        number = request.get("block_number", 0) + 1
        block = {
            "apdu": "get-response-with-datablock",
            "invoke_id_and_priority": request["invoke_id_and_priority"],
            "last_block": False,
            "block_number": number,
            "raw_data": b"\x00",
        }
        return [_core.encode_apdu(block)]

    async with peer(plain_meter(drip)) as port, session(port, operation_timeout=0.5) as s:
        start = time.monotonic()
        with pytest.raises(MeterTimeout):
            await s.get(7, "1.0.99.1.0.255", 2)
        assert time.monotonic() - start < 2.0


async def test_dropped_connection_is_link_lost() -> None:
    async with peer(plain_meter(lambda r: None)) as port:
        s = session(port)
        await s.open()
        with pytest.raises(LinkLost, match="closed by the peer"):
            await s.get(3, "1.0.32.7.0.255", 2)
        await s.close()


async def test_out_of_order_block_is_a_protocol_error() -> None:
    def blocks(request: dict[str, Any]) -> list[bytes]:
        block = {
            "apdu": "get-response-with-datablock",
            "invoke_id_and_priority": request["invoke_id_and_priority"],
            "last_block": False,
            "block_number": 1 if request["apdu"] == "get-request-normal" else 3,
            "raw_data": VALUE[:1],
        }
        return [_core.encode_apdu(block)]

    async with peer(plain_meter(blocks)) as port, session(port) as s:
        with pytest.raises(ProtocolError, match="block 3 received, expected 2"):
            await s.get(3, "1.0.32.7.0.255", 2)


async def test_general_block_transfer_is_reassembled_and_acknowledged() -> None:
    acks: list[dict[str, Any]] = []

    def script(request: dict[str, Any], raw: bytes) -> list[bytes] | None:
        if request["apdu"] == "aarq":
            return [aare()]
        if request["apdu"] == "general-block-transfer":
            acks.append(request)
            return [chunks[len(acks)]]
        if request["apdu"] == "get-request-normal":
            whole = get_response(
                request, _core.encode({"type": "octet-string", "value": "ab" * 50})
            )
            parts = [whole[:40], whole[40:80], whole[80:]]
            chunks[:] = [
                _core.encode_apdu(
                    {
                        "apdu": "general-block-transfer",
                        "last_block": i == 2,
                        "streaming": False,
                        "window": 1,
                        "block_number": i + 1,
                        "block_number_ack": 0,
                        "block_data": part,
                    }
                )
                for i, part in enumerate(parts)
            ]
            return [chunks[0]]
        return [_core.encode_apdu({"apdu": "rlre"})]

    chunks: list[bytes] = []
    async with peer(script) as port, session(port) as s:
        value = await s.get(1, "0.0.96.1.0.255", 2)
    assert value["value"] == "ab" * 50
    assert [a["block_number_ack"] for a in acks] == [1, 2]


# ---------------------------------------------------------------- ciphered responses


def ciphered_meter(
    counters: list[int], *, sc: int = 0x30, plain_reply: bool = False, title: bool = True
) -> Script:
    """LN-with-ciphering association without HLS; answers GETs glo-ciphered
    with the given invocation counters, in order."""
    own = iter(counters)

    def protect(apdu: bytes) -> bytes:
        return _core.cipher_apdu(
            apdu,
            security_control=sc,
            system_title=SERVER_TITLE,
            invocation_counter=next(own),
            ek=EK,
            ak=AK,
        )

    def script(request: dict[str, Any], raw: bytes) -> list[bytes] | None:
        if request["apdu"] == "aarq":
            ui = _core.decode_apdu(protect(_core.encode_apdu(initiate_response())))
            return [
                aare(
                    application_context_name="logical-name-with-ciphering",
                    responding_ap_title=SERVER_TITLE if title else None,
                    user_information=ui,
                )
            ]
        if request["apdu"] == "glo-get-request":
            plain, *_ = _core.decipher_apdu(raw, system_title=b"SMMCTEST", ek=EK, ak=AK)
            answer = get_response(_core.decode_apdu(plain))
            return [answer if plain_reply else protect(answer)]
        return [_core.encode_apdu({"apdu": "rlre"})]

    return script


def ciphered_session(port: int) -> ClientSession:
    sec = Security(
        system_title=b"SMMCTEST",
        ek=EK,
        ak=AK,
        ciphered=True,
        ic_store=InvocationCounterStore(":memory:"),
    )
    return session(port, security=sec)


async def test_ciphered_association_reads() -> None:
    async with peer(ciphered_meter([1, 2, 3])) as port, ciphered_session(port) as s:
        assert s.server_system_title == SERVER_TITLE
        assert (await s.get(3, "1.0.32.7.0.255", 2))["value"] == 230
        assert (await s.get(3, "1.0.32.7.0.255", 2))["value"] == 230


async def test_replayed_response_counter_is_refused() -> None:
    async with peer(ciphered_meter([1, 5, 5])) as port, ciphered_session(port) as s:
        await s.get(3, "1.0.32.7.0.255", 2)
        with pytest.raises(SecurityFailure, match="replayed invocation counter 5"):
            await s.get(3, "1.0.32.7.0.255", 2)


async def test_response_with_less_protection_than_the_policy_is_refused() -> None:
    async with peer(ciphered_meter([1, 2], sc=0x20)) as port:
        with pytest.raises(SecurityFailure, match="security"):
            async with ciphered_session(port):
                pass


async def test_plain_response_in_a_ciphered_association_is_refused() -> None:
    async with peer(ciphered_meter([1], plain_reply=True)) as port, ciphered_session(port) as s:
        with pytest.raises(SecurityFailure, match="unciphered"):
            await s.get(3, "1.0.32.7.0.255", 2)


async def test_late_answer_to_an_abandoned_request_is_dropped() -> None:
    pending: list[dict[str, Any]] = []

    def late(request: dict[str, Any]) -> list[bytes]:
        if not pending:
            pending.append(request)  # no answer now: the client times out
            return []
        stale = get_response(pending[0], _core.encode({"type": "long-unsigned", "value": 1}))
        return [stale, get_response(request)]

    async with peer(plain_meter(late)) as port, session(port, response_timeout=0.3) as s:
        with pytest.raises(MeterTimeout):
            await s.get(3, "1.0.32.7.0.255", 2)
        assert (await s.get(3, "1.0.32.7.0.255", 2))["value"] == 230


async def test_keep_alive_reads_the_clock_while_idle() -> None:
    clock_reads = 0
    twice = asyncio.Event()

    def on_get(request: dict[str, Any]) -> list[bytes]:
        nonlocal clock_reads
        if request["attribute"]["obis"] == "0.0.1.0.0.255":
            clock_reads += 1
            if clock_reads == 2:
                twice.set()
        return [get_response(request)]

    async with peer(plain_meter(on_get)) as port:
        async with session(port, keep_alive_interval=0.1) as s:
            await asyncio.wait_for(twice.wait(), 5)
            assert s.keep_alive_error is None
        reads = clock_reads
    assert reads >= 2


@pytest.mark.parametrize("form", ["response-with-optional-data", "bare-data"])
async def test_action_response_in_pblocks_is_reassembled(form: str) -> None:
    data = _core.encode({"type": "octet-string", "value": "cd" * 60})
    normal = _core.encode_apdu(
        {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": 0xC1,
            "result": "success",
            "return_data": {"data_raw": data},
        }
    )
    raw = normal[3:] if form == "response-with-optional-data" else data
    asked: list[int] = []

    def on_action(request: dict[str, Any]) -> list[bytes]:
        if request["apdu"] == "action-request-next-pblock":
            asked.append(request["block_number"])
        number = 1 if request["apdu"] == "action-request-normal" else 2
        block = {
            "apdu": "action-response-with-pblock",
            "invoke_id_and_priority": request["invoke_id_and_priority"],
            "last_block": number == 2,
            "block_number": number,
            "raw_data": raw[:50] if number == 1 else raw[50:],
        }
        return [_core.encode_apdu(block)]

    async with peer(plain_meter(on_action)) as port, session(port) as s:
        value = await s.action(9, "0.0.10.0.0.255", 1, {"type": "integer", "value": 1})
    assert value == _core.decode(data)
    assert asked == [1]


async def test_ciphered_aare_without_the_server_system_title_is_refused() -> None:
    async with peer(ciphered_meter([1], title=False)) as port:
        with pytest.raises(SecurityFailure, match="no server system title"):
            await ciphered_session(port).open()


async def test_close_survives_a_malformed_rlre() -> None:
    """Gurux's server answers the RLRQ with an RLRE whose lengths are wrong."""
    released = asyncio.Event()

    def script(request: dict[str, Any], raw: bytes) -> list[bytes] | None:
        if request["apdu"] == "aarq":
            return [aare()]
        if request["apdu"] == "rlrq":
            released.set()
            return [bytes.fromhex("630e800100be0f040d08")]  # truncated RLRE
        return [get_response(request)]

    async with peer(script) as port:
        s = session(port)
        await s.open()
        await s.get(3, "1.0.32.7.0.255", 2)
        await s.close()  # must not raise
        assert released.is_set()
        assert not s.associated


async def test_invocation_counter_error_moves_our_counter_forward() -> None:
    """The hint is followed by the next request; the meter's authenticated
    answer to it makes it our counter (tests/security covers forged hints)."""
    refusal = _core.encode_apdu(
        {
            "apdu": "exception-response",
            "state_error": "service-not-allowed",
            "service_error": "invocation-counter-error",
            "invocation_counter": 5000,
        }
    )
    plain = ciphered_meter([1, 2, 3])
    sent: list[int] = []

    def script(request: dict[str, Any], raw: bytes) -> list[bytes] | None:
        if request["apdu"] == "glo-get-request":
            sent.append(_core.decipher_apdu(raw, system_title=b"SMMCTEST", ek=EK, ak=AK)[2])
            if len(sent) == 1:
                return [refusal]
        return plain(request, raw)

    async with peer(script) as port:
        s = ciphered_session(port)
        async with s:
            with pytest.raises(SecurityFailure, match="expects invocation counter 5000"):
                await s.get(3, "1.0.32.7.0.255", 2)
            assert (await s.get(3, "1.0.32.7.0.255", 2))["value"] == 230
        assert sent[1] == 5000
        store = s.settings.security.ic_store
        assert store is not None and store.next("t") > 5000
