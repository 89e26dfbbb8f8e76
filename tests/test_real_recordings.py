"""Frames recorded from real meters (tests/vectors/real) decode to what their sources state.

Every recording goes through the product's own paths (see ``tests/support_real.py``):
the client HDLC link (framer, segmented UI frames joined, LLC dropped), the
general-block-transfer joiner, the push listener's decipher/authenticate/decode with
the keys the owners published, and the head-end's push event; over TCP in wrapper
frames through a real :class:`PushListener`. The values compared are the sources'
(their expected-value files or the issue text), copied into each recording's
``expect``. Provenance: ``tests/vectors/real/README.md`` (checked against the files).
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.push import MeterKeys, PushEvent, PushListener, PushRefused
from smmc_gateway.headend.pushes import EV_PUSH, PushRouting

from tests.support_real import (
    PEER,
    REAL,
    Recording,
    accept_all,
    by_name,
    listener,
    obis,
    push_apdus,
    pushed_over_tcp,
    readings,
    recordings,
    through_link,
    values_in_order,
)

DECODING = [r for r in recordings() if "numbers" in r.expect or "values_in_order" in r.expect]


def _local(value: Any) -> str:
    """A date-time (datetime or ISO text) as naive local ISO seconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    return str(value)[:19]


def _plain_first(body: dict[str, Any]) -> str:
    return str(body["value"][0]["value"])


def _security_control(apdu: bytes) -> int:
    """The security control byte of a general-glo-ciphering APDU (DB, title, length)."""
    assert apdu[0] == 0xDB
    at = 2 + apdu[1]
    first = apdu[at]
    at += 1 + (first & 0x7F if first & 0x80 else 0)
    return apdu[at]


def _joined(rec: Recording) -> list[bytes]:
    """The pushed APDUs with GBT blocks joined (to look at the ciphered header)."""
    from smmc_gateway.dlms.push import GbtPushAssembler

    gbt = GbtPushAssembler()
    return [w for a in push_apdus(rec) if (w := gbt.feed(a)) is not None]


# ---------------------------------------------------------------- the collection
def test_the_collection_reaches_five_manufacturers_and_the_kinds_the_issue_lists() -> None:
    recs = recordings()
    makers = {r.data["manufacturer"] for r in recs}
    assert len(makers) >= 5, makers
    kinds = " | ".join(k for r in recs for k in r.data["kinds"]).lower()
    for kind in (
        "push data-notification",
        "segmented hdlc",
        "gbt push",
        "encrypt",
        "in pieces",
        "behind garbage",
        "general-glo-ciphering",
        "event-notification",
    ):
        assert kind in kinds, f"no recording of kind {kind!r}"


@pytest.mark.parametrize("rec", recordings(), ids=lambda r: r.name)
def test_every_recording_names_its_source_and_is_listed_in_the_readme(rec: Recording) -> None:
    src = rec.data["source"]
    assert src["url"].startswith("https://github.com/")
    if "/blob/" in src["url"]:  # a file: pinned to the commit the hex was taken from
        assert src["commit"] in src["url"] and len(src["commit"]) == 40
    for key in ("manufacturer", "model", "kinds", "description", "expect"):
        assert rec.data[key], key
    readme = (REAL / "README.md").read_text()
    assert f"`{rec.name}.json`" in readme
    assert src["url"] in readme


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("rec", DECODING, ids=lambda r: r.name)
def test_recording_decodes_to_the_values_its_source_states(rec: Recording) -> None:
    want = rec.expect
    apdus = push_apdus(rec)
    if "frames" in want:  # segmented HDLC: the link joined them into one
        assert len(apdus) == 1
    if "blocks" in want:
        assert len(apdus) == want["blocks"]
        assert all(a[0] == 0xE0 for a in apdus)
    [event] = accept_all(rec, apdus)
    got = readings(event.body)
    for code, value in want.get("numbers", {}).items():
        assert code in got, f"{code} missing from {sorted(got)}"
        assert Decimal(str(got[code])) == Decimal(str(value)), code
    for code, value in want.get("strings", {}).items():
        assert got[code] == value, code
    if "list_version" in want:
        assert _plain_first(event.body) == want["list_version"]
    if "items" in want:
        assert len(event.body["value"]) == want["items"]
    if "long_invoke_id" in want:
        assert event.long_invoke_id == want["long_invoke_id"]
    if "clock" in want:
        stamps = {_local(event.meter_time)} | {
            _local(v) for v in got.values() if isinstance(v, str) and v[:2] == "20"
        }
        assert want["clock"] in stamps
    if "values_in_order" in want:
        assert list(values_in_order(event.body)) == want["values_in_order"]
    if "meter_number" in want:
        last = event.body["value"][-1]
        assert bytes.fromhex(last["value"]).decode() == want["meter_number"]
    if "system_title" in want:
        assert event.ciphered
        assert event.system_title == bytes.fromhex(want["system_title"])
        [whole] = _joined(rec) if rec.transport == "hdlc" else apdus
        assert _security_control(whole) == want["security_control"]
    if "invocation_counter" in want:
        assert event.invocation_counter == want["invocation_counter"]
    # The head-end turns it into one event whose details are the whole body, as JSON.
    ev = PushRouting.event(event)
    assert ev["name"] == EV_PUSH
    assert json.loads(ev["details"])


def test_landis_gyr_cyprus_notification_time_and_clock_value_differ_by_two_seconds() -> None:
    """The notification's date-time (18:46:02) and the clock object's value
    (18:46:04, the value the source lists for 0.0.1.0.0.255) are both in the push."""
    rec = by_name("landis-gyr-e450-gbt-push")
    [event] = accept_all(rec, push_apdus(rec))
    assert _local(event.meter_time) == "2026-06-08T18:46:02"
    assert readings(event.body)["0.0.1.0.0.255"] == "2026-06-08T18:46:04"


def test_iskra_and_kaifa_deviation_is_read_as_utc_plus_two() -> None:
    """Deviation 0xFF88 (-120 min: local = UTC + 2 h, summer time in Slovenia and
    Austria) becomes +02:00; the Netz NÖ document prints the raw deviation (-02:00)."""
    for name in ("iskraemeco-am550-segmented", "kaifa-ma309m-netz-noe-encrypt-only"):
        rec = by_name(name)
        [event] = accept_all(rec, push_apdus(rec))
        assert event.meter_time is not None
        assert event.meter_time.utcoffset() is not None
        assert event.meter_time.utcoffset().total_seconds() == 7200, name  # type: ignore[union-attr]


# ---------------------------------------------------------------- security is not bypassed
def test_a_ciphered_recording_with_another_key_is_refused() -> None:
    rec = by_name("kamstrup-omnipower-glo-ciphered")
    [apdu] = push_apdus(rec)
    push = listener()
    push.lookup = lambda _t, _p: MeterKeys("k", ek=bytes(16), ak=bytes(16))
    with pytest.raises(PushRefused) as info:
        push.accept(apdu, PEER)
    assert info.value.kind == "refused_security"


def test_a_flipped_ciphertext_byte_fails_authentication() -> None:
    rec = by_name("landis-gyr-e450-gbt-glo-ciphered")
    [whole] = _joined(rec)
    bad = bytearray(whole)
    bad[40] ^= 0x01
    push = listener()
    push.lookup = lambda _t, _p: rec.keys()
    with pytest.raises(PushRefused) as info:
        push.accept(bytes(bad), PEER)
    assert info.value.kind == "refused_security"


def test_encrypt_only_push_needs_the_meters_consent() -> None:
    """The Kaifa push (SC 0x20, no tag) is refused from a meter that must
    authenticate its pushes (the default), accepted where push_protection allows it."""
    rec = by_name("kaifa-ma309m-netz-noe-encrypt-only")
    [apdu] = push_apdus(rec)
    strict = MeterKeys("k", ek=rec.keys().ek, ak=bytes(16))
    push = listener()
    push.lookup = lambda _t, _p: strict
    with pytest.raises(PushRefused, match=r"0x20.*required protection 0x30") as info:
        push.accept(apdu, PEER)
    assert info.value.kind == "refused_security"
    [event] = accept_all(rec, [apdu])
    assert event.invocation_counter == 0x23


def test_a_replayed_recording_is_refused() -> None:
    rec = by_name("kamstrup-omnipower-glo-ciphered")
    [apdu] = push_apdus(rec)
    push = listener()
    push.lookup = lambda _t, _p: rec.keys()
    push.accept(apdu, PEER)
    with pytest.raises(PushRefused) as info:
        push.accept(apdu, PEER)
    assert info.value.kind == "refused_security"


# ---------------------------------------------------------------- garbage and corruption
def test_aidon_line_ending_garbage_frames_the_good_frame_and_names_the_rest() -> None:
    """A tty that turned 0A into 0D 0A: the short frame (no 0A in it) is framed, the
    long one is not (its length and FCS no longer fit) and the link says so; with
    the line ending undone the long frame checks and decodes to the source's values."""
    rec = by_name("aidon-han-line-ending-garbage")
    out = through_link([rec.stream], recording=rec)
    assert len(out.payloads) == rec.expect["good_frames"]
    [event] = accept_all(rec, out.payloads)
    assert readings(event.body)["1.0.1.7.0.255"] == rec.expect["list1_active_power_w"]
    assert out.errors and "garbage" in out.errors[0]
    start = rec.stream.index(bytes.fromhex("7EA10B"))
    end = rec.stream.index(b"\x7e\r\n", start + 1) + 1
    repaired = rec.stream[start:end].replace(b"\r\n", b"\n")
    fixed = through_link([repaired], recording=rec)
    assert fixed.errors == []
    [event] = accept_all(rec, fixed.payloads)
    got = readings(event.body)
    for code, value in rec.expect["repaired_strings"].items():
        assert got[code] == value


def test_aidon_reads_as_logged_frame_as_three_frames_and_hold_the_partial_one() -> None:
    rec = by_name("aidon-6525-han-reads-in-pieces")
    link = rec.link()
    out = through_link(rec.chunks, link=link)
    assert len(out.payloads) == rec.expect["good_frames"]
    events = accept_all(rec, out.payloads)
    assert [readings(e.body)["1.0.1.7.0.255"] for e in events] == rec.expect["list1_active_power_w"]
    # Skipped and named: the tail of a frame without its opening flag, then the
    # 0D 0A after each of the three frames.
    assert len(out.errors) == 4 and all("garbage" in e for e in out.errors)
    repaired = b"\x7e" + rec.chunks[0].replace(b"\r\n", b"\n")[:-1]
    # The tail of the log (7E A1 0B 41 08 83 13 FA 7C E6 E7) is half a frame: held,
    # not reported; the rest of a frame with that header completes it.
    tail = b"".join(rec.chunks[-3:])
    assert repaired.startswith(tail)
    rest = through_link([repaired[len(tail) :]], link=link)
    assert rest.errors == [] and len(rest.payloads) == 1
    first = through_link([repaired], recording=rec)
    assert first.payloads == rest.payloads
    assert first.errors == []
    [event] = accept_all(rec, first.payloads)
    got = readings(event.body)
    want = rec.expect["repaired_first"]
    for code, value in want["strings"].items():
        assert got[code] == value
    for code, value in want["numbers"].items():
        assert Decimal(str(got[code])) == Decimal(str(value)), code


@pytest.mark.parametrize("rec", recordings("hdlc"), ids=lambda r: r.name)
def test_byte_by_byte_and_behind_garbage_frames_the_same(rec: Recording) -> None:
    whole = through_link([rec.stream], recording=rec)
    single = through_link([bytes([b]) for b in rec.stream], recording=rec)
    assert single.payloads == whole.payloads
    noise = bytes([0x7E, 0x7E, 0x00, 0xA0, 0x7E, 0x7E]) + rec.stream[: len(rec.stream) // 3]
    behind = through_link([noise, b"\x7e\x7e", rec.stream], recording=rec)
    assert behind.payloads[-len(whole.payloads) :] == whole.payloads
    assert behind.errors, "the garbage was skipped silently"


# ---------------------------------------------------------------- the listener over TCP
def _wrapped(apdus: list[bytes], seed: int) -> list[bytes]:
    stream = b"".join(_core.wrapper_encode(1, 1, a) for a in apdus)
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(stream)), k=min(7, len(stream) - 1)))
    return [stream[i:j] for i, j in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


@pytest.mark.parametrize("rec", DECODING, ids=lambda r: r.name)
async def test_the_push_listener_takes_the_recording_in_wrapper_frames_in_pieces(
    rec: Recording,
) -> None:
    apdus = push_apdus(rec)
    [want] = accept_all(rec, apdus)
    got, push = await pushed_over_tcp(rec.keys(), _wrapped(apdus, seed=len(rec.stream)), 1)
    assert [e.body for e in got] == [want.body]
    assert push.counters.accepted == 1 and push.counters.refused_malformed == 0


async def test_garbage_before_a_wrapper_frame_is_refused_by_name() -> None:
    """The wrapper has no flags to resynchronise on: a connection that starts with
    garbage is closed and counted as malformed (not guessed at)."""
    rec = by_name("kamstrup-omnipower-glo-ciphered")
    [apdu] = push_apdus(rec)
    closed: list[str] = []
    keys = rec.keys()
    async with PushListener(
        lambda _t, _p: keys, lambda _e: None, port=0, on_close=closed.append
    ) as push:
        reader, writer = await asyncio.open_connection("127.0.0.1", push.port)
        writer.write(b"\x7e\x7e\x00\x13" + _core.wrapper_encode(1, 1, apdu))
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
    assert closed == ["malformed"]
    assert push.counters.refused_malformed == 1 and push.counters.accepted == 0


def test_obis_helper() -> None:
    assert obis("0100010800ff") == "1.0.1.8.0.255"


def test_push_event_details_stay_valid_json_when_a_body_is_cut() -> None:
    """A push body too long for an event's details is cut at whole elements (the
    reason says how many were kept); a real push fits whole."""
    from smmc_gateway.headend.pushes import push_details

    rec = by_name("aidon-3phase-no-han")
    [event] = accept_all(rec, push_apdus(rec))
    text, cut = push_details(event.body)
    assert cut == "" and len(json.loads(text)) == 27
    text, cut = push_details(event.body, limit=400)
    assert 0 < len(json.loads(text)) < 27 and len(text) <= 400
    assert cut == f"{len(json.loads(text))} of 27 elements"
    big = {"type": "octet-string", "value": "ab" * 10_000}
    text, cut = push_details(big)
    assert json.loads(text) is None and cut.startswith("nothing")
    ev = PushRouting.event(
        PushEvent(**{**event.__dict__, "body": {"type": "array", "value": [event.body] * 40}})
    )
    assert json.loads(ev["details"]) and "; details cut to" in ev["reason"]
