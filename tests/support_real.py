"""Real-meter recordings (``tests/vectors/real/*.json``) and the product's paths to read them.

A recording holds the bytes a real meter sent, as its public source published them
(``stream``, hex; ``chunks`` when the source logged the reads one by one), with the
addresses, the keys its owner published and the values the source states
(``expect``). See ``tests/vectors/real/README.md``.

The bytes go through the product's own code: the HDLC link (``_core.HdlcLink``, the
framer inside it, segmented UI frames joined), the general-block-transfer joiner and
the push listener's sans-IO check (:meth:`PushListener.accept`: decipher,
authenticate, decode). M-Bus, which the product does not speak, is unwrapped here
(:func:`mbus_payload`: checksums and stop bytes checked) and only there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.observe import SessionObserver
from smmc_gateway.dlms.push import GbtPushAssembler, MeterKeys, PushEvent, PushListener

REAL = Path(__file__).parent / "vectors" / "real"
PEER = "192.0.2.10"


@dataclass
class Recording:
    name: str
    data: dict[str, Any]

    @property
    def stream(self) -> bytes:
        return bytes.fromhex(self.data["stream"])

    @property
    def chunks(self) -> list[bytes]:
        return [bytes.fromhex(c) for c in self.data.get("chunks", [])]

    @property
    def transport(self) -> str:
        return str(self.data["transport"])

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.data["expect"])

    def keys(self, meter_id: str = "real") -> MeterKeys:
        """The meter as the push listener knows it: with the published keys (an
        encryption-only meter's pushes carry no tag, its authentication key is not
        used: a placeholder stands in for the one its owner did not publish)."""
        keys = self.data.get("keys")
        if not keys:
            return MeterKeys(meter_id)
        ek = bytes.fromhex(keys["ek"])
        ak = bytes.fromhex(keys["ak"]) if "ak" in keys else bytes(16)
        protection = 0x20 if "ak" not in keys else 0x30
        return MeterKeys(meter_id, ek=ek, ak=ak, required_protection=protection)

    def link(self) -> _core.HdlcLink:
        """A client link with the recording's addresses (as a head-end on the HAN
        port would configure it)."""
        a = self.data["addresses"]
        return _core.HdlcLink(
            "client",
            client_address=a["client"],
            server_upper=a["server_upper"],
            server_lower=a["server_lower"],
        )


def recordings(transport: str | None = None) -> list[Recording]:
    found = [Recording(p.stem, json.loads(p.read_text())) for p in sorted(REAL.glob("*.json"))]
    return [r for r in found if transport is None or r.transport == transport]


def by_name(name: str) -> Recording:
    return Recording(name, json.loads((REAL / f"{name}.json").read_text()))


# ---------------------------------------------------------------- transports
@dataclass
class LinkOutcome:
    payloads: list[bytes] = field(default_factory=list)
    """The UI data the link delivered (segments joined, LLC header dropped)."""
    errors: list[str] = field(default_factory=list)
    """The link's frame errors (garbage skipped, bad FCS), in order."""


def through_link(
    pieces: Iterable[bytes], link: _core.HdlcLink | None = None, recording: Recording | None = None
) -> LinkOutcome:
    """Feed ``pieces`` one by one to a client HDLC link; collect what it delivers."""
    if link is None:
        assert recording is not None
        link = recording.link()
    out = LinkOutcome()
    for piece in pieces:
        link.receive_data(piece, 0.0)
        while (event := link.next_event()) is not None:
            if isinstance(event, _core.LinkUi):
                out.payloads.append(event.data)
            elif isinstance(event, _core.LinkFrameError):
                out.errors.append(event.reason)
            else:
                raise AssertionError(f"unexpected link event {event!r}")
    return out


def mbus_payload(stream: bytes) -> list[bytes]:
    """The user data of consecutive M-Bus long frames (68 L L 68 C A CI STSAP DTSAP
    ... CS 16), checksums checked (test-side: the product does not speak M-Bus)."""
    parts: list[bytes] = []
    i = 0
    while i < len(stream):
        assert stream[i] == 0x68 and stream[i + 3] == 0x68, f"no long frame at {i}"
        length = stream[i + 1]
        assert stream[i + 2] == length, f"length bytes differ at {i}"
        body = stream[i + 4 : i + 4 + length]
        assert sum(body) & 0xFF == stream[i + 4 + length], f"checksum of the frame at {i}"
        assert stream[i + 5 + length] == 0x16, f"stop byte of the frame at {i}"
        parts.append(body[5:])  # C, A, CI, the two transport SAPs
        i += length + 6
    return parts


def listener() -> PushListener:
    """A push listener used sans-IO (never started): :meth:`PushListener.accept`."""

    def nothing(_event: PushEvent) -> None:
        return None

    return PushListener(
        lambda _title, _peer: None, nothing, ic_store=InvocationCounterStore(":memory:")
    )


def accept_all(rec: Recording, apdus: Iterable[bytes]) -> list[PushEvent]:
    """Join GBT blocks and accept every push as the listener would."""
    push = listener()
    keys = rec.keys()
    push.lookup = lambda _title, _peer: keys
    gbt = GbtPushAssembler()
    events = []
    for apdu in apdus:
        whole = gbt.feed(apdu)
        if whole is not None:
            events.append(push.accept(whole, PEER))
    assert not gbt.pending, "general-block-transfer blocks left over"
    return events


def push_apdus(rec: Recording, pieces: Iterable[bytes] | None = None) -> list[bytes]:
    """The APDUs the meter pushed, through the product's link (HDLC) or unwrapped
    (M-Bus, test-side)."""
    if rec.transport == "mbus":
        return [b"".join(mbus_payload(rec.stream))]
    if rec.transport == "raw":  # the source logged the APDU alone
        return [b"".join(pieces) if pieces is not None else rec.stream]
    if rec.transport == "wrapper":  # TCP: the product's wrapper framer
        framer = _core.WrapperFramer()
        out = []
        for piece in pieces if pieces is not None else [rec.stream]:
            framer.feed(piece)
            while (frame := framer.next_frame()) is not None:
                out.append(frame[2])
        return out
    return through_link(pieces if pieces is not None else [rec.stream], recording=rec).payloads


# ---------------------------------------------------------------- values
def obis(raw: str) -> str:
    b = bytes.fromhex(raw)
    return ".".join(str(x) for x in b)


def _is_obis(v: dict[str, Any]) -> bool:
    return v.get("type") == "octet-string" and len(str(v.get("value", ""))) == 12


def _scaled(value: dict[str, Any], scaler_unit: dict[str, Any] | None) -> Any:
    raw = value.get("value")
    if scaler_unit is None or not isinstance(raw, int):
        return _plain(value)
    scaler = int(scaler_unit["value"][0]["value"])
    return Decimal(raw).scaleb(scaler)


def _plain(value: dict[str, Any]) -> Any:
    if value.get("type") in ("visible-string", "utf8-string"):
        return value["value"]
    if value.get("type") == "octet-string" and "datetime" not in value:
        raw = bytes.fromhex(value["value"])
        if raw and all(0x20 <= b < 0x7F for b in raw):
            return raw.decode("ascii")
    if "datetime" in value:
        return value["datetime"]
    return value.get("value")


def _is_scaler_unit(v: dict[str, Any]) -> bool:
    return (
        v.get("type") == "structure"
        and len(v["value"]) == 2
        and v["value"][0].get("type") == "integer"
        and v["value"][1].get("type") == "enum"
    )


def readings(body: dict[str, Any]) -> dict[str, Any]:
    """OBIS -> value (scaled where a scaler-unit is given) for the layouts meters push:
    structures (OBIS, value[, scaler-unit]) in an array or structure, a flat sequence
    OBIS, value[, scaler-unit], ..., or capture-object descriptors followed by the
    values (Landis+Gyr)."""
    out: dict[str, Any] = {}
    items = body["value"]
    if (
        items
        and items[0].get("type") == "array"
        and all(d.get("type") == "structure" and len(d["value"]) == 4 for d in items[0]["value"])
    ):
        # The first descriptor names the push setup's object list: the array itself.
        descriptors = items[0]["value"]
        for d, v in zip(descriptors, items, strict=True):
            out[obis(d["value"][1]["value"])] = _plain(v)
        return out
    i = 0
    while i < len(items):
        item = items[i]
        if item.get("type") == "structure" and item["value"] and _is_obis(item["value"][0]):
            parts = item["value"]
            su = parts[2] if len(parts) > 2 and _is_scaler_unit(parts[2]) else None
            out[obis(parts[0]["value"])] = _scaled(parts[1], su)
            i += 1
        elif _is_obis(item) and i + 1 < len(items):
            nxt = items[i + 2] if i + 2 < len(items) else None
            su = nxt if nxt is not None and _is_scaler_unit(nxt) else None
            out[obis(item["value"])] = _scaled(items[i + 1], su)
            i += 3 if su is not None else 2
        else:
            i += 1
    return out


def values_in_order(body: dict[str, Any]) -> Iterator[Any]:
    """The numbers of a flat structure (OBIS codes and date-times left out)."""
    for v in body["value"]:
        if isinstance(v.get("value"), int) and v.get("type") != "octet-string":
            yield v["value"]


# ---------------------------------------------------------------- over TCP
class SeenQuirks:
    """A session observer that keeps the (meter, quirk) pairs it is told of."""

    def __init__(self) -> None:
        self.quirks: list[tuple[str, str]] = []

    def protocol_quirk(self, meter: str, quirk: str) -> None:
        self.quirks.append((meter, quirk))

    def association_recovery(self, meter: str, cause: str) -> None:
        raise AssertionError(f"no association here ({meter}, {cause})")


async def pushed_over_tcp(
    keys: MeterKeys,
    pieces: Iterable[bytes],
    expected: int,
    observer: SessionObserver | None = None,
) -> tuple[list[PushEvent], PushListener]:
    """Send ``pieces`` (wrapper frames cut anywhere) to a real PushListener over TCP
    whose every push comes from ``keys``' meter; the ``expected`` events it delivers
    (5 s at most) and the listener (its counters)."""
    got: list[PushEvent] = []
    arrived = asyncio.Event()

    def on_event(event: PushEvent) -> None:
        got.append(event)
        arrived.set()

    async with PushListener(
        lambda _t, _p: keys,
        on_event,
        port=0,
        ic_store=InvocationCounterStore(":memory:"),
        observer=observer,
    ) as push:
        _reader, writer = await asyncio.open_connection("127.0.0.1", push.port)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        async with asyncio.timeout(5):
            while len(got) < expected:
                arrived.clear()
                await arrived.wait()
        writer.close()
    return got, push
