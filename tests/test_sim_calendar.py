"""Activity calendar drives the active tariff; passive activation; security
setup key transfer; Association LN methods."""

from datetime import UTC, datetime, timedelta

from smmc_gateway.cosem.datetime import from_utc
from smmc_gateway.cosem.values import (
    array,
    enum,
    integer,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.objects.security import SecurityCredentials

TUESDAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CAL = "0.0.13.0.0.255"
TARIFF = "0.0.96.14.0.255"


def tariff(meter: SimulatedMeter, now: datetime) -> object:
    return meter.get(1, TARIFF, 2, now=now, client=1)


def test_tariff_follows_calendar_in_local_time() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0, time_zone=240), now=TUESDAY)
    # 12:00 UTC = 08:00 local (UTC-4): T2 (07-18)
    assert tariff(meter, TUESDAY) == unsigned(2)
    assert tariff(meter, TUESDAY + timedelta(hours=11)) == unsigned(3)  # 19:00 local
    assert tariff(meter, TUESDAY + timedelta(hours=16)) == unsigned(1)  # 00:00 Wed local
    saturday = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)
    assert tariff(meter, saturday) == unsigned(1)  # weekend day profile


def flat_calendar(selector: int) -> list[dict[str, object]]:
    action = structure(
        [
            octet_string(bytes([0, 0, 0, 0xFF])),
            octet_string(bytes([0, 0, 10, 0, 100, 255])),
            long_unsigned(selector),
        ]
    )
    day = structure([unsigned(9), array([action])])
    week = structure([octet_string(b"WX")] + [unsigned(9)] * 7)
    season = structure(
        [
            octet_string(b"SX"),
            octet_string(bytes.fromhex("ffff0101ff000000ff8000ff")),
            octet_string(b"WX"),
        ]
    )
    return [octet_string(b"FLAT"), array([season]), array([week]), array([day])]


def test_passive_calendar_activation_by_time_and_by_method() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=TUESDAY)
    for attr, value in zip((6, 9, 8, 7), [flat_calendar(4)[i] for i in (0, 3, 2, 1)], strict=True):
        assert meter.set(20, CAL, attr, value, now=TUESDAY, client=1) == "success"
    when = TUESDAY + timedelta(hours=1)
    assert (
        meter.set(20, CAL, 10, octet_string(from_utc(when, deviation=0)), now=TUESDAY, client=1)
        == "success"
    )
    assert tariff(meter, when - timedelta(minutes=1)) == unsigned(2)
    assert tariff(meter, when + timedelta(seconds=1)) == unsigned(4)
    assert meter.get(20, CAL, 2, now=when, client=1) == octet_string(b"FLAT")
    # by method: write a passive calendar and activate it now
    for attr, value in zip((9, 8, 7), [flat_calendar(3)[i] for i in (3, 2, 1)], strict=True):
        assert meter.set(20, CAL, attr, value, now=when, client=1) == "success"
    assert meter.action(20, CAL, 1, integer(0), now=when, client=1)[0] == "success"
    assert tariff(meter, when) == unsigned(3)
    # a malformed day profile is refused with type-unmatched
    bad = array([structure([unsigned(1)])])
    assert meter.set(20, CAL, 9, bad, now=when, client=1) == "type-unmatched"


def test_key_transfer_uses_injected_unwrap() -> None:
    creds = SecurityCredentials()
    unwrapped: list[tuple[bytes, bytes]] = []

    def unwrap(kek: bytes, wrapped: bytes) -> bytes | None:
        unwrapped.append((kek, wrapped))
        return wrapped[:16] if wrapped.startswith(b"K") else None

    meter = SimulatedMeter(
        MeterOptions(history_days=0, credentials=creds, key_unwrap=unwrap), now=TUESDAY
    )
    new_key = b"K" * 16
    params = array([structure([enum(0), octet_string(new_key + b"wrap")])])
    assert meter.action(64, "0.0.43.0.1.255", 2, params, now=TUESDAY, client=1)[0] == "success"
    assert creds.guek == new_key and unwrapped == [(creds.kek, new_key + b"wrap")]
    bad = array([structure([enum(2), octet_string(b"garbage")])])
    old_gak = creds.gak
    assert meter.action(64, "0.0.43.0.1.255", 2, bad, now=TUESDAY, client=1)[0] == "other-reason"
    assert creds.gak == old_gak
    # security_activate: policy bits can only be added
    assert meter.action(64, "0.0.43.0.1.255", 1, enum(0x0C), now=TUESDAY, client=1)[0] == (
        "success"
    )
    assert meter.action(64, "0.0.43.0.1.255", 1, enum(0x04), now=TUESDAY, client=1)[0] == (
        "other-reason"
    )
    assert meter.get(64, "0.0.43.0.1.255", 5, now=TUESDAY, client=1) == octet_string(
        creds.system_title
    )


def test_association_methods() -> None:
    def reply(client: int, challenge: bytes) -> bytes | None:
        return b"\x10" + challenge if challenge == b"ok" else None

    meter = SimulatedMeter(MeterOptions(history_days=0, hls_reply=reply), now=TUESDAY)
    aa = "0.0.40.0.0.255"
    assert meter.action(15, aa, 1, octet_string(b"ok"), now=TUESDAY, client=1) == (
        "success",
        octet_string(b"\x10ok"),
    )
    assert meter.action(15, aa, 1, octet_string(b"no"), now=TUESDAY, client=1)[0] == "other-reason"
    assert meter.action(15, aa, 2, octet_string(b"S" * 16), now=TUESDAY, client=1)[0] == "success"
    assert meter.association(1).secret == b"S" * 16
    assert meter.get(15, aa, 3, now=TUESDAY, client=16) == structure(
        [integer(16), long_unsigned(1)]
    )
    mech = meter.get(15, aa, 6, now=TUESDAY, client=1)
    assert isinstance(mech, dict) and mech["value"][-1] == unsigned(5)
    assert meter.get(15, aa, 8, now=TUESDAY, client=1) == enum(0)
    meter.association(1).status = 2
    assert meter.get(15, aa, 8, now=TUESDAY, client=1) == enum(2)


def test_special_day_overrides_week_profile() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=TUESDAY)
    sdt = "0.0.11.0.0.255"
    # every 10 March is a holiday: day profile 2 (all T1)
    holiday = structure([long_unsigned(1), octet_string(bytes.fromhex("ffff030aff")), unsigned(2)])
    assert tariff(meter, TUESDAY) == unsigned(2)
    assert meter.action(11, sdt, 1, holiday, now=TUESDAY, client=1)[0] == "success"
    assert tariff(meter, TUESDAY) == unsigned(1)
    assert meter.get(11, sdt, 2, now=TUESDAY, client=1) == array([holiday])
    assert tariff(meter, TUESDAY + timedelta(days=1)) == unsigned(2)  # Wednesday 12:00
    bad = structure([long_unsigned(2), octet_string(bytes.fromhex("ffff0d01ff")), unsigned(2)])
    assert meter.action(11, sdt, 1, bad, now=TUESDAY, client=1)[0] == "type-unmatched"
    assert meter.action(11, sdt, 2, long_unsigned(1), now=TUESDAY, client=1)[0] == "success"
    assert meter.action(11, sdt, 2, long_unsigned(1), now=TUESDAY, client=1)[0] == "other-reason"
