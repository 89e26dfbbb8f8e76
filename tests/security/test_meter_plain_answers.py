"""Issue 7 item 2: in a ciphered association no plain answer is taken, except an
exception-response of its exact length; a model quirk relaxes only the named
case (a plain InitiateResponse), never the counter rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import DEFAULT_QUIRKS, ProtocolError, Security, SecurityFailure
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config_model import Addresses, MeterConfig, ModelConfig, TcpConnection

from tests.security.meter_peer import (
    AK,
    CLIENT_TITLE,
    EK,
    SCOPE,
    SERVER_TITLE,
    CipheredMeter,
    aare,
    ciphered_security,
    gbt_block,
    get_response,
    initiate_response,
    rlre,
    session,
    wrapper_transport,
)

CLOCK = (8, "0.0.1.0.0.255", 2)


@pytest.fixture
def store(tmp_path: Path) -> InvocationCounterStore:
    return InvocationCounterStore(tmp_path / "ic.sqlite", block=10)


@pytest.mark.parametrize("initiate", ["plain", "missing"])
async def test_unauthenticated_initiate_response_is_refused(
    initiate: str, store: InvocationCounterStore
) -> None:
    meter = CipheredMeter(initiate=initiate)
    s = session(wrapper_transport(meter), ciphered_security(store))
    with pytest.raises(SecurityFailure, match="ciphered association: refused") as refused:
        await s.open()
    assert "plain-initiate-response" in str(refused.value)  # names the quirk that would allow it
    assert not s.associated


@pytest.mark.parametrize("initiate", ["plain", "missing"])
async def test_quirk_lets_a_plain_initiate_response_through(
    initiate: str, store: InvocationCounterStore
) -> None:
    meter = CipheredMeter(initiate=initiate)
    security = ciphered_security(store)
    async with session(
        wrapper_transport(meter), security, quirks=frozenset({"plain-initiate-response"})
    ) as s:
        assert s.ciphered
        assert (await s.get(*CLOCK))["value"] == 230  # the rest stays ciphered and checked


async def test_quirk_never_relaxes_the_counter_rule(tmp_path: Path) -> None:
    store = InvocationCounterStore(tmp_path / "ic.sqlite", block=10)
    meter = CipheredMeter(
        initiate="plain", on_get=lambda request, counter: [bytes.fromhex("d80106ffffffff")]
    )
    async with session(
        wrapper_transport(meter),
        ciphered_security(store),
        quirks=frozenset({"plain-initiate-response"}),
    ) as s:
        with pytest.raises(SecurityFailure, match="at most"):
            await s.get(*CLOCK)
    store.close()
    assert InvocationCounterStore(tmp_path / "ic.sqlite", block=10).next(SCOPE) <= 11


def meter_config(model: str) -> MeterConfig:
    return MeterConfig(
        id=f"m-{model}",
        model=model,
        connection=TcpConnection(host="127.0.0.1", port=4059, framing="wrapper"),
        addresses=Addresses(client=16, server_logical=1, server_physical=None, address_size=None),
        security="none",
        keys=None,
        groups=(),
        source="test",
    )


def test_session_factory_passes_the_models_quirks_and_the_ceiling() -> None:
    model = ModelConfig("quirky", {}, 900.0, (), frozenset({"plain-initiate-response"}))
    factory = SessionFactory(models={"quirky": model}, max_block_transfer=123_456)
    settings = factory.settings(meter_config("quirky"))
    assert settings.quirks == frozenset({"plain-initiate-response"})
    assert settings.max_block_transfer == 123_456
    # A meter whose model is not configured: the harmless quirks, nothing of security.
    assert factory.settings(meter_config("other")).quirks == DEFAULT_QUIRKS
    assert "plain-initiate-response" not in DEFAULT_QUIRKS


async def test_plain_get_response_is_refused(store: InvocationCounterStore) -> None:
    meter = CipheredMeter(
        on_get=lambda request, counter: [get_response(request["invoke_id_and_priority"])]
    )
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure, match="unciphered c4 APDU in a ciphered"):
            await s.get(*CLOCK)


@pytest.mark.parametrize(
    "apdu",
    [
        "d80106ffffffff00",  # a counter tail one byte too long
        "d8010600000001" + "00" * 33,  # 40 bytes
        "d801",  # truncated
    ],
)
async def test_exception_response_of_the_wrong_length_is_refused(
    apdu: str, store: InvocationCounterStore
) -> None:
    meter = CipheredMeter(on_get=lambda request, counter: [bytes.fromhex(apdu)])
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure, match=f"exception-response of {len(apdu) // 2} bytes"):
            await s.get(*CLOCK)
    assert store.next(SCOPE) < 20


async def test_bounded_exception_response_is_still_reported(store: InvocationCounterStore) -> None:
    meter = CipheredMeter(on_get=lambda request, counter: [bytes.fromhex("d80101")])
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(ProtocolError, match="exception-response service-not-allowed"):
            await s.get(*CLOCK)


@pytest.mark.parametrize("payload", ["d80106ffffffff", "c401c100090101"])
async def test_plain_payload_of_a_general_block_transfer_is_refused(
    payload: str, store: InvocationCounterStore
) -> None:
    """The GBT blocks themselves are plain; what they carry must be ciphered
    (an exception-response included: it has no business in blocks)."""
    data = bytes.fromhex(payload)
    meter = CipheredMeter(on_get=lambda request, counter: [gbt_block(1, data[:3], last=False)])
    second = gbt_block(2, data[3:], last=True)
    acked: list[bool] = []

    def script(raw: bytes) -> list[bytes] | None:
        if raw[:1] == b"\xe0":  # our acknowledgement of block 1
            acked.append(True)
            return [second]
        return meter(raw)

    async with session(wrapper_transport(script), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure, match="reassembled from general-block-transfer"):
            await s.get(*CLOCK)
    assert acked
    assert store.next(SCOPE) < 20, "a hint carried in blocks must not move the counter"


async def test_plain_hls_pass_4_answer_is_refused(store: InvocationCounterStore) -> None:
    """HLS-GMAC with ciphering: the answer to reply_to_HLS_authentication must
    be ciphered too (a plain one with any f(CtoS) is refused)."""
    own = iter(range(1, 100))

    def protect(apdu: bytes) -> bytes:
        return _core.cipher_apdu(
            apdu,
            security_control=0x30,
            system_title=SERVER_TITLE,
            invocation_counter=next(own),
            ek=EK,
            ak=AK,
        )

    def script(raw: bytes) -> list[bytes] | None:
        request = _core.decode_apdu(raw)
        if request["apdu"] == "aarq":
            return [
                aare(
                    _core.decode_apdu(protect(initiate_response())),
                    application_context_name="logical-name-with-ciphering",
                    responding_ap_title=SERVER_TITLE,
                    result_source_diagnostic={
                        "source": "acse-service-user",
                        "value": "authentication-required",
                    },
                    responder_acse_requirements=True,
                    mechanism_name="hls-gmac",
                    responding_authentication_value=b"S" * 16,
                )
            ]
        if request["apdu"] == "glo-action-request":
            plain, *_ = _core.decipher_apdu(raw, system_title=CLIENT_TITLE, ek=EK, ak=AK)
            iid = _core.decode_apdu(plain)["invoke_id_and_priority"]
            f_ctos = _core.encode({"type": "octet-string", "value": "10" + "00" * 16})
            return [
                _core.encode_apdu(
                    {
                        "apdu": "action-response-normal",
                        "invoke_id_and_priority": iid,
                        "result": "success",
                        "return_data": {"data_raw": f_ctos},
                    }
                )
            ]
        return [rlre()]

    security = Security.hls_gmac(
        system_title=CLIENT_TITLE, ek=EK, ak=AK, ic_store=store, ic_scope=SCOPE
    )
    s = session(wrapper_transport(script), security)
    with pytest.raises(SecurityFailure, match="unciphered c7 APDU"):
        await s.open()
