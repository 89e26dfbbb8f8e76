"""A real meter's event-notification (tests/vectors/real/iskraemeco-mx382-event-notification.json).

The last-gasp alarm of an Iskraemeco Mx382 (Dutch DSMR 2.2) meter, as the GXF/OSGP
head-end logged it: one wrapper frame (wPort 103 -> 102) holding an
event-notification-request whose time is flagged 0x09 instead of A-XDR's 0x01. The
gateway takes it through its own paths (wrapper framer, push listener, head-end event)
with the quirk ``event-time-data-tag`` named and counted, and refuses it by that name
for a meter model that is strict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.observe import forget_logged
from smmc_gateway.dlms.push import MeterKeys, PushEvent, PushListener, PushRefused
from smmc_gateway.headend.pushes import EV_PUSH_EVENT, PushRouting
from smmc_gateway.ops.config import load_config
from smmc_gateway.ops.config_model import DEFAULT_QUIRKS, KNOWN_QUIRKS
from smmc_gateway.ops.metrics import GatewayMetrics

from tests.support_real import PEER, SeenQuirks, by_name, push_apdus, pushed_over_tcp
from tests.test_config import BASE, write

REC = by_name("iskraemeco-mx382-event-notification")
QUIRK = "event-time-data-tag"


def _listener(keys: MeterKeys, observer: Any = None) -> PushListener:
    def nothing(_event: PushEvent) -> None:
        return None

    return PushListener(
        lambda _title, _peer: keys,
        nothing,
        port=0,
        ic_store=InvocationCounterStore(":memory:"),
        observer=observer,
    )


def test_the_wrapper_frame_is_framed_as_the_source_logged_it() -> None:
    want = REC.expect["wrapper"]
    assert _core.wrapper_header(REC.stream) == (
        want["version"],
        want["source_wport"],
        want["destination_wport"],
        want["length"],
    )
    [apdu] = push_apdus(REC)
    assert len(apdu) == want["length"]
    assert apdu[0] == REC.expect["apdu_tag"] == 0xC2
    assert apdu[1] == REC.expect["time_presence_flag"] == 0x09
    # byte by byte through the framer: the same APDU
    assert push_apdus(REC, [bytes([b]) for b in REC.stream]) == [apdu]


def test_the_push_listener_takes_it_naming_and_counting_the_quirk() -> None:
    forget_logged()
    seen = SeenQuirks()
    [apdu] = push_apdus(REC)
    event = _listener(MeterKeys("mx382"), seen).accept(apdu, PEER)
    want = REC.expect
    assert event.attribute == (want["class_id"], want["logical_name"], want["attribute_id"])
    assert event.body["type"] == want["value_type"]
    assert bytes.fromhex(event.body["value"]).decode("ascii") == want["equipment_identifier"]
    assert event.meter_time is not None
    # 10:54:38 local, deviation -120 (local = UTC+2, the status says summer time)
    assert event.meter_time.replace(tzinfo=None).isoformat() == want["time"]
    assert event.meter_time.utcoffset().total_seconds() == -60 * want["time_deviation"]
    assert event.meter_time.astimezone(UTC) == datetime(2023, 7, 6, 8, 54, 38, tzinfo=UTC)
    assert not event.ciphered and event.long_invoke_id == 0
    assert seen.quirks == [("mx382", QUIRK)]


def test_the_head_end_event_names_the_attribute() -> None:
    [apdu] = push_apdus(REC)
    event = _listener(MeterKeys("mx382")).accept(apdu, PEER)
    ev = PushRouting.event(event)
    assert ev["name"] == EV_PUSH_EVENT
    assert "attribute 1/128.128.128.128.128.0/2" in ev["reason"]
    assert "4b413650303035303339303231313130" in ev["details"]


def test_a_strict_model_refuses_it_by_the_quirk_s_name() -> None:
    [apdu] = push_apdus(REC)
    push = _listener(MeterKeys("mx382", quirks=()))
    with pytest.raises(PushRefused) as caught:
        push.accept(apdu, PEER)
    assert caught.value.kind == "refused_malformed"
    assert f"the quirk {QUIRK} is not allowed" in str(caught.value)
    # refusing only this quirk is enough
    others = tuple(sorted(DEFAULT_QUIRKS - {QUIRK}))
    with pytest.raises(PushRefused, match=QUIRK):
        _listener(MeterKeys("mx382", quirks=others)).accept(apdu, PEER)


def test_the_standard_form_of_the_same_event_takes_no_quirk() -> None:
    [apdu] = push_apdus(REC)
    seen = SeenQuirks()
    standard = apdu[:1] + b"\x01" + apdu[2:]
    event = _listener(MeterKeys("mx382", quirks=()), seen).accept(standard, PEER)
    assert event.attribute == (1, "128.128.128.128.128.0", 2)
    assert seen.quirks == []


def test_other_time_flags_stay_errors() -> None:
    [apdu] = push_apdus(REC)
    for flag in (0x02, 0x0A, 0xFF):
        with pytest.raises(PushRefused, match=f"0x{flag:02x}"):
            _listener(MeterKeys("mx382")).accept(apdu[:1] + bytes([flag]) + apdu[2:], PEER)


def test_the_quirk_is_known_to_the_configuration_and_the_core_alike() -> None:
    assert {n for n, _d, _on in _core.known_quirks()} == set(KNOWN_QUIRKS)
    assert QUIRK in DEFAULT_QUIRKS


def test_push_routing_gives_each_meter_its_model_s_quirks(tmp_path: Path) -> None:
    body = BASE + (
        '[models.mx382-strict]\nextends = "idis"\nstrict = true\n'
        '[[meters]]\nid = "strict"\nmodel = "mx382-strict"\n'
        'connection = { kind = "tcp", host = "192.0.2.10", port = 4059 }\n'
        '[[meters]]\nid = "generic"\nmodel = "idis"\n'
        'connection = { kind = "tcp", host = "192.0.2.11", port = 4059 }\n'
    )
    cfg = load_config(write(tmp_path, body))
    routing = PushRouting(cfg.meters, models=cfg.models)
    assert routing.keys("strict").quirks == ()
    generic = routing.keys("generic").quirks
    assert generic is not None and QUIRK in generic
    [apdu] = push_apdus(REC)
    with pytest.raises(PushRefused, match=QUIRK):
        _listener(routing.keys("strict")).accept(apdu, PEER)
    assert _listener(routing.keys("generic")).accept(apdu, PEER).attribute is not None


async def test_over_tcp_in_pieces_with_the_gateway_metric() -> None:
    forget_logged()
    metrics = GatewayMetrics(CollectorRegistry())
    stream = REC.stream
    pieces = [stream[i : i + 7] for i in range(0, len(stream), 7)]  # the logged frame, cut
    got, push = await pushed_over_tcp(MeterKeys("mx382"), pieces, 1, metrics)
    assert [e.attribute for e in got] == [(1, "128.128.128.128.128.0", 2)]
    assert push.counters.accepted == 1 and push.counters.refused_malformed == 0
    value = metrics.registry.get_sample_value(
        "smmc_protocol_quirks_total", {"meter": "mx382", "quirk": QUIRK}
    )
    assert value == 1.0


def test_the_mx382_model_names_it_a_last_gasp_outage() -> None:
    """What the source states: the alarm is LAST_GASP, the value the equipment id."""
    from smmc_gateway.cim.event_types import lookup
    from smmc_gateway.models.catalog import shipped_model
    from smmc_gateway.usecases import events as events_uc

    [apdu] = push_apdus(REC)
    event = _listener(MeterKeys("mx382")).accept(apdu, PEER)
    model = shipped_model("iskraemeco-mx382")
    named = events_uc.decode_alarms(event.body, model, {}, "mx382", event.attribute)
    [(name, reason, details)] = named
    assert (name, reason) == ("smmc.alarm.outage", "lastGasp")
    assert REC.expect["source_reading"]["alarms"] == ["LAST_GASP"]
    assert details == "event-notification 1/128.128.128.128.128.0/2: KA6P005039021110"
    assert lookup(name) is not None  # an IEC 61968-9 EndDeviceEventType
    # the generic IDIS model does not know this attribute: the push event only
    assert (
        events_uc.decode_alarms(event.body, shipped_model("idis"), {}, "m", event.attribute) == []
    )
    # the model is proposed from the FLAG id
    assert model.identification.flag_ids == ("ISK",)
    assert model.quirks >= {QUIRK}


def test_a_notification_entry_is_checked_like_the_rest_of_a_model(tmp_path: Path) -> None:
    from tests.test_config import problems

    body = BASE + (
        "[models.x.notifications.a]\n"
        'attribute = [1, "128.128.128.128.128", 2]\nname = "smmc.alarm.nothing"\nwhat = 1\n'
        "[models.x.notifications.b]\n"
        'name = "smmc.alarm.outage"\n'
    )
    got = problems(tmp_path, body)
    assert any(p.startswith("models.x.notifications.a.attribute") for p in got), got
    assert any(p.startswith("models.x.notifications.a.name") and "IEC 61968-9" in p for p in got), (
        got
    )
    assert "models.x.notifications.a.what: unknown key; allowed: attribute, name, reason" in got
    assert "models.x.notifications.b.attribute: is required" in " | ".join(got), got


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=41))
def test_damaged_event_notifications_are_refused_by_name_never_crash(
    noise: bytes, cut: int
) -> None:
    [apdu] = push_apdus(REC)
    for candidate in (apdu[:cut] + noise, b"\xc2\x09" + noise, b"\xc2" + noise):
        try:
            _listener(MeterKeys("mx382")).accept(candidate, PEER)
        except PushRefused as exc:
            assert exc.kind == "refused_malformed" and str(exc)
