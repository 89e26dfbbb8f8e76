"""Image transfer bookkeeping: blocks, missing blocks, verify, activate."""

from datetime import UTC, datetime

from smmc_gateway.cosem.values import (
    as_int,
    double_long_unsigned,
    enum,
    integer,
    octet_string,
    structure,
)
from smmc_gateway.simulator import MeterOptions, SimulatedMeter

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
IT = "0.0.44.0.0.255"
IMAGE = bytes(range(256)) * 3 + b"tail"  # 772 bytes -> 5 blocks of 192 (last 4)


def initiate(meter: SimulatedMeter, ident: bytes, size: int) -> str:
    params = structure([octet_string(ident), double_long_unsigned(size)])
    return meter.action(18, IT, 1, params, now=NOW, client=1)[0]


def block(meter: SimulatedMeter, number: int, data: bytes) -> str:
    params = structure([double_long_unsigned(number), octet_string(data)])
    return meter.action(18, IT, 2, params, now=NOW, client=1)[0]


def chunks() -> list[bytes]:
    return [IMAGE[i : i + 192] for i in range(0, len(IMAGE), 192)]


def test_transfer_verify_activate() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    assert meter.get(18, IT, 2, now=NOW, client=1) == double_long_unsigned(192)
    assert meter.action(18, IT, 3, integer(0), now=NOW, client=1)[0] == "other-reason"
    assert initiate(meter, b"FW-2.0.0", len(IMAGE)) == "success"
    parts = chunks()
    assert len(parts) == 5
    for n in (0, 1, 3):
        assert block(meter, n, parts[n]) == "success"
    bits = meter.get(18, IT, 3, now=NOW, client=1)
    assert bits == {"type": "bit-string", "value": "d0", "bits": 5}  # 11010
    assert meter.get(18, IT, 4, now=NOW, client=1) == double_long_unsigned(2)
    # incomplete: verify fails, status 4
    assert meter.action(18, IT, 3, integer(0), now=NOW, client=1)[0] == "other-reason"
    assert meter.get(18, IT, 6, now=NOW, client=1) == enum(4)
    assert meter.action(18, IT, 4, integer(0), now=NOW, client=1)[0] == "other-reason"
    # wrong sizes and numbers are refused
    assert block(meter, 2, parts[2][:-1]) == "other-reason"
    assert block(meter, 5, parts[4]) == "other-reason"
    assert block(meter, 4, parts[4] + b"x") == "other-reason"
    # resume: initiating the same image keeps the blocks
    assert initiate(meter, b"FW-2.0.0", len(IMAGE)) == "success"
    assert meter.get(18, IT, 4, now=NOW, client=1) == double_long_unsigned(2)
    for n in (2, 4):
        assert block(meter, n, parts[n]) == "success"
    assert meter.get(18, IT, 4, now=NOW, client=1) == double_long_unsigned(5)
    assert meter.action(18, IT, 3, integer(0), now=NOW, client=1)[0] == "success"
    assert meter.get(18, IT, 6, now=NOW, client=1) == enum(3)
    info = meter.get(18, IT, 7, now=NOW, client=1)
    assert isinstance(info, dict)
    entry = info["value"][0]["value"]
    assert as_int(entry[0]) == len(IMAGE) and entry[1] == octet_string(b"FW-2.0.0")
    assert meter.get(1, "1.0.0.2.0.255", 2, now=NOW, client=1) == octet_string(b"SMMC-SIM-1.0.0")
    assert meter.action(18, IT, 4, integer(0), now=NOW, client=1)[0] == "success"
    assert meter.get(18, IT, 6, now=NOW, client=1) == enum(6)
    assert meter.get(1, "1.0.0.2.0.255", 2, now=NOW, client=1) == octet_string(b"FW-2.0.0")
    # a new image starts from scratch
    assert initiate(meter, b"FW-3", 10) == "success"
    assert meter.get(18, IT, 4, now=NOW, client=1) == double_long_unsigned(0)


def test_verifier_hook_can_reject() -> None:
    seen: list[bytes] = []

    def verifier(ident: bytes, image: bytes) -> bool:
        seen.append(image)
        return image.endswith(b"tail") and ident.startswith(b"FW")

    meter = SimulatedMeter(MeterOptions(history_days=0, image_verifier=verifier), now=NOW)
    assert initiate(meter, b"XX-1", len(IMAGE)) == "success"
    for n, part in enumerate(chunks()):
        assert block(meter, n, part) == "success"
    assert meter.action(18, IT, 3, integer(0), now=NOW, client=1)[0] == "other-reason"
    assert seen == [IMAGE]
    assert meter.get(18, IT, 6, now=NOW, client=1) == enum(4)


def test_transfer_disabled() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    assert meter.set(18, IT, 5, {"type": "boolean", "value": False}, now=NOW, client=1) == "success"
    assert initiate(meter, b"FW", 10) == "temporary-failure"
    assert initiate(meter, b"", 10) == "temporary-failure"


def test_scheduled_activation() -> None:
    from datetime import timedelta

    from smmc_gateway.cosem.values import array

    meter = SimulatedMeter(MeterOptions(history_days=0, time_zone=240), now=NOW)
    assert initiate(meter, b"FW-9", len(IMAGE)) == "success"
    for n, part in enumerate(chunks()):
        assert block(meter, n, part) == "success"
    assert meter.action(18, IT, 3, integer(0), now=NOW, client=1)[0] == "success"
    # activate at 10:30 local (UTC-4) = 14:30 UTC
    when = structure(
        [octet_string(bytes([10, 30, 0, 0])), octet_string(bytes.fromhex("07ea030aff"))]
    )
    sas = "0.0.15.0.2.255"
    assert meter.set(22, sas, 4, array([when]), now=NOW, client=1) == "success"
    meter.tick(NOW + timedelta(hours=2, minutes=29))
    assert meter.get(1, "1.0.0.2.0.255", 2, now=NOW, client=1) == octet_string(b"SMMC-SIM-1.0.0")
    meter.tick(NOW + timedelta(hours=2, minutes=31))
    assert meter.get(18, IT, 6, now=NOW + timedelta(hours=3), client=1) == enum(6)
    assert meter.get(1, "1.0.0.2.0.255", 2, now=NOW + timedelta(hours=3), client=1) == (
        octet_string(b"FW-9")
    )
    bad = structure([octet_string(bytes([25, 0, 0, 0])), octet_string(bytes.fromhex("07ea030aff"))])
    assert meter.set(22, sas, 4, array([bad]), now=NOW, client=1) == "type-unmatched"
