"""The simulated meter: object list, access rights, registers, clock."""

from datetime import UTC, datetime, timedelta

import pytest
from smmc_gateway.cosem.classes import CLASSES, AttributeAccess
from smmc_gateway.cosem.datetime import from_utc, to_utc
from smmc_gateway.cosem.model import ObjectListError, ObjectModel
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import as_bytes, as_int, integer, long, octet_string
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.meter import UnknownClientError

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MGMT, PUBLIC = 1, 16


def make(**kw: object) -> SimulatedMeter:
    return SimulatedMeter(MeterOptions(**kw), now=NOW)  # type: ignore[arg-type]


def meter_clock(meter: SimulatedMeter, now: datetime) -> datetime:
    value = meter.get(8, "0.0.1.0.0.255", 2, now=now, client=MGMT)
    assert isinstance(value, dict)
    result = to_utc(as_bytes(value))
    assert result is not None
    return result


def test_object_list_describes_exactly_the_objects() -> None:
    meter = make()
    for client in (MGMT, PUBLIC):
        value = meter.get(15, "0.0.40.0.0.255", 2, now=NOW, client=client)
        assert isinstance(value, dict)
        model = ObjectModel.from_object_list(value)
        for info in model:
            # every listed object answers its logical name with its class id
            ln = meter.get(info.class_id, info.obis, 1, now=NOW, client=client)
            assert ln == octet_string(info.obis.to_bytes())
            assert info.version == CLASSES[info.class_id].version
            assert set(info.attributes) == set(range(1, len(CLASSES[info.class_id].attributes) + 1))
        if client == MGMT:
            assert {o.obis for o in model} == set(meter.objects) | {Obis(0, 0, 40, 0, 0, 255)}
        # objects not in the list are undefined for that client
        for obis, obj in meter.objects.items():
            if model.get(obis) is None:
                assert meter.get(obj.class_id, obis, 1, now=NOW, client=client) == (
                    "object-undefined"
                )
    public = ObjectModel.from_object_list(meter.object_list(PUBLIC))
    assert public.get("1.0.1.8.0.255") is not None
    assert public.get("0.0.96.3.10.255") is None
    assert all(not r.access.can_write for o in public for r in o.attributes.values()), (
        "public client is read-only"
    )
    lp = ObjectModel.from_object_list(meter.object_list(MGMT)).get("1.0.99.1.0.255")
    assert lp is not None and lp.attributes[2].selectors == (1, 2)


def test_access_rights_enforced() -> None:
    meter = make()
    # public reads energy but cannot write the clock nor disconnect
    assert isinstance(meter.get(3, "1.0.1.8.0.255", 2, now=NOW, client=PUBLIC), dict)
    new_time = octet_string(from_utc(NOW, deviation=0))
    assert meter.set(8, "0.0.1.0.0.255", 2, new_time, now=NOW, client=PUBLIC) == (
        "read-write-denied"
    )
    assert meter.action(8, "0.0.1.0.0.255", 6, long(10), now=NOW, client=PUBLIC)[0] == (
        "read-write-denied"
    )
    assert meter.action(70, "0.0.96.3.10.255", 1, integer(0), now=NOW, client=PUBLIC)[0] == (
        "object-undefined"
    )
    # read-only attribute for management too
    assert meter.set(3, "1.0.1.8.0.255", 2, long(1), now=NOW, client=MGMT) == "read-write-denied"
    # the secret is write-only
    assert meter.get(15, "0.0.40.0.0.255", 7, now=NOW, client=MGMT) == "read-write-denied"
    assert meter.set(15, "0.0.40.0.0.255", 7, octet_string(b"new"), now=NOW, client=MGMT) == (
        "success"
    )
    assert meter.association(MGMT).secret == b"new"
    with pytest.raises(UnknownClientError):
        meter.get(1, "0.0.96.1.0.255", 2, now=NOW, client=99)


def test_undefined_inconsistent_and_type_errors() -> None:
    meter = make()
    assert meter.get(1, "1.2.3.4.5.6", 2, now=NOW, client=MGMT) == "object-undefined"
    assert meter.get(1, "1.0.1.8.0.255", 2, now=NOW, client=MGMT) == "object-class-inconsistent"
    assert meter.get(3, "1.0.1.8.0.255", 9, now=NOW, client=MGMT) == "object-undefined"
    assert meter.set(8, "0.0.1.0.0.255", 3, integer(5), now=NOW, client=MGMT) == "type-unmatched"
    assert meter.get(3, "1.0.1.8.0.255", 2, now=NOW, client=MGMT, selector=1) == (
        "object-unavailable"
    )


def test_registers_integrate_and_are_deterministic() -> None:
    a, b = make(seed=7), make(seed=7)
    first = a.get(3, "1.0.1.8.0.255", 2, now=NOW, client=MGMT)
    assert first == b.get(3, "1.0.1.8.0.255", 2, now=NOW, client=MGMT)
    assert first != make(seed=8).get(3, "1.0.1.8.0.255", 2, now=NOW, client=MGMT)
    later = NOW + timedelta(hours=2)
    second = a.get(3, "1.0.1.8.0.255", 2, now=later, client=MGMT)
    assert isinstance(first, dict) and isinstance(second, dict)
    gained = as_int(second) - as_int(first)
    assert 200 < gained < 20_000  # a household in 2 h, in Wh
    assert a.get(3, "1.0.1.8.0.255", 3, now=later, client=MGMT) == {
        "type": "structure",
        "value": [integer(0), {"type": "enum", "value": 30}],
    }
    power = a.get(3, "1.0.1.7.0.255", 2, now=later, client=MGMT)
    volts = a.get(3, "1.0.32.7.0.255", 2, now=later, client=MGMT)
    assert isinstance(power, dict) and as_int(power) > 0
    assert isinstance(volts, dict) and 2200 < as_int(volts) < 2400


def test_clock_drift_and_offset() -> None:
    meter = make(drift_ppm=100.0, clock_offset_seconds=30.0)
    assert meter_clock(meter, NOW) == NOW + timedelta(seconds=30)
    day = NOW + timedelta(days=1)
    # 100 ppm over a day = 8.64 s fast; the octet-string carries hundredths
    drifted = meter_clock(meter, day) - day
    assert abs(drifted.total_seconds() - 38.64) < 0.02
    meter.set_drift(day, 0.0)
    assert (
        abs((meter_clock(meter, day + timedelta(days=1)) - day).total_seconds() - 86438.64) < 0.02
    )


def test_set_time_and_shift_limits() -> None:
    meter = make(time_zone=240)
    target = NOW + timedelta(minutes=7)
    assert (
        meter.set(
            8,
            "0.0.1.0.0.255",
            2,
            octet_string(from_utc(target, deviation=240)),
            now=NOW,
            client=MGMT,
        )
        == "success"
    )
    assert meter_clock(meter, NOW) == target
    assert meter.action(8, "0.0.1.0.0.255", 6, long(900), now=NOW, client=MGMT)[0] == "success"
    assert meter_clock(meter, NOW) == target + timedelta(seconds=900)
    assert meter.action(8, "0.0.1.0.0.255", 6, long(-901), now=NOW, client=MGMT)[0] == (
        "other-reason"
    )
    assert meter.action(8, "0.0.1.0.0.255", 6, integer(5), now=NOW, client=MGMT)[0] == (
        "type-unmatched"
    )
    assert meter_clock(meter, NOW) == target + timedelta(seconds=900)
    assert meter.action(8, "0.0.1.0.0.255", 1, integer(0), now=NOW, client=MGMT)[0] == "success"
    assert meter_clock(meter, NOW) == NOW + timedelta(minutes=15)  # 12:22 -> 12:15
    tz = meter.get(8, "0.0.1.0.0.255", 3, now=NOW, client=MGMT)
    assert tz == long(240)
    # clock adjustments are logged (old/new time) in the standard event log
    log = meter.get(7, "0.0.99.98.0.255", 2, now=NOW, client=MGMT)
    assert isinstance(log, dict)
    codes = [row["value"][1]["value"] for row in log["value"]]
    assert codes[-2:] == [4, 5]


def test_preset_adjusting_time() -> None:
    meter = make()
    preset = from_utc(NOW + timedelta(hours=1), deviation=0)
    start = from_utc(NOW - timedelta(minutes=5), deviation=0)
    end = from_utc(NOW + timedelta(minutes=5), deviation=0)
    assert meter.action(8, Obis(0, 0, 1, 0, 0, 255), 4, integer(0), now=NOW, client=MGMT)[0] == (
        "other-reason"
    )
    params = {"type": "structure", "value": [octet_string(b) for b in (preset, start, end)]}
    assert meter.action(8, "0.0.1.0.0.255", 5, params, now=NOW, client=MGMT)[0] == "success"
    assert meter.action(8, "0.0.1.0.0.255", 4, integer(0), now=NOW, client=MGMT)[0] == "success"
    assert meter_clock(meter, NOW) == NOW + timedelta(hours=1)


def test_object_list_errors_name_the_entry() -> None:
    bad = {"type": "array", "value": [{"type": "structure", "value": [long(1)]}]}
    with pytest.raises(ObjectListError, match="entry 0"):
        ObjectModel.from_object_list(bad)
    with pytest.raises(ObjectListError):
        ObjectModel.from_object_list({"type": "structure", "value": []})


def test_attribute_access_enum() -> None:
    assert AttributeAccess.READ_AND_WRITE.can_write and AttributeAccess.READ_AND_WRITE.can_read
    assert not AttributeAccess.WRITE_ONLY.can_read


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimulatedMeter(now=datetime(2026, 1, 1))
