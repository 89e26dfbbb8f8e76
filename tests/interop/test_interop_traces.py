"""Interoperability: our client session against recorded exchanges of real meters.

Each trace in tests/vectors/interop/ (source named in the file and in its
README) is replayed by a scripted peer (replay_peer.py): the peer checks
each frame our client sends against the recorded request where the standard
fixes it, and answers with the recorded response. What the standard leaves
to the client (the proposed conformance and max PDU size of the
InitiateRequest, SNRM parameters) is masked; addresses, control fields,
ACSE fields and GET requests are compared byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.optical import OpticalSignOn
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    Security,
    SessionSettings,
)
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, WrapperTransport

from tests.interop.replay_peer import ReplayPeer, Step, hdlc_parts, wrapper_frame

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "interop"
INITIATE_CONFORMANCE = bytes.fromhex("5f1f0400")  # [APPLICATION 31] conformance, 4 bytes, 0 unused


def load(name: str) -> dict[str, Any]:
    trace: dict[str, Any] = json.loads((VECTORS / name).read_text())
    assert trace["source"], f"{name}: no source named"
    return trace


def mask_initiate(aarq: bytes) -> bytes:
    """The AARQ with the client's choices blanked: the proposed conformance
    (3 bytes) and client-max-receive-pdu-size (2 bytes) of the InitiateRequest."""
    at = aarq.find(INITIATE_CONFORMANCE)
    assert at > 0, f"no conformance block in {aarq.hex()}"
    start = at + len(INITIATE_CONFORMANCE)
    return aarq[:start] + b"\x00" * 5 + aarq[start + 5 :]


def hdlc_check(mode: str, recorded_hex: str) -> Any:
    recorded = bytes.fromhex(recorded_hex)
    want = hdlc_parts(recorded)

    def check(frame: bytes) -> str | None:
        got = hdlc_parts(frame)
        if (got.dest, got.src, got.control) != (want.dest, want.src, want.control):
            return (
                f"addresses/control {got.dest.hex()} {got.src.hex()} {got.control:02x}, "
                f"recorded {want.dest.hex()} {want.src.hex()} {want.control:02x}"
            )
        if mode == "exact" and frame != recorded:
            return f"sent {frame.hex()}, recorded {recorded.hex()}"
        if mode == "aarq" and mask_initiate(got.info) != mask_initiate(want.info):
            return f"AARQ {got.info.hex()}, recorded {want.info.hex()} (conformance/PDU masked)"
        return None

    return check


def recorded(response_hex: str) -> Any:
    answer = bytes.fromhex(response_hex)
    return lambda _frame: answer


def hdlc_steps(trace: dict[str, Any]) -> list[Step]:
    return [
        Step(ex["what"], hdlc_check(ex["compare"], ex["request"]), recorded(ex["response"]))
        for ex in trace["exchanges"]
    ]


def session_settings(client: dict[str, Any], client_sap: int) -> SessionSettings:
    if client["security"] == "lls":
        security = Security.lls(client["password"].encode())
    else:
        security = Security.none()
    return SessionSettings(
        client_sap=client_sap,
        security=security,
        release=False,  # the recordings hold no RLRE
        response_timeout=2.0,
        operation_timeout=5.0,
        association_timeout=5.0,
    )


def hdlc_transport(port: int, client: dict[str, Any]) -> HdlcTransport:
    settings = HdlcSettings(
        client_address=client["client_address"],
        server_upper=client["server_upper"],
        server_lower=client["server_lower"],
        response_timeout=1.0,
        max_retries=1,
    )
    return HdlcTransport.tcp("127.0.0.1", port, settings)


async def test_circutor_lls_get_replayed() -> None:
    trace = load("circutor-gosem-lls-get.json")
    client = trace["client"]
    peer = ReplayPeer(hdlc_steps(trace), hdlc=True)
    async with peer.serving():
        transport = hdlc_transport(peer.port, client)
        session = ClientSession(transport, session_settings(client, client["client_address"]))
        async with session:
            assert transport.negotiated is not None
            assert transport.negotiated.max_info_tx <= 0xF0  # the meter receives 240
            assert transport.negotiated.max_info_rx <= 0xF8  # and sends 248
            assert session.max_pdu_size == 0xF0
            assert {"get", "selective-access", "block-transfer-with-get-or-read"} <= set(
                session.conformance
            )
            expect = trace["exchanges"][2]["expect"]
            value = await session.get(expect["class_id"], expect["obis"], expect["attribute"])
            assert value == expect["value"]
    assert peer.mismatches == []
    assert peer.done == len(trace["exchanges"])


async def test_iskra_mt372_association_replayed() -> None:
    trace = load("iskra-mt372-jdlms-association.json")
    client = trace["client"]
    peer = ReplayPeer(hdlc_steps(trace), hdlc=True)
    async with peer.serving():
        transport = hdlc_transport(peer.port, client)
        session = ClientSession(transport, session_settings(client, client["client_address"]))
        async with session:
            # InitiateResponse 08 01 00 06 5F1F 04 00 007C1F 0400 0007: negotiated QoS present.
            assert session.max_pdu_size == 0x0400
            assert {"get", "set", "action", "selective-access"} <= set(session.conformance)
    assert peer.mismatches == []
    assert peer.done == 2


def test_iskra_mt372_optical_sign_on() -> None:
    optical = load("iskra-mt372-jdlms-association.json")["optical"]
    sign_on = OpticalSignOn(max_baud=9600)
    assert sign_on.start() == bytes.fromhex(optical["request"])
    sign_on.receive_data(bytes.fromhex(optical["identification"]))
    assert sign_on.baud == 9600
    assert sign_on.acknowledgement() == bytes.fromhex(optical["ack"])


def wrapper_aare_step(aare_hex: str) -> Step:
    def check(frame: bytes) -> str | None:
        return None if frame[8:9] == b"\x60" else f"expected an AARQ, got {frame.hex()}"

    def respond(frame: bytes) -> bytes:
        return wrapper_frame(
            int.from_bytes(frame[4:6], "big"),
            int.from_bytes(frame[2:4], "big"),
            bytes.fromhex(aare_hex),
        )

    return Step("AARQ/AARE", check, respond)


async def test_landis_gyr_rejection_without_user_information() -> None:
    trace = load("landis-gyr-aare-rejected.json")
    frame = bytes.fromhex(trace["frame"])
    aare = trace["exchanges"][0]["response_apdu"]
    assert hdlc_parts(frame).info == bytes.fromhex("e6e700") + bytes.fromhex(aare)
    peer = ReplayPeer([wrapper_aare_step(aare)], hdlc=False)
    async with peer.serving():
        client = trace["client"]
        transport = WrapperTransport.tcp("127.0.0.1", peer.port, client_sap=client["client_sap"])
        session = ClientSession(transport, session_settings(client, client["client_sap"]))
        with pytest.raises(AssociationRefused) as refused:
            await session.open()
    text = str(refused.value)
    assert "rejected-permanent" in text and "authentication-failure" in text, text
    assert peer.mismatches == []


def datablock_steps(blocks: list[str]) -> list[Step]:
    """get-request-normal of the object list, then get-request-next for each
    further block; the answers carry the recorded raw data."""
    steps = []
    for number, raw_hex in enumerate(blocks, start=1):
        raw = bytes.fromhex(raw_hex)
        last = number == len(blocks)

        if number == 1:
            want = bytes.fromhex("c001") + b"?" + bytes.fromhex("000f0000280000ff0200")
        else:
            want = bytes.fromhex("c002") + b"?" + (number - 1).to_bytes(4, "big")

        def check(frame: bytes, want: bytes = want) -> str | None:
            apdu = frame[8:]
            if len(apdu) != len(want) or apdu[:2] + apdu[3:] != want[:2] + want[3:]:
                return f"sent {apdu.hex()}, expected {want.hex().replace('3f', '??', 1)}"
            return None

        def respond(
            frame: bytes, raw: bytes = raw, number: int = number, last: bool = last
        ) -> bytes:
            invoke = frame[10:11]
            length = len(raw)
            if length < 0x80:
                size = bytes([length])
            elif length < 0x100:
                size = bytes([0x81, length])
            else:
                size = b"\x82" + length.to_bytes(2, "big")
            apdu = (
                b"\xc4\x02"
                + invoke
                + bytes([last])
                + number.to_bytes(4, "big")
                + b"\x00"
                + size
                + raw
            )
            return wrapper_frame(
                int.from_bytes(frame[4:6], "big"), int.from_bytes(frame[2:4], "big"), apdu
            )

        steps.append(Step(f"object list block {number}", check, respond))
    return steps


async def test_kamstrup_object_list_in_blocks() -> None:
    trace = load("kamstrup-object-list-blocks.json")
    # The association is answered with the recorded Circutor AARE (LN, no
    # security, get + block transfer): the Kamstrup recording starts after it.
    aare_frame = bytes.fromhex(load("circutor-gosem-lls-get.json")["exchanges"][1]["response"])
    aare = hdlc_parts(aare_frame).info[3:]
    steps = [wrapper_aare_step(aare.hex()), *datablock_steps(trace["raw_data_blocks"])]
    peer = ReplayPeer(steps, hdlc=False)
    async with peer.serving():
        client = trace["client"]
        transport = WrapperTransport.tcp("127.0.0.1", peer.port, client_sap=client["client_sap"])
        async with ClientSession(transport, session_settings(client, client["client_sap"])) as s:
            model = await s.read_object_model()
    assert peer.mismatches == []
    assert peer.done == len(steps)
    assert len(model) == trace["objects"]
    found = {(o.class_id, str(o.obis)) for o in model}
    assert {
        (1, "0.0.42.0.0.255"),
        (3, "1.1.1.8.0.255"),
        (4, "1.1.1.6.0.255"),
        (7, "0.1.99.1.0.255"),
        (15, "0.0.40.0.0.255"),
    } <= found


def ui_events(stream: bytes) -> list[bytes]:
    link = _core.HdlcLink("client", client_address=103, server_upper=1, server_lower=17)
    link.receive_data(stream, 0.0)
    events = []
    while (event := link.next_event()) is not None:
        assert isinstance(event, _core.LinkUi), event
        events.append(event.data)
    return events


def test_iskra_am550_push_frames_reassemble_by_hand() -> None:
    """The recording itself: the three UI frames' information fields, joined,
    are one data-notification (checks the vector, not our link)."""
    trace = load("iskra-am550-segmented-ui-push.json")
    framer = _core.HdlcFramer()
    framer.feed(bytes.fromhex(trace["stream"]))
    frames = framer.drain()
    assert [(f.kind, f.segmented) for f in frames] == [("UI", True), ("UI", True), ("UI", False)]
    payload = b"".join(bytes(f.info) for f in frames)
    assert payload[:3] == bytes.fromhex("e6e700")
    check_am550_notification(payload[3:], trace["expect"])


def check_am550_notification(apdu: bytes, expect: dict[str, Any]) -> None:
    notification = _core.decode_apdu(apdu)
    assert notification["apdu"] == expect["apdu"]
    assert notification["long_invoke_id_and_priority"] == expect["long_invoke_id"]
    body = _core.decode(notification["body_raw"])
    assert len(body["value"]) == expect["items"]
    assert [v["value"] for v in body["value"][0]["value"]] == expect["first"]


def test_iskra_am550_segmented_ui_push_reassembled_by_our_link() -> None:
    trace = load("iskra-am550-segmented-ui-push.json")
    events = ui_events(bytes.fromhex(trace["stream"]))
    assert len(events) == 1, [len(e) for e in events]
    check_am550_notification(events[0], trace["expect"])
