"""A Sagemcom XT211 push (tests/vectors/real/sagemcom-xt211-untagged-descriptors.json):
a data-notification whose body items are {attribute descriptor written without data
tags, value}. Not A-XDR and not recognisable from the bytes, so the gateway reads it
so only for a meter whose model names the quirk ``untagged-attribute-descriptors`` (the
shipped ``sagemcom-xt211``); for any other meter the push is refused with a hint that
names the quirk. The values are the source's expected values."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from smmc_gateway import _core
from smmc_gateway.dlms.observe import forget_logged
from smmc_gateway.dlms.push import MeterKeys, PushEvent, PushRefused
from smmc_gateway.headend.pushes import EV_PUSH, PushRouting
from smmc_gateway.models.catalog import shipped_model
from smmc_gateway.ops.config_model import DEFAULT_QUIRKS
from smmc_gateway.ops.metrics import GatewayMetrics

from tests.support_real import PEER, SeenQuirks, by_name, listener, push_apdus, pushed_over_tcp

REC = by_name("sagemcom-xt211-untagged-descriptors")
QUIRK = "untagged-attribute-descriptors"
XT211 = tuple(sorted(shipped_model("sagemcom-xt211").quirks))


def _accept(keys: MeterKeys, apdu: bytes | None = None) -> PushEvent:
    push = listener()
    push.lookup = lambda _title, _peer: keys
    return push.accept(apdu if apdu is not None else push_apdus(REC)[0], PEER)


def _items(event: PushEvent) -> dict[str, tuple[int, int, Any]]:
    """logical name -> (class, attribute, typed value) of each pushed item."""
    out: dict[str, tuple[int, int, Any]] = {}
    for item in event.body["value"][1]["value"]:
        descriptor, value = item["value"]
        class_v, ln_v, attr_v = descriptor["value"]
        ln = ".".join(str(b) for b in bytes.fromhex(ln_v["value"]))
        out[ln] = (class_v["value"], attr_v["value"], value)
    return out


def test_the_xt211_model_reads_every_value_the_source_states() -> None:
    assert QUIRK in XT211 and QUIRK not in DEFAULT_QUIRKS
    event = _accept(MeterKeys("xt211", quirks=XT211))
    want = REC.expect
    assert event.long_invoke_id == want["long_invoke_id"]
    assert event.meter_time is None
    assert event.body["value"][0] == {"type": "enum", "value": 1}
    items = _items(event)
    assert len(items) == want["items"] == 22
    for ln, text in want["strings_by_descriptor"].items():
        assert bytes.fromhex(items[ln][2]["value"]).decode("ascii") == text, ln
    for ln, number in want["numbers_by_descriptor"].items():
        assert Decimal(items[ln][2]["value"]) == Decimal(number), ln
    for ln, (class_id, attribute) in want["descriptors"].items():
        assert items[ln][:2] == (class_id, attribute), ln
    # the body is ordinary data now: it encodes, and the head-end publishes it as JSON
    assert _core.encode(event.body)
    ev = PushRouting.event(event)
    assert ev["name"] == EV_PUSH and "4913794" in ev["details"]


def test_without_the_model_it_is_refused_with_a_hint() -> None:
    for quirks in (None, tuple(sorted(DEFAULT_QUIRKS))):
        with pytest.raises(PushRefused) as caught:
            _accept(MeterKeys("other", quirks=quirks))
        assert caught.value.kind == "refused_malformed"
        text = str(caught.value)
        assert "unknown tag 0x60" in text and QUIRK in text and "sagemcom-xt211" in text


def test_the_xt211_model_still_takes_a_standard_push() -> None:
    """A meter of that model may push an ordinary body too (another push setup)."""
    standard = _core.DataNotification(
        7, None, _core.encode({"type": "long-unsigned", "value": 230})
    ).encode()
    seen = SeenQuirks()
    push = listener()
    push.observer = seen
    push.lookup = lambda _t, _p: MeterKeys("xt211", quirks=XT211)
    event = push.accept(standard, PEER)
    assert event.body == {"type": "long-unsigned", "value": 230}
    assert seen.quirks == []  # no quirk taken for it


def test_a_damaged_push_names_both_readings() -> None:
    [apdu] = push_apdus(REC)
    with pytest.raises(PushRefused, match=f"nor with {QUIRK}"):
        _accept(MeterKeys("xt211", quirks=XT211), apdu[:-2])


async def test_over_tcp_in_wrapper_frames_with_the_metric() -> None:
    forget_logged()
    metrics = GatewayMetrics(CollectorRegistry())
    stream = _core.wrapper_encode(1, 1, push_apdus(REC)[0]) * 2
    pieces = [stream[i : i + 50] for i in range(0, len(stream), 50)]
    keys = MeterKeys("xt211", quirks=XT211)
    got, _push = await pushed_over_tcp(keys, pieces, 2, metrics)
    assert [len(_items(e)) for e in got] == [22, 22]
    value = metrics.registry.get_sample_value(
        "smmc_protocol_quirks_total", {"meter": "xt211", "quirk": QUIRK}
    )
    assert value == 2.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=354))
def test_damaged_pushes_are_refused_by_name_never_crash(noise: bytes, cut: int) -> None:
    """What a hostile or broken sender may push to an XT211 meter's listener: the
    recording cut anywhere and followed by anything, or anything at all."""
    [apdu] = push_apdus(REC)
    for candidate in (apdu[:cut] + noise, b"\x0f" + noise, noise):
        try:
            _accept(MeterKeys("xt211", quirks=XT211), candidate)
        except PushRefused as exc:
            assert exc.kind == "refused_malformed" and str(exc)


def test_decode_names_the_quirk_a_technician_would_need(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`smmc-gateway decode` of the recorded push: not valid (exit 1), the error says it
    reads as 22 untagged-descriptor items and which quirk and model take it."""
    from smmc_gateway.cli import main

    rc = main(["decode", "--json", REC.stream.hex()])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["valid"] is False
    message = doc["layers"][0]["error"]["message"]
    assert "unknown tag 0x60" in message
    assert "22 item(s)" in message and QUIRK in message and "sagemcom-xt211" in message
    # a standard data-notification gets no such hint
    plain = _core.DataNotification(1, None, _core.encode({"type": "null-data", "value": None}))
    rc = main(["decode", "--json", plain.encode().hex()])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and QUIRK not in json.dumps(doc)
