"""Tolerant reception through a client session: every quirk of issue 10 against a
peer that sends the quirky bytes, tolerated (the value taken, counted, logged once
per meter and quirk) and refused (strict: an error naming the quirk).

The bytes: the clock read with 18 bytes after the value (the embedded C server of
the issue), the HLS-GMAC AARE whose responding-authentication-value field has an
outer length short of its inner value (the issue's Python server; made here by a
server machine whose AARE is altered so, no recording was published), the
Iskraemeco SN meter's AARE whose InitiateResponse is one byte longer than its octet
string (OpenMUC jDLMS HdlcFrameTest.decode3), and the Landis+Gyr AARE rejecting
without user-information (tests/vectors/interop/landis-gyr-aare-rejected.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms import observe
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import (
    AssociationRefused,
    ClientSession,
    ProtocolError,
    Security,
    SessionSettings,
)
from smmc_gateway.ops.metrics import GatewayMetrics

from tests.scripted_meter import AARE_ACCEPTED, CLOCK_DATA, RLRE, ScriptedMeter, get_response
from tests.test_stale_association import Recorder

CLOCK = (8, "0.0.1.0.0.255", 2)
JUNK18 = bytes(range(18))
STRICT = frozenset[str]()
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT_ST, SERVER_ST = b"SMMCTEST", bytes.fromhex("4D4D4D0000BC614E")
ISKRA_SN_AARE = bytes.fromhex(
    "6128A109060760857405080102A203020100A305A103020100BE0F040D0800065F1F04001802200960FA00"
)
LANDIS = json.loads(
    (Path(__file__).parent / "vectors" / "interop" / "landis-gyr-aare-rejected.json").read_text()
)
LANDIS_AARE = bytes.fromhex(LANDIS["exchanges"][0]["response_apdu"])


def settings(quirks: frozenset[str] | None = None, **kw: object) -> SessionSettings:
    extra = {} if quirks is None else {"quirks": quirks}
    return SessionSettings(client_sap=16, response_timeout=0.5, **extra, **kw)  # type: ignore[arg-type]


def padded_clock(apdu: bytes, _connection: int) -> list[bytes]:
    if apdu[0] == 0x60:
        return [AARE_ACCEPTED]
    return [RLRE] if apdu[0] == 0x62 else [get_response(apdu, CLOCK_DATA, JUNK18)]


async def test_trailing_bytes_after_the_clock_value_are_taken_counted_and_logged_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    observe.forget_logged()
    metrics = GatewayMetrics()
    for _ in range(2):
        async with ClientSession(
            ScriptedMeter(padded_clock), settings(), meter_id="c1", observer=metrics
        ) as s:
            assert await s.get_raw(*CLOCK) == CLOCK_DATA
            assert await s.get_raw(*CLOCK) == CLOCK_DATA
    text = metrics.exposition().decode()
    assert 'smmc_protocol_quirks_total{meter="c1",quirk="trailing-bytes"} 4.0' in text
    out = capsys.readouterr().out
    assert out.count("protocol_quirk_tolerated") == 1
    assert "18 byte(s) after the complete get-response-normal" in out


async def test_trailing_bytes_refused_when_strict_or_refused() -> None:
    for quirks in (STRICT, frozenset({"acse-field-length"})):
        seen = Recorder()
        async with ClientSession(
            ScriptedMeter(padded_clock), settings(quirks), meter_id="c2", observer=seen
        ) as s:
            with pytest.raises(ProtocolError, match="the quirk trailing-bytes is not allowed"):
                await s.get_raw(*CLOCK)
        assert seen.quirks == []


class CoreMeter:
    """A server association machine as the peer, its AARE altered by ``alter``."""

    def __init__(self, alter: bytes) -> None:
        cfg = _core.AssociationConfig(
            authentication="hls-gmac", system_title=SERVER_ST, ek=EK, ak=AK, security_control=0x30
        )
        self.server = _core.ServerAssociation(cfg)
        self.server.set_challenge(bytes(range(16)))
        self.alter = alter
        self.next_counter = 1

    def __call__(self, apdu: bytes, _connection: int) -> list[bytes]:
        self.server.receive_data(apdu, 0.0)
        for e in self.server.events():
            if isinstance(e, _core.NeedCounters):
                self.server.grant_counters(self.next_counter, 100)
                self.next_counter += 100
            elif isinstance(e, _core.Request):
                self.server.respond_get(e.id, [CLOCK_DATA])
        out = self.server.data_to_send()
        for e in self.server.events():  # counters asked for the answer just queued
            if isinstance(e, _core.NeedCounters):
                self.server.grant_counters(self.next_counter, 100)
                self.next_counter += 100
        out += self.server.data_to_send()
        return [self._alter(a) for a in out]

    def _alter(self, apdu: bytes) -> bytes:
        if apdu[0] != 0x61:
            return apdu
        good = bytes.fromhex("AA128010")
        assert good in apdu, apdu.hex()
        return apdu.replace(good, self.alter, 1)


def hls() -> Security:
    return Security.hls_gmac(
        system_title=CLIENT_ST,
        ek=EK,
        ak=AK,
        ic_store=InvocationCounterStore(":memory:"),
        ic_scope="h",
    )


async def test_hls_gmac_aare_with_a_short_outer_length_associates() -> None:
    seen = Recorder()
    meter = ScriptedMeter(CoreMeter(bytes.fromhex("AA108010")))
    async with ClientSession(meter, settings(security=hls()), meter_id="h1", observer=seen) as s:
        assert s.ciphered and s.associated
        assert await s.get_raw(*CLOCK) == CLOCK_DATA
    assert seen.quirks == [("h1", "acse-field-length")]


async def test_hls_gmac_aare_with_a_short_outer_length_refused_when_strict() -> None:
    meter = ScriptedMeter(CoreMeter(bytes.fromhex("AA108010")))
    with pytest.raises(ProtocolError, match="acse-field-length is not allowed"):
        await ClientSession(meter, settings(STRICT, security=hls()), meter_id="h2").open()


async def test_the_unaltered_hls_gmac_aare_takes_no_quirk() -> None:
    seen = Recorder()
    meter = ScriptedMeter(CoreMeter(bytes.fromhex("AA128010")))
    async with ClientSession(
        meter, settings(STRICT, security=hls()), meter_id="h3", observer=seen
    ) as s:
        assert await s.get_raw(*CLOCK) == CLOCK_DATA
    assert seen.quirks == []


def iskra(apdu: bytes, _connection: int) -> list[bytes]:
    return [ISKRA_SN_AARE] if apdu[0] == 0x60 else [RLRE]


async def test_the_sn_meters_aare_initiate_response_one_byte_long() -> None:
    seen = Recorder()
    async with ClientSession(ScriptedMeter(iskra), settings(), meter_id="i1", observer=seen) as s:
        assert s.max_pdu_size == 0x0960
    assert seen.quirks == [("i1", "initiate-response-length")]
    with pytest.raises(ProtocolError, match="initiate-response-length is not allowed"):
        await ClientSession(ScriptedMeter(iskra), settings(STRICT), meter_id="i2").open()


def landis(apdu: bytes, _connection: int) -> list[bytes]:
    return [LANDIS_AARE] if apdu[0] == 0x60 else [RLRE]


async def test_a_rejection_without_user_information() -> None:
    seen = Recorder()
    lls = Security.lls(b"wrong")
    with pytest.raises(AssociationRefused, match="authentication-failure") as info:
        await ClientSession(
            ScriptedMeter(landis), settings(security=lls), meter_id="l1", observer=seen
        ).open()
    assert info.value.diagnostic == "authentication-failure"
    assert seen.quirks == [("l1", "rejection-without-user-information")]
    with pytest.raises(ProtocolError, match="rejection-without-user-information is not allowed"):
        await ClientSession(ScriptedMeter(landis), settings(STRICT, security=lls)).open()
