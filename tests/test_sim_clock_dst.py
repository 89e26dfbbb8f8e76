"""Clock daylight saving: rule resolution, local time, status bit, deviation."""

from datetime import UTC, datetime, timedelta

from smmc_gateway.cosem.datetime import unpack_datetime
from smmc_gateway.cosem.values import as_bytes, boolean, octet_string, unsigned
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.objects.clock import resolve_dst_rule

LAST_SUNDAY_MARCH_2AM = bytes.fromhex("ffff03fe07020000008000ff")


def test_rule_resolution() -> None:
    assert resolve_dst_rule(LAST_SUNDAY_MARCH_2AM, 2026) == datetime(2026, 3, 29, 2, 0)
    assert resolve_dst_rule(LAST_SUNDAY_MARCH_2AM, 2027) == datetime(2027, 3, 28, 2, 0)
    first_sunday_from_6_sep = bytes.fromhex("ffff090607000000008000ff")
    assert resolve_dst_rule(first_sunday_from_6_sep, 2026) == datetime(2026, 9, 6, 0, 0)
    assert resolve_dst_rule(first_sunday_from_6_sep, 2027) == datetime(2027, 9, 12, 0, 0)
    fixed_year = bytes.fromhex("07e9030aff0a0000008000ff")  # only 2025
    assert resolve_dst_rule(fixed_year, 2026) is None


def clock_fields(meter: SimulatedMeter, now: datetime) -> tuple[datetime, int, int]:
    value = meter.get(8, "0.0.1.0.0.255", 2, now=now, client=1)
    assert isinstance(value, dict)
    fields = unpack_datetime(as_bytes(value))
    local = fields.to_datetime()
    assert local is not None and fields.deviation is not None and fields.clock_status is not None
    return local.replace(tzinfo=None), fields.deviation, fields.clock_status


def test_european_summer_time() -> None:
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    meter = SimulatedMeter(MeterOptions(history_days=0, time_zone=-60), now=start)
    assert meter.set(8, "0.0.1.0.0.255", 8, boolean(True), now=start, client=1) == "success"
    before = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert clock_fields(meter, before) == (datetime(2026, 3, 29, 1, 59), -60, 0)
    after = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert clock_fields(meter, after) == (datetime(2026, 3, 29, 3, 0), -120, 0x80)
    assert meter.get(8, "0.0.1.0.0.255", 4, now=after, client=1) == unsigned(0x80)
    # the load profile stamps follow local time and carry the DST bit
    lp = meter.get(7, "1.0.99.1.0.255", 2, now=after + timedelta(minutes=15), client=1)
    assert isinstance(lp, dict)
    last = unpack_datetime(as_bytes(lp["value"][-1]["value"][0]))
    assert (last.hour, last.minute, last.deviation, last.clock_status) == (3, 15, -120, 0x80)
    autumn = datetime(2026, 10, 25, 0, 59, tzinfo=UTC)
    meter = SimulatedMeter(MeterOptions(history_days=0, time_zone=-60), now=autumn)
    assert meter.set(8, "0.0.1.0.0.255", 8, boolean(True), now=autumn, client=1) == "success"
    assert clock_fields(meter, autumn)[1:] == (-120, 0x80)
    assert clock_fields(meter, autumn + timedelta(minutes=1)) == (
        datetime(2026, 10, 25, 2, 0),
        -60,
        0,
    )


def chile_like(now: datetime) -> SimulatedMeter:
    meter = SimulatedMeter(MeterOptions(history_days=0, time_zone=240), now=now)
    begin = octet_string(bytes.fromhex("ffff090607000000008000ff"))  # 1st Sunday from 6 Sep
    end = octet_string(bytes.fromhex("ffff040207000000008000ff"))  # 1st Sunday from 2 Apr
    for attr, value in ((5, begin), (6, end), (8, boolean(True))):
        assert meter.set(8, "0.0.1.0.0.255", attr, value, now=now, client=1) == "success"
    return meter


def test_southern_rule_spans_new_year() -> None:
    start = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert clock_fields(chile_like(start), start) == (datetime(2026, 1, 15, 9, 0), 180, 0x80)
    june = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    assert clock_fields(chile_like(june), june) == (datetime(2026, 6, 15, 8, 0), 240, 0)
