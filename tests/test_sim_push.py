"""Pushes: the push method, alarms on outage/restore, the power failure log."""

from datetime import UTC, datetime, timedelta

from smmc_gateway.cosem.datetime import to_utc
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import as_bytes, as_int, double_long_unsigned, integer, octet_string
from smmc_gateway.simulator import MeterOptions, SimulatedMeter

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_push_method_produces_body() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0, serial="ABC123"), now=NOW)
    assert meter.action(40, "0.0.25.9.0.255", 1, integer(0), now=NOW, client=1)[0] == "success"
    (msg,) = meter.take_pushes()
    assert msg.setup == Obis(0, 0, 25, 9, 0, 255) and msg.reason == "method"
    body = msg.body["value"]
    assert body[0] == octet_string(bytes([0, 0, 25, 9, 0, 255]))
    assert body[1] == octet_string(b"ABC123")
    assert body[3] == meter.get(3, "1.0.1.8.0.255", 2, now=NOW, client=1)
    assert meter.take_pushes() == []


def test_outage_last_gasp_and_restore() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=1), now=NOW)
    out = NOW + timedelta(minutes=5)
    meter.power_outage(out)
    (gasp,) = meter.take_pushes()
    assert gasp.reason == "power-down" and gasp.setup == Obis(0, 4, 25, 9, 0, 255)
    assert as_int(gasp.body["value"][2]) & 1
    # no answers and no energy while the mains are gone
    assert meter.get(1, "0.0.96.1.0.255", 2, now=out, client=1) == "temporary-failure"
    energy = meter.energy_reading(0)
    back = out + timedelta(minutes=40)
    meter.power_restored(back)
    assert meter.energy_reading(0) == energy
    (restore,) = meter.take_pushes()
    assert restore.reason == "power-up"
    failures = meter.get(7, "1.0.99.97.0.255", 2, now=back, client=1)
    assert isinstance(failures, dict)
    (row,) = failures["value"]
    assert row["value"][1] == double_long_unsigned(2400)
    log = meter.get(7, "0.0.99.98.0.255", 2, now=back, client=1)
    assert isinstance(log, dict)
    assert [r["value"][1]["value"] for r in log["value"]] == [1, 2]
    # the quarter-hour rows during the outage are missing; the next one is flagged
    lp = meter.get(7, "1.0.99.1.0.255", 2, now=back + timedelta(minutes=15), client=1)
    assert isinstance(lp, dict)
    last = [r["value"] for r in lp["value"][-2:]]
    # 12:15, 12:30 (outage) and 12:45 (the restore instant) are missing
    assert [to_utc(as_bytes(r[0])) for r in last] == [NOW, NOW + timedelta(hours=1)]
    assert [r[1]["value"] for r in last] == [0, 0x80]


def test_short_outage_not_in_power_failure_log_and_filter() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    assert meter.set(1, "0.0.97.98.10.255", 2, double_long_unsigned(2), now=NOW, client=1) == (
        "success"
    )
    meter.power_outage(NOW)
    meter.power_restored(NOW + timedelta(seconds=30))
    assert [p.reason for p in meter.take_pushes()] == ["power-up"]  # power-down filtered
    failures = meter.get(7, "1.0.99.97.0.255", 2, now=NOW, client=1)
    assert failures == {"type": "array", "value": []}
    alarm = meter.get(1, "0.0.97.98.0.255", 2, now=NOW, client=1)
    assert alarm == double_long_unsigned(3)


def test_lls_check_and_injected_events() -> None:
    import pytest

    options = MeterOptions(history_days=0, management_auth="lls")
    meter = SimulatedMeter(options, now=NOW)
    assert meter.check_lls(1, b"00000000")
    assert not meter.check_lls(1, b"00000001")
    assert not meter.check_lls(16, b"")  # the public client has no LLS
    meter.log_event("power-quality", 77, NOW)
    log = meter.get(7, "0.0.99.98.4.255", 2, now=NOW, client=1)
    assert isinstance(log, dict) and log["value"][-1]["value"][1]["value"] == 77
    assert meter.get(1, "0.0.96.11.4.255", 2, now=NOW, client=1) == {
        "type": "unsigned",
        "value": 77,
    }
    with pytest.raises(ValueError, match="event log 'nope'"):
        meter.log_event("nope", 1, NOW)
