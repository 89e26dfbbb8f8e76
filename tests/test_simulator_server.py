"""The simulated meter as a DLMS server over TCP (wrapper and HDLC), checked
with a minimal client made of core calls: association per security level,
the rejections the Green Book prescribes, ciphering and its replay check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from smmc_gateway import _core

from tests.support_sim import ClientKeys, FleetSpec, MiniClient, MiniClientError, running_fleet

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

CLOCK = (8, "0.0.1.0.0.255", 2)
DEVICE_ID = (1, "0.0.96.1.0.255", 2)


def keys_of(info: dict[str, str], **kw: object) -> ClientKeys:
    return ClientKeys(ek=bytes.fromhex(info["ek"]), ak=bytes.fromhex(info["ak"]), **kw)  # type: ignore[arg-type]


def assert_clock_now(value: dict[str, object]) -> None:
    stamp = _core.decode_datetime(bytes.fromhex(str(value["value"])))
    assert stamp is not None
    assert abs((stamp.astimezone(UTC) - datetime.now(UTC)).total_seconds()) < 30


@pytest.mark.parametrize("hdlc", [False, True], ids=["wrapper", "hdlc"])
async def test_public_client_reads_clock_and_releases(hdlc: bool) -> None:
    async with running_fleet(FleetSpec(history_days=0), hdlc=hdlc) as sim:
        client = await MiniClient.tcp(sim.ports[0], hdlc=hdlc, server_lower=16)
        await client.connect()
        aare = await client.associate()
        assert aare["result"] == "accepted"
        assert aare["result_source_diagnostic"] == {"source": "acse-service-user", "value": "null"}
        initiate = aare["user_information"]
        assert initiate["apdu"] == "initiate-response"
        assert initiate["negotiated_dlms_version_number"] == 6
        assert "get" in initiate["negotiated_conformance"]
        assert "general-protection" not in initiate["negotiated_conformance"]  # not proposed
        assert_clock_now(await client.get(*CLOCK))
        rlre = await client.release()
        assert rlre["apdu"] == "rlre" and rlre["reason"] == "normal"
        await client.close()


async def test_lls_management_client_and_wrong_password() -> None:
    spec = FleetSpec(auth="lls", password=b"Secret12", history_days=0)
    async with running_fleet(spec, hdlc=True) as sim:
        client = await MiniClient.tcp(sim.ports[0], hdlc=True, client=1, server_lower=16)
        await client.connect()
        aare = await client.associate(mechanism="lls", secret=b"wrong-pw")
        assert aare["result"] == "rejected-permanent"
        assert aare["result_source_diagnostic"]["value"] == "authentication-failure"
        assert await _exception_or_none(client) == "service-not-allowed"
        aare = await client.associate(mechanism="lls", secret=b"Secret12")
        assert aare["result"] == "accepted"
        assert await client.get(*DEVICE_ID) == {
            "type": "octet-string",
            "value": sim.info[0]["serial"].encode().hex(),
        }
        aare = await client.associate()  # no mechanism for an LLS association
        assert aare["result_source_diagnostic"]["value"] == "authentication-mechanism-name-required"
        await client.close()


async def _exception_or_none(client: MiniClient) -> str | None:
    """A GET without an association must be refused with an exception-response."""
    reply = _core.decode_apdu(
        await client.exchange(
            _core.encode_apdu(
                {
                    "apdu": "get-request-normal",
                    "invoke_id_and_priority": 0xC1,
                    "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 2},
                }
            )
        )
    )
    assert reply["apdu"] == "exception-response"
    return str(reply["state_error"])


async def test_hls_gmac_full_exchange_and_ciphered_get() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        info = sim.info[0]
        keys = keys_of(info)
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys)
        await client.connect()
        ctos = b"ClientChallenge!"
        aare = await client.associate(mechanism="hls-gmac", secret=ctos)
        assert aare["result"] == "accepted"
        assert aare["result_source_diagnostic"]["value"] == "authentication-required"
        assert aare["mechanism_name"] == "hls-gmac"
        assert aare["responding_ap_title"] == bytes.fromhex(info["system_title"])
        assert aare["user_information"]["apdu"] == "glo-initiate-response"
        stoc = aare["responding_authentication_value"]
        assert 8 <= len(stoc) <= 64
        # Pending: nothing but reply_to_HLS_authentication is served.
        pending = await client.request(
            {
                "apdu": "get-request-normal",
                "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 2},
            }
        )
        assert pending["apdu"] == "exception-response"
        reply = await client.hls_reply(stoc)
        assert reply["result"] == "success"
        f_ctos = _core.decode(reply["return_data"]["data_raw"])
        server_ic = _core.hls_gmac_verify(
            keys.server_title, keys.ek, keys.ak, ctos, bytes.fromhex(f_ctos["value"])
        )
        assert server_ic >= 1
        assert_clock_now(await client.get(*CLOCK))
        client_title = await client.get(64, "0.0.43.0.1.255", 4)
        assert bytes.fromhex(client_title["value"]) == keys.system_title
        assert (await client.release())["apdu"] == "rlre"
        await client.close()


async def test_hls_wrong_f_stoc_keeps_association_closed() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys_of(sim.info[0]))
        await client.connect()
        aare = await client.associate(mechanism="hls-gmac", secret=b"12345678")
        reply = await client.hls_reply(b"not the challenge the meter sent")
        assert reply["result"] == "other-reason" and reply["return_data"] is None
        denied = await client.request(
            {
                "apdu": "get-request-normal",
                "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 2},
            }
        )
        assert denied["apdu"] == "exception-response"
        assert aare["result"] == "accepted"
        await client.close()


@pytest.mark.parametrize("fault", ["client-wrong-key", "meter-wrong-keys"])
async def test_wrong_keys_reject_the_association(fault: str) -> None:
    spec = FleetSpec(auth="hls-gmac", history_days=0)
    spec.faults.wrong_keys = fault == "meter-wrong-keys"
    async with running_fleet(spec) as sim:
        keys = keys_of(sim.info[0])
        if fault == "client-wrong-key":
            keys.ek = bytes(16)
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys)
        await client.connect()
        aare = await client.associate(mechanism="hls-gmac", secret=b"12345678")
        assert aare["result"] == "rejected-permanent"
        ui = aare["user_information"]
        assert ui["apdu"] == "confirmed-service-error" and ui["service"] == "initiate-error"
        await client.close()


async def test_unknown_client_sap_and_wrong_context_are_rejected() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0), hdlc=False) as sim:
        client = await MiniClient.tcp(sim.ports[0], client=99)
        await client.connect()
        assert (await client.associate())["result"] == "rejected-permanent"
        await client.close()
        # The public client asking for a ciphered context.
        client = await MiniClient.tcp(sim.ports[0], client=16, keys=keys_of(sim.info[0]))
        await client.connect()
        aare = await client.associate()
        assert aare["result"] == "rejected-permanent"
        assert aare["result_source_diagnostic"]["value"] == "application-context-name-not-supported"
        assert aare["application_context_name"] == "logical-name"
        await client.close()
        # The management client asking for LLS where HLS-GMAC is configured.
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys_of(sim.info[0]))
        await client.connect()
        aare = await client.associate(mechanism="lls", secret=b"12345678")
        assert aare["result_source_diagnostic"]["value"] == (
            "authentication-mechanism-name-not-recognised"
        )
        await client.close()


async def test_hdlc_snrm_from_unknown_client_gets_dm() -> None:
    async with running_fleet(FleetSpec(history_days=0), hdlc=True) as sim:
        client = await MiniClient.tcp(sim.ports[0], hdlc=True, client=0x55, server_lower=16)
        with pytest.raises(MiniClientError, match="refused"):
            await client.connect()
        await client.close()


async def test_old_dlms_version_gets_initiate_error() -> None:
    async with running_fleet(FleetSpec(history_days=0)) as sim:
        client = await MiniClient.tcp(sim.ports[0])
        await client.connect()
        aare = await client.associate(version=5)
        assert aare["result"] == "rejected-permanent"
        assert aare["user_information"] == {
            "apdu": "confirmed-service-error",
            "service": "initiate-error",
            "error": "initiate",
            "value": "dlms-version-too-low",
        }
        await client.close()


async def test_replayed_invocation_counter_and_plain_request_are_refused() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        keys = keys_of(sim.info[0])
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys)
        await client.connect()
        aare = await client.associate(mechanism="hls-gmac", secret=b"12345678")
        assert (await client.hls_reply(aare["responding_authentication_value"]))["result"] == (
            "success"
        )
        assert_clock_now(await client.get(*CLOCK))
        keys.ic -= 1  # the next request reuses the last counter
        replay = await client.request(
            {
                "apdu": "get-request-normal",
                "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 2},
            }
        )
        assert replay["apdu"] == "exception-response"
        assert replay["service_error"] == "invocation-counter-error"
        assert replay["invocation_counter"] == keys.ic
        plain = _core.encode_apdu(
            {
                "apdu": "get-request-normal",
                "invoke_id_and_priority": 0xC1,
                "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 2},
            }
        )
        assert _core.decode_apdu(await client.exchange(plain))["apdu"] == "exception-response"
        assert_clock_now(await client.get(*CLOCK))  # still associated
        await client.close()


async def test_shared_hdlc_port_selects_meter_by_address() -> None:
    async with running_fleet(FleetSpec(meters=3, history_days=0), shared=True) as sim:
        for info in reversed(sim.info):
            client = await MiniClient.tcp(
                sim.ports[0], hdlc=True, server_lower=int(info["hdlc_address"])
            )
            await client.connect()
            assert (await client.associate())["result"] == "accepted"
            serial = await client.get(*DEVICE_ID)
            assert bytes.fromhex(serial["value"]).decode() == info["serial"]
            await client.release()
            await client.close()


async def test_concurrent_connections_to_one_meter() -> None:
    async with running_fleet(FleetSpec(history_days=0)) as sim:

        async def one() -> None:
            client = await MiniClient.tcp(sim.ports[0])
            await client.connect()
            assert (await client.associate())["result"] == "accepted"
            for _ in range(3):
                assert_clock_now(await client.get(*CLOCK))
            await client.release()
            await client.close()

        await asyncio.gather(*(one() for _ in range(5)))


async def test_association_object_describes_the_negotiated_context() -> None:
    """Association LN attribute 5 lists exactly the conformance the AARE offers."""
    from smmc_gateway.simulator.acse import BASIC_CONFORMANCE

    async with running_fleet(FleetSpec(history_days=0)) as sim:
        client = await MiniClient.tcp(sim.ports[0])
        await client.connect()
        everything = [*BASIC_CONFORMANCE, "attribute0-supported-with-get"]
        aare = await client.associate(conformance=everything)
        assert aare["user_information"]["negotiated_conformance"] == list(BASIC_CONFORMANCE)
        context = await client.get(15, "0.0.40.0.0.255", 5)
        bits = bytes.fromhex(context["value"][0]["value"])
        names = _core.decode_apdu(
            _core.encode_apdu(
                {
                    "apdu": "initiate-response",
                    "negotiated_dlms_version_number": 6,
                    "negotiated_conformance": int.from_bytes(bits, "big"),
                    "server_max_receive_pdu_size": 1024,
                    "vaa_name": 7,
                }
            )
        )["negotiated_conformance"]
        assert names == list(BASIC_CONFORMANCE)
        await client.close()


async def test_invocation_counter_object_tells_the_public_client_where_to_start() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        public = await MiniClient.tcp(sim.ports[0])
        await public.connect()
        await public.associate()
        ic_object = (1, "0.0.43.1.0.255", 2)
        assert await public.get(*ic_object) == {"type": "double-long-unsigned", "value": 0}
        keys = keys_of(sim.info[0], ic=500)
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys)
        await client.connect()
        aare = await client.associate(mechanism="hls-gmac", secret=b"12345678")
        await client.hls_reply(aare["responding_authentication_value"])
        last = keys.ic - 1
        assert await public.get(*ic_object) == {"type": "double-long-unsigned", "value": last}
        await client.close()
        await public.close()


async def test_ciphered_release_carries_a_ciphered_initiate_response() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        keys = keys_of(sim.info[0])
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys)
        await client.connect()
        aare = await client.associate(mechanism="hls-gmac", secret=b"12345678")
        await client.hls_reply(aare["responding_authentication_value"])
        initiate = _core.encode_apdu(
            {
                "apdu": "initiate-request",
                "proposed_dlms_version_number": 6,
                "proposed_conformance": ["get"],
                "client_max_receive_pdu_size": 1024,
            }
        )

        async def release(ek: bytes) -> dict[str, object]:
            ui = _core.cipher_apdu(
                initiate,
                security_control=0x30,
                system_title=keys.system_title,
                invocation_counter=keys.ic,
                ek=ek,
                ak=keys.ak,
            )
            keys.ic += 1
            rlrq = {"apdu": "rlrq", "reason": "normal", "user_information": _core.decode_apdu(ui)}
            return _core.decode_apdu(await client.exchange(_core.encode_apdu(rlrq)))

        refused = await release(bytes(16))  # not the meter's key: not released
        assert refused["reason"] == "not-finished"
        assert_clock_now(await client.get(*CLOCK))
        rlre = await release(keys.ek)
        assert rlre["reason"] == "normal"
        ui = rlre["user_information"]
        assert isinstance(ui, dict) and ui["apdu"] == "glo-initiate-response"
        plain, *_ = _core.decipher_apdu(
            _core.encode_apdu(ui), system_title=keys.server_title, ek=keys.ek, ak=keys.ak
        )
        assert _core.decode_apdu(plain)["apdu"] == "initiate-response"
        await client.close()


async def test_unsupported_services_get_an_exception_response() -> None:
    async with running_fleet(FleetSpec(history_days=0)) as sim:
        client = await MiniClient.tcp(sim.ports[0])
        await client.connect()
        await client.associate()
        # A short-name read-request (tag 0x05) to an LN-only meter.
        for apdu in (bytes.fromhex("0501020800"), bytes.fromhex("ff0102")):
            reply = _core.decode_apdu(await client.exchange(apdu))
            assert reply["apdu"] == "exception-response"
            assert reply["service_error"] == "service-not-supported"
        # A data-notification is not a request a meter serves.
        note = _core.encode_apdu(
            {
                "apdu": "data-notification",
                "long_invoke_id_and_priority": 1,
                "date_time": None,
                "body_raw": _core.encode({"type": "null-data", "value": None}),
            }
        )
        reply = _core.decode_apdu(await client.exchange(note))
        assert reply["apdu"] == "exception-response"
        assert_clock_now(await client.get(*CLOCK))  # the association survived
        await client.close()


async def test_security_policy_sets_the_protection_requests_need() -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0)) as sim:
        sim.fleet.meters[0].meter.security.policy = 0x04 | 0x08 | 0x20 | 0x40
        keys = keys_of(sim.info[0])
        client = await MiniClient.tcp(sim.ports[0], client=1, keys=keys)
        await client.connect()
        aare = await client.associate(mechanism="hls-gmac", secret=b"12345678")
        await client.hls_reply(aare["responding_authentication_value"])
        get = _core.encode_apdu(
            {
                "apdu": "get-request-normal",
                "invoke_id_and_priority": 0xC1,
                "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 2},
            }
        )
        for sc, accepted in ((0x10, False), (0x20, False), (0x30, True)):
            request = _core.cipher_apdu(
                get,
                security_control=sc,
                system_title=keys.system_title,
                invocation_counter=keys.ic,
                ek=keys.ek,
                ak=keys.ak,
            )
            keys.ic += 1
            reply = await client.exchange(request)
            if not accepted:
                assert _core.decode_apdu(reply)["service_error"] == "deciphering-error"
                continue
            plain, reply_sc, _, _ = _core.decipher_apdu(
                reply, system_title=keys.server_title, ek=keys.ek, ak=keys.ak
            )
            assert reply_sc == 0x30
            assert _core.decode_apdu(plain)["apdu"] == "get-response-normal"
        await client.close()


@pytest.mark.parametrize("size", [1, 2, 4])
async def test_hdlc_answers_with_the_address_size_the_client_used(size: int) -> None:
    async with running_fleet(FleetSpec(history_days=0), hdlc=True) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports[0])
        lower = None if size == 1 else 16
        writer.write(
            _core.hdlc_encode(
                "SNRM", dest_upper=1, dest_lower=lower, src_upper=16, address_size=size
            )
        )
        framer = _core.HdlcFramer()
        while (ua := framer.next_frame()) is None:
            framer.feed(await asyncio.wait_for(reader.read(256), 5.0))
        assert ua.kind == "UA"
        assert (ua.src_upper, ua.src_lower) == (1, lower)
        # flag, format, client address, server address, control, FCS, flag (+ HCS, info)
        assert ua.length == 8 + size + (2 + len(ua.info) if ua.info else 0)
        writer.close()
