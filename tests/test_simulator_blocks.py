"""Block transfer on the meter's side: long GET answers split by the client's
max receive PDU size, SET with datablocks and ACTION with pblocks reassembled,
GET with-list, selective access, and the block-number checks."""

from __future__ import annotations

from typing import Any

import pytest
from smmc_gateway import _core

from tests.support_sim import ClientKeys, FleetSpec, MiniClient, PushListener, running_fleet

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

LOAD_PROFILE = (7, "1.0.99.1.0.255", 2)
PUSH_SETUP = "0.0.25.9.0.255"


def entries(first: int, last: int) -> dict[str, Any]:
    """Selective access by entry (selector 2): rows first..last, all columns."""
    params = {
        "type": "structure",
        "value": [
            {"type": "double-long-unsigned", "value": first},
            {"type": "double-long-unsigned", "value": last},
            {"type": "long-unsigned", "value": 1},
            {"type": "long-unsigned", "value": 0},
        ],
    }
    return {"selector": 2, "parameters_raw": _core.encode(params)}


async def lls_client(port: int, max_pdu: int, **kw: Any) -> MiniClient:
    client = await MiniClient.tcp(port, client=1, max_pdu=max_pdu, **kw)
    await client.connect()
    aare = await client.associate(mechanism="lls", secret=b"pw123456")
    assert aare["result"] == "accepted"
    return client


@pytest.mark.parametrize("ciphered", [False, True], ids=["plain", "hls-gmac"])
async def test_long_get_is_split_by_the_negotiated_pdu_size(ciphered: bool) -> None:
    auth = "hls-gmac" if ciphered else "lls"
    spec = FleetSpec(auth=auth, password=b"pw123456", history_days=1)
    async with running_fleet(spec) as sim:
        info = sim.info[0]
        keys = ClientKeys(ek=bytes.fromhex(info["ek"]), ak=bytes.fromhex(info["ak"]))
        results = []
        for max_pdu in (0xFFFF, 200):
            client = await MiniClient.tcp(
                sim.ports[0], client=1, max_pdu=max_pdu, keys=keys if ciphered else None
            )
            await client.connect()
            if ciphered:
                aare = await client.associate(mechanism="hls-gmac", secret=b"abcdefgh")
                await client.hls_reply(aare["responding_authentication_value"])
            else:
                await client.associate(mechanism="lls", secret=b"pw123456")
            results.append(await client.get_blocks(*LOAD_PROFILE, selection=entries(1, 40)))
            assert client.largest_apdu <= max_pdu
            await client.close()
        (whole, none), (pieces, blocks) = results
        assert none == 0
        assert blocks > 5  # 40 rows of ~30 bytes in < 200-byte PDUs
        assert len(whole["value"]) == 40
        assert pieces == whole


async def test_get_next_with_a_wrong_block_number_aborts() -> None:
    async with running_fleet(FleetSpec(auth="lls", password=b"pw123456", history_days=1)) as sim:
        client = await lls_client(sim.ports[0], 128)
        first = await client.request(
            {
                "apdu": "get-request-normal",
                "attribute": {"class_id": 7, "obis": "1.0.99.1.0.255", "attribute_id": 2},
            }
        )
        assert first["apdu"] == "get-response-with-datablock" and not first["last_block"]
        wrong = await client.request({"apdu": "get-request-next", "block_number": 7})
        assert wrong["data_access_result"] == "data-block-number-invalid"
        after = await client.request({"apdu": "get-request-next", "block_number": 1})
        assert after["data_access_result"] == "no-long-get-in-progress"
        await client.close()


async def test_get_with_list() -> None:
    async with running_fleet(FleetSpec(history_days=0)) as sim:
        client = await MiniClient.tcp(sim.ports[0])
        await client.connect()
        await client.associate()
        reply = await client.request(
            {
                "apdu": "get-request-with-list",
                "attributes": [
                    {"class_id": 1, "obis": "0.0.96.1.0.255", "attribute_id": 2},
                    {"class_id": 1, "obis": "9.9.9.9.9.9", "attribute_id": 2},
                    {"class_id": 3, "obis": "0.0.96.1.0.255", "attribute_id": 2},
                ],
            }
        )
        assert reply["apdu"] == "get-response-with-list"
        serial = _core.decode(reply["results"][0]["data_raw"])
        assert bytes.fromhex(serial["value"]).decode() == sim.info[0]["serial"]
        assert reply["results"][1] == {"data_access_result": "object-undefined"}
        assert reply["results"][2] == {"data_access_result": "object-class-inconsistent"}
        await client.close()


async def test_set_with_datablocks_is_reassembled() -> None:
    spec = FleetSpec(auth="lls", password=b"pw123456", history_days=0)
    async with running_fleet(spec) as sim:
        client = await lls_client(sim.ports[0], 1024)
        objects = await client.get(40, PUSH_SETUP, 2)
        # Write the list back reversed, in 3 datablocks.
        new = {"type": "array", "value": list(reversed(objects["value"]))}
        raw = _core.encode(new)
        cut = [
            raw[: len(raw) // 3],
            raw[len(raw) // 3 : 2 * len(raw) // 3],
            raw[2 * len(raw) // 3 :],
        ]
        attribute = {"class_id": 40, "obis": PUSH_SETUP, "attribute_id": 2}
        replies = [
            await client.request(
                {
                    "apdu": "set-request-with-first-datablock",
                    "attribute": attribute,
                    "last_block": False,
                    "block_number": 1,
                    "raw_data": cut[0],
                }
            )
        ]
        for n, part in enumerate(cut[1:], start=2):
            replies.append(
                await client.request(
                    {
                        "apdu": "set-request-with-datablock",
                        "last_block": n == 3,
                        "block_number": n,
                        "raw_data": part,
                    }
                )
            )
        assert [r["apdu"] for r in replies] == [
            "set-response-datablock",
            "set-response-datablock",
            "set-response-last-datablock",
        ]
        assert [r["block_number"] for r in replies] == [1, 2, 3]
        assert replies[-1]["result"] == "success"
        assert await client.get(40, PUSH_SETUP, 2) == new
        await client.close()


async def test_action_with_pblocks_is_reassembled() -> None:
    async with (
        PushListener() as listener,
        running_fleet(
            FleetSpec(
                auth="lls",
                password=b"pw123456",
                history_days=0,
                push_destination=f"127.0.0.1:{listener.port}",
            )
        ) as sim,
    ):
        client = await lls_client(sim.ports[0], 1024)
        method = {"class_id": 40, "obis": PUSH_SETUP, "method_id": 1}
        raw = _core.encode({"type": "integer", "value": 0})
        first = await client.request(
            {
                "apdu": "action-request-with-first-pblock",
                "method": method,
                "last_block": False,
                "block_number": 1,
                "raw_data": raw[:1],
            }
        )
        assert first["apdu"] == "action-response-next-pblock" and first["block_number"] == 1
        last = await client.request(
            {
                "apdu": "action-request-with-pblock",
                "last_block": True,
                "block_number": 2,
                "raw_data": raw[1:],
            }
        )
        assert last["apdu"] == "action-response-normal" and last["result"] == "success"
        source, dest, apdu = await listener.next()  # the push the method made
        assert (source, dest) == (1, 102)
        assert _core.decode_apdu(apdu)["apdu"] == "data-notification"
        await client.close()


async def _gbt_exchange(client: MiniClient, apdu: bytes) -> bytes:
    """Send one APDU; follow general-block-transfer answers (window 1)."""
    reply = await client.exchange(apdu)
    parts = []
    own = 0
    while reply[0] == 0xE0:
        block = _core.decode_apdu(reply)
        assert block["block_number"] == len(parts) + 1
        assert len(reply) <= client.max_pdu
        parts.append(block["block_data"])
        if block["last_block"]:
            return b"".join(parts)
        own += 1
        ack = {
            "apdu": "general-block-transfer",
            "last_block": True,
            "streaming": False,
            "window": 1,
            "block_number": own,
            "block_number_ack": block["block_number"],
            "block_data": b"",
        }
        reply = await client.exchange(_core.encode_apdu(ack))
    return reply


@pytest.mark.parametrize("ciphered", [False, True], ids=["plain", "hls-gmac"])
async def test_general_block_transfer_both_ways(ciphered: bool) -> None:
    spec = FleetSpec(
        auth="hls-gmac" if ciphered else "lls",
        password=b"pw123456",
        history_days=1,
        general_block_transfer=True,
    )
    async with running_fleet(spec) as sim:
        info = sim.info[0]
        keys = ClientKeys(ek=bytes.fromhex(info["ek"]), ak=bytes.fromhex(info["ak"]))
        client = await MiniClient.tcp(
            sim.ports[0], client=1, max_pdu=128, keys=keys if ciphered else None
        )
        await client.connect()
        proposed = ["general-block-transfer", "get", "selective-access", "action"]
        if ciphered:
            aare = await client.associate(
                mechanism="hls-gmac", secret=b"abcdefgh", conformance=proposed
            )
            await client.hls_reply(aare["responding_authentication_value"])
            negotiated = _core.decode_apdu(
                _core.decipher_apdu(
                    _core.encode_apdu(aare["user_information"]),
                    system_title=keys.server_title,
                    ek=keys.ek,
                    ak=keys.ak,
                )[0]
            )["negotiated_conformance"]
        else:
            aare = await client.associate(mechanism="lls", secret=b"pw123456", conformance=proposed)
            negotiated = aare["user_information"]["negotiated_conformance"]
        assert "general-block-transfer" in negotiated
        request = _core.encode_apdu(
            {
                "apdu": "get-request-normal",
                "invoke_id_and_priority": 0xC1,
                "attribute": {
                    "class_id": 7,
                    "obis": "1.0.99.1.0.255",
                    "attribute_id": 2,
                    "access_selection": entries(1, 30),
                },
            }
        )
        if ciphered:
            request = client._cipher(request)
        # The request itself goes in two GBT blocks.
        half = len(request) // 2
        first = {
            "apdu": "general-block-transfer",
            "last_block": False,
            "streaming": False,
            "window": 1,
            "block_number": 1,
            "block_number_ack": 0,
            "block_data": request[:half],
        }
        ack = _core.decode_apdu(await client.exchange(_core.encode_apdu(first)))
        assert ack["apdu"] == "general-block-transfer"
        assert ack["block_number_ack"] == 1 and ack["block_data"] == b""
        second = {**first, "last_block": True, "block_number": 2, "block_data": request[half:]}
        answer = await _gbt_exchange(client, _core.encode_apdu(second))
        if ciphered:
            answer = _core.decipher_apdu(
                answer, system_title=keys.server_title, ek=keys.ek, ak=keys.ak
            )[0]
        response = _core.decode_apdu(answer)
        assert response["apdu"] == "get-response-normal"
        rows = _core.decode(response["result"]["data_raw"])["value"]
        assert len(rows) == 30
        await client.close()
