"""Disconnect control state machine per control mode, and the limiter tripping
and reconnecting across ticks."""

from datetime import UTC, datetime, timedelta

import pytest
from smmc_gateway.cosem.values import as_int, double_long_unsigned, enum, integer
from smmc_gateway.simulator import MeterOptions, SimulatedMeter
from smmc_gateway.simulator.objects.disconnect import (
    CONNECTED,
    DISCONNECTED,
    READY,
    DisconnectControl,
)

NOW = datetime(2026, 3, 10, 19, 0, tzinfo=UTC)  # evening peak: ~2 kW
DC = "0.0.96.3.10.255"

# (mode, start state, trigger) -> expected state, from the Blue Book table
EXPECTED = {
    # remote disconnect from connected (b) and from ready (c): modes 1..6
    **{(m, CONNECTED, "remote_disconnect"): DISCONNECTED for m in range(1, 7)},
    **{(m, READY, "remote_disconnect"): DISCONNECTED for m in range(1, 7)},
    # remote reconnect: d (to ready) in 1, 3, 5, 6; a (to connected) in 2, 4
    **{(m, DISCONNECTED, "remote_reconnect"): READY for m in (1, 3, 5, 6)},
    **{(m, DISCONNECTED, "remote_reconnect"): CONNECTED for m in (2, 4)},
    # manual reconnect e: all modes
    **{(m, READY, "manual_reconnect"): CONNECTED for m in range(1, 7)},
    # manual disconnect f: modes 1, 2, 5 only
    **{(m, CONNECTED, "manual_disconnect"): READY for m in (1, 2, 5)},
    **{(m, CONNECTED, "manual_disconnect"): CONNECTED for m in (3, 4, 6)},
    # local disconnect g: all modes; local reconnect h: modes 5, 6 only
    **{(m, CONNECTED, "local_disconnect"): READY for m in range(1, 7)},
    **{(m, READY, "local_reconnect"): CONNECTED for m in (5, 6)},
    **{(m, READY, "local_reconnect"): READY for m in (1, 2, 3, 4)},
    # triggers that do not apply to a state change nothing
    **{(m, DISCONNECTED, "manual_reconnect"): DISCONNECTED for m in range(1, 7)},
    **{(m, READY, "remote_reconnect"): READY for m in range(1, 7)},
}


@pytest.mark.parametrize(("mode", "start", "trigger"), sorted(EXPECTED))
def test_state_machine(mode: int, start: int, trigger: str) -> None:
    seen: list[str] = []
    dc = DisconnectControl(control_mode=mode, on_transition=lambda now, t, s: seen.append(t))
    dc.control_state = start
    dc.trigger(trigger, NOW)
    assert dc.control_state == EXPECTED[(mode, start, trigger)]
    assert dc.output_state == (dc.control_state == CONNECTED)
    assert bool(seen) == (dc.control_state != start)


def test_mode_zero_is_always_connected() -> None:
    meter = SimulatedMeter(MeterOptions(control_mode=0, history_days=0), now=NOW)
    assert meter.action(70, DC, 1, integer(0), now=NOW, client=1)[0] == "other-reason"
    assert meter.get(70, DC, 2, now=NOW, client=1) == {"type": "boolean", "value": True}


def test_remote_disconnect_stops_energy_and_logs() -> None:
    meter = SimulatedMeter(MeterOptions(control_mode=1, history_days=0), now=NOW)
    assert meter.action(70, DC, 1, integer(0), now=NOW, client=1) == ("success", None)
    assert meter.get(70, DC, 3, now=NOW, client=1) == enum(DISCONNECTED)
    before = meter.get(3, "1.0.1.8.0.255", 2, now=NOW, client=1)
    after = meter.get(3, "1.0.1.8.0.255", 2, now=NOW + timedelta(hours=1), client=1)
    assert before == after
    assert meter.get(3, "1.0.1.7.0.255", 2, now=NOW, client=1) == double_long_unsigned(0)
    # mode 1: remote reconnect only arms the relay; the customer closes it
    assert meter.action(70, DC, 2, integer(0), now=NOW, client=1)[0] == "success"
    assert meter.get(70, DC, 3, now=NOW, client=1) == enum(READY)
    assert meter.press_button(NOW) == "e"
    assert meter.get(70, DC, 2, now=NOW, client=1) == {"type": "boolean", "value": True}
    log = meter.get(7, "0.0.99.98.2.255", 2, now=NOW, client=1)
    assert isinstance(log, dict)
    assert [r["value"][1]["value"] for r in log["value"]] == [50, 47, 49]
    # a bad control mode is refused, a good one accepted
    assert meter.set(70, DC, 4, enum(7), now=NOW, client=1) == "other-reason"
    assert meter.set(70, DC, 4, enum(2), now=NOW, client=1) == "success"


def power(meter: SimulatedMeter, now: datetime) -> int:
    value = meter.get(3, "1.0.1.7.0.255", 2, now=now, client=1)
    assert isinstance(value, dict)
    return as_int(value)


def test_limiter_trips_and_reconnects_across_ticks() -> None:
    options = MeterOptions(
        control_mode=5,
        history_days=0,
        limiter_threshold_w=300,
        limiter_min_over_s=120,
        limiter_min_under_s=600,
    )
    meter = SimulatedMeter(options, now=NOW - timedelta(seconds=1))
    meter.take_pushes()
    assert power(meter, NOW) > 300
    meter.tick(NOW + timedelta(seconds=60))
    assert meter.disconnect.control_state == CONNECTED  # over, but not for 120 s yet
    meter.tick(NOW + timedelta(seconds=300))
    # tripped at the deadline (over since NOW-1s, + 120 s): a local disconnect (g)
    assert meter.disconnect.control_state == READY
    assert power(meter, NOW + timedelta(seconds=300)) == 0
    log = meter.get(7, "0.0.99.98.2.255", 2, now=NOW + timedelta(seconds=300), client=1)
    assert isinstance(log, dict)
    codes = [r["value"][1]["value"] for r in log["value"]]
    assert codes == [52, 47, 53]
    pushes = meter.take_pushes()
    assert [p.reason for p in pushes] == ["limiter"]
    # mode 5 reconnects locally (h) after min_under_threshold_duration of 0 W
    meter.tick(NOW + timedelta(seconds=119 + 599))
    assert meter.disconnect.control_state == READY
    meter.tick(NOW + timedelta(seconds=119 + 601))
    assert meter.disconnect.control_state == CONNECTED
    log = meter.get(7, "0.0.99.98.2.255", 2, now=NOW + timedelta(seconds=721), client=1)
    assert isinstance(log, dict)
    assert [r["value"][1]["value"] for r in log["value"]][3:5] == [60, 54]


def test_limiter_in_mode_1_waits_for_the_customer() -> None:
    options = MeterOptions(control_mode=1, history_days=0, limiter_threshold_w=300)
    meter = SimulatedMeter(options, now=NOW)
    meter.tick(NOW + timedelta(hours=1))
    assert meter.disconnect.control_state == READY  # no local reconnect in mode 1
    meter.press_button(NOW + timedelta(hours=1))
    assert meter.disconnect.control_state == CONNECTED


def test_emergency_threshold() -> None:
    from smmc_gateway.cosem.datetime import from_utc
    from smmc_gateway.cosem.values import array, long_unsigned, octet_string, structure

    meter = SimulatedMeter(
        MeterOptions(control_mode=1, history_days=0, limiter_threshold_w=100_000), now=NOW
    )
    lim = "0.0.17.0.0.255"
    profile = structure(
        [
            long_unsigned(7),
            octet_string(from_utc(NOW + timedelta(minutes=10), deviation=0)),
            double_long_unsigned(1800),
        ]
    )
    assert meter.set(71, lim, 8, profile, now=NOW, client=1) == "success"
    assert meter.set(71, lim, 9, array([long_unsigned(7)]), now=NOW, client=1) == "success"
    assert meter.set(71, lim, 5, double_long_unsigned(200), now=NOW, client=1) == "success"
    assert meter.get(71, lim, 3, now=NOW, client=1) == double_long_unsigned(100_000)
    at = NOW + timedelta(minutes=11)
    assert meter.get(71, lim, 10, now=at, client=1) == {"type": "boolean", "value": True}
    assert meter.get(71, lim, 3, now=at, client=1) == double_long_unsigned(200)
    meter.tick(NOW + timedelta(minutes=15))
    assert meter.disconnect.control_state == READY
    after = NOW + timedelta(minutes=41)
    assert meter.get(71, lim, 3, now=after, client=1) == double_long_unsigned(100_000)
