"""The typed boundary of the association machines (``_core.ClientAssociation``,
``_core.ServerAssociation``): a client and a server wired in-process with a
fake clock, no socket, no sleep. What crosses is frozen classes: requests,
outcomes, failures with their typed error, events."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from smmc_gateway import _core

EK = bytes(range(16))
AK = bytes(range(16, 32))
VALUE = _core.encode({"type": "long-unsigned", "value": 230})
PROFILE = _core.Attribute(7, "1.0.99.1.0.255", 2)


class Pair:
    """A client and a server machine; the server answers from ``values``."""

    def __init__(
        self,
        client: _core.AssociationConfig,
        server: _core.AssociationConfig,
        values: dict[tuple[int, str, int], bytes | str] | None = None,
    ) -> None:
        self.c = _core.ClientAssociation(client)
        self.s = _core.ServerAssociation(server)
        self.s.set_challenge(b"S" * 16)
        self.values = values or {}
        self.now = 0.0
        self.client_events: list[_core.ClientEvent] = []
        self.server_events: list[_core.ServerEvent] = []
        self.counters = [1, 1000]
        self.rewrite: Callable[[bool, bytes], bytes | None] = lambda _c, a: a

    def answer(self, e: _core.Request) -> None:
        r = e.request
        if isinstance(r, _core.GetRequest):
            self.s.respond_get(
                e.id,
                [
                    self.values.get((a.class_id, a.obis, a.attribute_id), "object-undefined")
                    for a in r.attributes
                ],
            )
        elif isinstance(r, _core.SetRequest):
            self.s.respond_set(e.id, ["success"] * len(r.items))
        else:
            self.s.respond_action(e.id, [("success", p) for _m, p in r.items])

    def run(self) -> None:
        for _ in range(10_000):
            moved = False
            for e in self.c.events():
                if isinstance(e, _core.NeedCounters):
                    self.c.grant_counters(self.counters[0], 100)
                    self.counters[0] += 100
                self.client_events.append(e)
            for e in self.s.events():
                if isinstance(e, _core.NeedCounters):
                    self.s.grant_counters(self.counters[1], 100)
                    self.counters[1] += 100
                elif isinstance(e, _core.Request):
                    self.answer(e)
                self.server_events.append(e)
            for apdu in self.c.data_to_send():
                moved = True
                self.now += 0.01
                out = self.rewrite(True, apdu)
                if out is not None:
                    self.s.receive_data(out, self.now)
            for apdu in self.s.data_to_send():
                moved = True
                self.now += 0.01
                out = self.rewrite(False, apdu)
                if out is not None:
                    self.c.receive_data(out, self.now)
            if not moved:
                due = self.c.next_deadline()
                if due is None:
                    return
                self.now = max(self.now, due)
                self.c.handle_timeout(self.now)
        raise AssertionError("the pair did not settle")

    def response(self, rid: int) -> _core.Response:
        found = [e for e in self.client_events if isinstance(e, _core.Response) and e.id == rid]
        assert found, self.client_events
        return found[0]


def hls_pair(**server: object) -> Pair:
    c = _core.AssociationConfig(
        authentication="hls-gmac",
        system_title=b"CLIENT01",
        ek=EK,
        ak=AK,
        security_control=0x30,
        response_timeout=5.0,
    )
    s = _core.AssociationConfig(
        authentication="hls-gmac",
        system_title=b"SERVER01",
        ek=EK,
        ak=AK,
        security_control=0x30,
        **server,
    )  # type: ignore[arg-type]
    values: dict[tuple[int, str, int], bytes | str] = {
        (3, "1.0.1.8.0.255", 2): VALUE,
        (3, "1.0.2.8.0.255", 2): "read-write-denied",
    }
    return Pair(c, s, values)


def test_association_get_with_list_and_release_are_typed() -> None:
    p = hls_pair()
    p.c.open(p.now, b"C" * 16)
    p.run()
    (associated,) = [e for e in p.client_events if isinstance(e, _core.Associated)]
    agreement = associated.agreement
    assert agreement.ciphered and agreement.mechanism == 5
    assert agreement.peer_system_title == b"SERVER01"
    assert "multiple-references" in agreement.conformance_names
    assert p.c.state == "associated" and p.s.state == "associated"
    assert p.s.client_system_title == b"CLIENT01"
    items = [_core.Attribute(3, "1.0.1.8.0.255", 2), _core.Attribute(3, "1.0.2.8.0.255", 2)]
    rid = p.c.get(items, p.now)
    p.run()
    (request,) = [e for e in p.server_events if isinstance(e, _core.Request)]
    assert isinstance(request.request, _core.GetRequest)
    assert request.request.attributes == tuple(items)
    outcome = p.response(rid).outcome
    assert isinstance(outcome, _core.GetOutcome)
    first, second = outcome.results
    assert (first.data, first.error) == (VALUE, None)
    assert (second.data, second.error_name) == (None, "read-write-denied")
    assert p.c.confirmed_outgoing_counter is not None  # authenticated answers confirm
    assert p.c.last_incoming_counter is not None and p.c.last_incoming_counter >= 1000
    p.c.release(p.now)
    p.run()
    assert any(isinstance(e, _core.Released) and e.confirmed for e in p.client_events)
    assert p.c.state == "idle"


def test_set_and_action_outcomes_carry_names() -> None:
    p = hls_pair()
    p.c.open(p.now, b"C" * 16)
    p.run()
    rid = p.c.set([(_core.Attribute(1, "0.0.96.1.0.255", 2), VALUE)], p.now)
    aid = p.c.action(
        [
            (_core.Method(70, "0.0.96.3.10.255", 1), VALUE),
            (_core.Method(70, "0.0.96.3.10.255", 2), None),
        ],
        p.now,
    )
    p.run()
    set_outcome = p.response(rid).outcome
    assert isinstance(set_outcome, _core.SetOutcome) and set_outcome.names == ("success",)
    action = p.response(aid).outcome
    assert isinstance(action, _core.ActionOutcome)
    # in a with-list request a method without parameters carries null-data
    assert [(r.result_name, r.data) for r in action.results] == [
        ("success", VALUE),
        ("success", b"\x00"),
    ]


def test_a_reassembled_answer_over_the_ceiling_names_the_transfer_and_block() -> None:
    big = _core.encode({"type": "octet-string", "value": "ab" * 3000})
    no_gbt = ["get", "block-transfer-with-get-or-read"]
    c = _core.AssociationConfig(max_receive_pdu=256, max_block_transfer=1000, conformance=no_gbt)
    p = Pair(c, _core.AssociationConfig(), {(7, "1.0.99.1.0.255", 2): big})
    p.c.open(p.now)
    p.run()
    rid = p.c.get([PROFILE], p.now)
    p.run()
    failure = p.response(rid).failure
    assert failure is not None and failure.kind == "protocol"
    info = failure.error_info
    assert info is not None and info.kind == "too-long"
    assert info.field == "data blocks (max_block_transfer)"
    assert info.limit == 1000 and info.length is not None and info.length > 1000
    assert info.block is not None and info.block > 1
    assert f"up to block {info.block}" in info.message


def test_exception_response_with_a_counter_hint() -> None:
    p = hls_pair()
    p.c.open(p.now, b"C" * 16)
    p.run()

    def forge(from_client: bool, apdu: bytes) -> bytes | None:
        return bytes.fromhex("d8010600000fa0") if not from_client else apdu

    p.rewrite = forge
    rid = p.c.get([_core.Attribute(3, "1.0.1.8.0.255", 2)], p.now)
    p.run()
    failure = p.response(rid).failure
    assert failure is not None and failure.kind == "exception"
    assert failure.state_error_name == "service-not-allowed"
    assert failure.service_error_name == "invocation-counter-error"
    assert failure.invocation_counter == 4000
    (hint,) = [e for e in p.client_events if isinstance(e, _core.CounterHint)]
    assert (hint.id, hint.expected) == (rid, 4000)


def test_silence_is_a_timeout_on_the_fake_clock() -> None:
    p = hls_pair()
    p.c.open(p.now, b"C" * 16)
    p.run()
    p.rewrite = lambda from_client, apdu: None  # the line goes dead
    t0 = p.now
    rid = p.c.get([_core.Attribute(3, "1.0.1.8.0.255", 2)], p.now)
    p.run()
    assert any(isinstance(e, _core.Timeout) and e.id == rid for e in p.client_events)
    assert p.now == pytest.approx(t0 + 5.0 + 0.01, abs=0.05)


def test_server_refusals_are_typed() -> None:
    s = _core.AssociationConfig(authentication="lls", password=b"secret12")
    p = Pair(_core.AssociationConfig(authentication="lls", password=b"wrong123"), s)
    p.c.open(p.now)
    p.run()
    (refused,) = [e for e in p.client_events if isinstance(e, _core.Refused)]
    assert (refused.result_name, refused.diagnostic_name) == (
        "rejected-permanent",
        "authentication-failure",
    )
    assert refused.diagnostic_source == "acse-service-user"
    (server_side,) = [e for e in p.server_events if isinstance(e, _core.Refused)]
    assert "LLS" in server_side.detail
    # a server that refuses every AARQ (a client SAP without an association)
    p = Pair(_core.AssociationConfig(), _core.AssociationConfig())
    p.s.refuse_all("client SAP 5 has no association")
    p.c.open(p.now)
    p.run()
    (refused,) = [e for e in p.client_events if isinstance(e, _core.Refused)]
    assert refused.diagnostic_name == "no-reason-given"


def test_bad_inputs_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="obis"):
        _core.Attribute(3, "1.0.1.8.0", 2)
    with pytest.raises(ValueError, match="selector and parameters go together"):
        _core.Attribute(7, "1.0.99.1.0.255", 2, selector=1)
    with pytest.raises(_core.AxdrError):
        _core.Attribute(7, "1.0.99.1.0.255", 2, selector=1, parameters=b"\x02\x02\x11")
    with pytest.raises(ValueError, match="not a conformance bit name"):
        _core.AssociationConfig(conformance=["get", "gett"])
    with pytest.raises(ValueError, match="lls"):
        _core.AssociationConfig(authentication="lls")
    with pytest.raises(_core.ApduError, match=r"config\.gbt_window"):
        _core.AssociationConfig(gbt_window=0)
    assert _core.conformance_names(_core.conformance_bits(["get", "action"])) == ["get", "action"]
    client = _core.ClientAssociation(_core.AssociationConfig())
    with pytest.raises(_core.ApduError, match="needs an open association"):
        client.get([PROFILE], 0.0)
    server = _core.ServerAssociation(_core.AssociationConfig())
    with pytest.raises(_core.ApduError, match="no request 7"):
        server.respond_get(7, [VALUE])
    with pytest.raises(ValueError, match="not a known name"):
        server.respond_set(7, ["sucess"])


def test_data_notification_and_ciphering_sender_are_typed() -> None:
    stamp = bytes.fromhex("07ea030a02100000ff800000")
    note = _core.DataNotification(7, stamp, VALUE)
    apdu = note.encode()
    back = _core.DataNotification.decode(apdu)
    assert (back.long_invoke_id, back.date_time, back.body) == (7, stamp, VALUE)
    assert (
        _core.DataNotification.decode(_core.DataNotification(1, None, VALUE).encode()).date_time
        is None
    )
    with pytest.raises(_core.ApduError, match="a data-notification"):
        _core.DataNotification.decode(bytes.fromhex("c001c100080000010000ff0200"))
    with pytest.raises(_core.AxdrError):
        _core.DataNotification(1, None, b"\x12")  # not one A-XDR value
    ciphered = _core.cipher_apdu(
        apdu,
        security_control=0x30,
        system_title=b"SERVER01",
        invocation_counter=5,
        ek=EK,
        ak=AK,
        general=True,
    )
    assert _core.ciphering_sender(ciphered) == b"SERVER01"
    with pytest.raises(_core.ApduError, match="general-ciphering"):
        _core.ciphering_sender(apdu)
