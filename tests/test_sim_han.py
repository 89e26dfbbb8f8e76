"""The simulated meter's HAN side and customer side (use cases 4 and 8): M-Bus devices
joining and leaving, class 72 methods, keys, the display fed by the customer interface,
the opt-out, and Charge (class 113) activation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from smmc_gateway.cosem.datetime import from_utc
from smmc_gateway.cosem.values import as_int, octet_string
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.events import EVENT_LOGS
from smmc_gateway.simulator.han import (
    DISPLAY,
    GAS,
    HanDevice,
    HanPlan,
    aes_cbc_zero_iv,
    from_bcd,
    manufacturer_code,
    manufacturer_id,
)
from smmc_gateway.simulator.objects.charge import unit_charge

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MGMT = 1
DEFAULT_KEY = bytes(range(16))


def dev(ident: int = 12345678, kind: int = DISPLAY) -> HanDevice:
    return HanDevice(ident, DEFAULT_KEY, manufacturer="SMC", version=3, device_type=kind)


def attr(meter: SimulatedMeter, channel: int, a: int, now: datetime = NOW) -> int:
    return as_int(meter.get(72, f"0.{channel}.24.1.0.255", a, now=now, client=MGMT))


def log_codes(meter: SimulatedMeter, kind: str, now: datetime = NOW) -> list[int]:
    value = meter.get(7, EVENT_LOGS[kind][0], 2, now=now, client=MGMT)
    assert isinstance(value, dict)
    return [row["value"][1]["value"] for row in value["value"]]


def test_dsmr_key_transfer_vector_and_manufacturer_ids() -> None:
    # public OSGP test vector for the DSMR 4 M-Bus user key transfer (AES-CBC, zero IV)
    key = bytes.fromhex("11111111222222223333333344444455")
    assert (
        aes_cbc_zero_iv(DEFAULT_KEY, key, decrypt=False).hex() == "08eab184363141f1e7b554939dfb75b8"
    )
    assert manufacturer_id("NTM") == 0x3A8D and manufacturer_id("FLO") == 0x198F
    assert manufacturer_code(0x3A8D) == "NTM" and manufacturer_code(0) == ""
    assert from_bcd(0x12345678) == "12345678"


def test_a_device_that_joins_is_installed_logged_and_pushed() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    assert meter.han_join(dev(), NOW) == 1
    assert attr(meter, 1, 6) == 0x12345678
    assert attr(meter, 1, 5) == 1  # primary address = the channel
    assert manufacturer_code(attr(meter, 1, 7)) == "SMC"
    assert (attr(meter, 1, 8), attr(meter, 1, 9)) == (3, DISPLAY)
    assert 105 in log_codes(meter, "mbus")
    (push,) = meter.take_pushes()
    alarm = push.body["value"][2]["value"]
    assert alarm & (1 << 24) and push.reason == "han"
    # a second device goes to channel 2: its own event code and alarm bit
    assert meter.han_join(dev(87654321, GAS), NOW) == 2
    assert 115 in log_codes(meter, "mbus")
    assert meter.take_pushes()[0].body["value"][2]["value"] & (1 << 25)


def test_a_device_that_leaves_shows_a_communication_error_and_comes_back() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    meter.han_join(dev(), NOW)
    meter.take_pushes()
    assert meter.han_leave(12345678, NOW) == 1
    assert attr(meter, 1, 11) == 0x10 and attr(meter, 1, 6) == 0x12345678  # still installed
    assert 100 in log_codes(meter, "mbus")
    assert meter.take_pushes()[0].body["value"][2]["value"] & (1 << 16)
    assert meter.han_join(dev(), NOW) == 1  # same channel, communication ok
    assert attr(meter, 1, 11) == 0 and 101 in log_codes(meter, "mbus")


def test_install_by_identification_and_deinstall() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0, mbus_auto_install=False), now=NOW)
    meter.han_join(dev(), NOW)
    assert attr(meter, 1, 6) == 0  # not installed by itself
    obis = "0.2.24.1.0.255"
    # a device that is not on the bus cannot be installed
    meter.set(
        72, obis, 6, {"type": "double-long-unsigned", "value": 0x11111111}, now=NOW, client=MGMT
    )
    assert (
        meter.action(72, obis, 1, {"type": "unsigned", "value": 0}, now=NOW, client=MGMT)[0]
        == "temporary-failure"
    )
    meter.set(
        72, obis, 6, {"type": "double-long-unsigned", "value": 0x12345678}, now=NOW, client=MGMT
    )
    assert (
        meter.action(72, obis, 1, {"type": "unsigned", "value": 9}, now=NOW, client=MGMT)[0]
        == "success"
    )
    assert attr(meter, 2, 5) == 9 and attr(meter, 2, 9) == DISPLAY
    assert (
        meter.action(72, obis, 2, {"type": "integer", "value": 0}, now=NOW, client=MGMT)[0]
        == "success"
    )
    assert attr(meter, 2, 6) == 0 and attr(meter, 2, 9) == 0
    # a bad identification (not BCD) is refused
    assert (
        meter.set(
            72, obis, 6, {"type": "double-long-unsigned", "value": 0x1234567A}, now=NOW, client=MGMT
        )
        == "type-unmatched"
    )


def test_keys_set_and_transferred_are_in_use_only_when_they_agree() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    meter.han_join(dev(), NOW)
    obis = "0.1.24.1.0.255"
    user = bytes.fromhex("11111111222222223333333344444455")
    wrapped = aes_cbc_zero_iv(DEFAULT_KEY, user, decrypt=False)

    def act(method: int, data: bytes) -> str:
        return meter.action(72, obis, method, octet_string(data), now=NOW, client=MGMT)[0]

    assert attr(meter, 1, 14) == 0
    assert act(8, wrapped) == "success" and attr(meter, 1, 14) == 2
    assert act(7, bytes(16)) == "success" and attr(meter, 1, 14) == 3  # another key
    meter.action(72, obis, 3, {"type": "integer", "value": 0}, now=NOW, client=MGMT)
    assert attr(meter, 1, 14) == 3 and attr(meter, 1, 11) == 0x02  # does not decrypt
    assert act(7, user) == "success"
    meter.action(72, obis, 3, {"type": "integer", "value": 0}, now=NOW, client=MGMT)
    assert attr(meter, 1, 14) == 4 and attr(meter, 1, 11) == 0  # in use
    assert act(7, b"short") == "type-unmatched"


def test_planned_devices_join_and_leave_on_time() -> None:
    plan = HanPlan(dev(), join_after_s=60, leave_after_s=120)
    meter = SimulatedMeter(MeterOptions(history_days=0, han_devices=(plan,)), now=NOW)
    assert attr(meter, 1, 6) == 0
    meter.tick(NOW + timedelta(seconds=61))
    assert attr(meter, 1, 6, NOW + timedelta(seconds=61)) == 0x12345678
    later = NOW + timedelta(seconds=121)
    meter.tick(later)
    assert attr(meter, 1, 11, later) == 0x10
    with pytest.raises(ValueError, match="repeat"):
        MeterOptions(han_devices=(plan, plan)).validate()


def test_the_display_follows_the_customer_interface_and_the_opt_out() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0, cip_period_s=10), now=NOW)
    text = "Corte programado ñ".encode()
    assert meter.set(1, "0.0.96.13.0.255", 2, octet_string(text), now=NOW, client=MGMT) == "success"
    t1 = NOW + timedelta(seconds=11)
    meter.tick(t1)
    view = meter.display.view
    assert view is not None and view.text == "Corte programado ñ" and view.tariff is not None
    assert view.price == "150.00" or view.price == "110.00"  # the active tariff's price
    # the customer interface off: the display keeps its last view, marked stale, and an
    # opt-out on it cannot reach the meter; at the meter's own interface it can
    off = {"type": "boolean", "value": False}
    assert meter.set(1, "0.0.96.50.0.255", 2, off, now=t1, client=MGMT) == "success"
    t2 = t1 + timedelta(seconds=30)
    meter.tick(t2)
    assert meter.display.stale and meter.display.view is view
    meter.take_pushes()
    assert meter.customer_opt_out(t2, "ihd") is False
    assert meter.customer_opt_out(t2, "local") is True
    assert 71 in log_codes(meter, "standard", t2)
    (push,) = meter.take_pushes()
    assert push.body["value"][2]["value"] & (1 << 6) and push.reason == "opt-out"
    with pytest.raises(ValueError, match="source"):
        meter.customer_opt_out(t2, "phone")


def test_charge_passive_prices_activate_at_their_time() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    new = unit_charge(-3, -2, [(b"1", 20025)])
    assert meter.set(113, "0.0.19.20.0.255", 6, new, now=NOW, client=MGMT) == "success"
    at = NOW + timedelta(minutes=5)
    stamp = from_utc(at, deviation=meter.time_zone())
    assert (
        meter.set(113, "0.0.19.20.0.255", 7, octet_string(stamp), now=NOW, client=MGMT) == "success"
    )
    assert meter.get(113, "0.0.19.20.0.255", 5, now=NOW, client=MGMT) != new
    assert meter.get(113, "0.0.19.20.0.255", 5, now=at + timedelta(seconds=1), client=MGMT) == new
    bad = {"type": "structure", "value": [{"type": "integer", "value": 1}]}
    assert meter.set(113, "0.0.19.20.0.255", 6, bad, now=NOW, client=MGMT) == "type-unmatched"


def test_the_simulator_cli_and_fleet_knobs() -> None:
    import argparse

    from smmc_gateway.simulator.cli import add_arguments, spec_from_args
    from smmc_gateway.simulator.fleet import FleetSpec, SimulatedFleet

    p = argparse.ArgumentParser()
    add_arguments(p)
    spec = spec_from_args(
        p.parse_args(
            [
                "--tcp",
                "0",
                "--han-devices",
                "2",
                "--han-join-after",
                "5",
                "--han-leave-after",
                "60",
                "--opt-out-after",
                "30",
                "--opt-out-from",
                "local",
                "--cip-period",
                "2",
            ]
        )
    )
    assert (spec.han_devices, spec.han_join_after_s, spec.han_leave_after_s) == (2, 5, 60)
    assert (spec.opt_out_after_s, spec.opt_out_source, spec.cip_period_s) == (30, "local", 2)
    fleet = SimulatedFleet(spec)
    listing = fleet.meters[0].describe()["han"]
    assert [d["device_type"] for d in listing] == [DISPLAY, GAS]
    assert len({d["identification"] for d in listing}) == 2
    assert all(len(d["identification"]) == 8 for d in listing)
    with pytest.raises(ValueError, match="han_devices 5"):
        FleetSpec(han_devices=5).validate()
    with pytest.raises(ValueError, match="opt_out_after_s -1"):
        FleetSpec(opt_out_after_s=-1).validate()


def test_a_planned_opt_out_registers_on_time() -> None:
    meter = SimulatedMeter(
        MeterOptions(history_days=0, opt_out_after_s=30, opt_out_source="ihd"), now=NOW
    )
    assert 70 not in log_codes(meter, "standard")
    later = NOW + timedelta(seconds=31)
    meter.tick(later)
    assert 70 in log_codes(meter, "standard", later)
