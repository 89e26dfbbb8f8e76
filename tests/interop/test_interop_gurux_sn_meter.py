"""Interoperability of short-name referencing: our client session against a
meter built on the Gurux DLMS server in SN mode (third party; see
gurux_sn_meter.py for its shims), over the wrapper on TCP.

Covered: ``referencing="sn"`` and ``"auto"`` (Gurux refuses the LN context;
the session associates again with SN on the same connection), the
Association SN object list giving the base names, Read of a register's value
and scaler/unit, a device id and the clock, and a Read answered in
data-block-results (a small client PDU size). Not covered against this peer:
Write and methods (Gurux 1.0.x's SN write handler fails inside Gurux, as its
LN SET does); they are proven against the Gurux client instead
(test_interop_gurux_sn.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from smmc_gateway import _core
from smmc_gateway.dlms import sn
from smmc_gateway.dlms.session import ClientSession, ProtocolError, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport

from tests.interop.gurux_meter import serving
from tests.interop.gurux_sn_meter import (
    ENERGY,
    SERIAL,
    SHORT_NAMES,
    GuruxSnMeter,
)


@pytest.fixture(autouse=True)
def _forget_short_names() -> Iterator[None]:
    """Short names and learnt referencing are kept per meter id in the process:
    none leaks into other tests (the simulator's meter ids repeat)."""
    sn.forget_short_names()
    yield
    sn.forget_short_names()


def session(port: int, referencing: str, **kw: object) -> ClientSession:
    settings = SessionSettings(client_sap=16, referencing=referencing, release=False, **kw)  # type: ignore[arg-type]
    return ClientSession(WrapperTransport.tcp("127.0.0.1", port, client_sap=16), settings)


@pytest.mark.parametrize("referencing", ["sn", "auto"])
async def test_our_client_reads_a_gurux_sn_meter(referencing: str) -> None:
    sn.forget_short_names()
    async with serving(GuruxSnMeter()) as served, session(served.port, referencing) as s:
        assert s.referencing == "sn" and "read" in s.conformance
        names = {(c, ".".join(map(str, ln))): b for b, c, _v, ln in s._driver.assoc.short_names()}
        assert SHORT_NAMES.items() <= names.items()
        assert _core.decode(await s.get_raw(3, "1.0.1.8.0.255", 2))["value"] == ENERGY
        scaler_unit = await s.get(3, "1.0.1.8.0.255", 3)
        assert [v["value"] for v in scaler_unit["value"]] == [0, 30]
        assert bytes.fromhex((await s.get(1, "0.0.96.1.0.255", 2))["value"]) == SERIAL
        clock = await s.get(8, "0.0.1.0.0.255", 2)
        assert clock["datetime"].startswith("2024-03-01T00:00:00")
    requests = [data for way, data in served.wire if way == "<<"]
    if referencing == "auto":
        assert requests[0][8:9] == b"\x60" and requests[0][19:21] == b"\x01\x01", "LN AARQ first"
        assert requests[1][19:21] == b"\x01\x02", "then the SN AARQ"
    assert any(r[8:] == bytes.fromhex("050102 3008") for r in requests), "Read of 0x3008"


async def test_gurux_sn_blocks_cut_short_are_refused_by_name() -> None:
    """Gurux 1.0.x's SN server answers a Read too long for the client with one
    data-block-result marked last that holds only the value's header
    (``09 82 01 2C``, 300 bytes announced, none sent): the session refuses it,
    naming the reassembled answer, and takes nothing."""
    sn.forget_short_names()
    async with serving(GuruxSnMeter()) as served, session(served.port, "sn", max_pdu_size=128) as s:
        with pytest.raises(ProtocolError, match="reassembled Read answer"):
            await s.get_raw(1, "0.0.96.1.1.255", 2)
        assert _core.decode(await s.get_raw(3, "1.0.1.8.0.255", 2))["value"] == ENERGY
    answers = [d[8:] for way, d in served.wire if way == ">>"]
    assert bytes.fromhex("0c010201000104 0982012c") in answers
