"""The use cases end to end — MQTT -> gateway daemon -> meter -> MQTT — against an
independent DLMS server (Gurux, third party) and against our simulator, compared.

One daemon run per peer kind (:func:`tests.interop.daemon_scenario.run_scenario`:
a Mosquitto broker, two meters, the real daemon with one-minute schedules, every
request sent over MQTT) is judged here use case by use case and meter by meter,
each against what that meter holds (read from the meter objects, not through a DLMS
client): scheduled collection (registers and load profile published and stored), an
on-demand ``MeterReadings get``, ``clockSync`` of a clock 40 s off, ``disconnect`` /
``ping`` / ``connect`` with the switch state read back, ``limit`` (the threshold in
the unit and scaler of the limiter's monitored value: 0.1 W on the Gurux meter), and
the event-log poll (the meter's IDIS standard event log rows as named events).

The Gurux meters: GRX0001 with LLS, GRX0002 with HLS-GMAC (see gurux_meter.py for
the shims of Gurux's own defects), and GRX0003 whose clock takes no adjustment (a
faulty meter: a sync it does not take must not be reported done). GRX0002's AARE
carries an ACSE field whose outer length disagrees with its inner value (a Gurux
quirk the gateway must tolerate, issue 10 item 1): while the compiled core has no
tolerance for it, every use case of that meter is a strict xfail naming the quirk.
Expect about 10 s for the module (two daemon runs of a few seconds each).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from smmc_gateway import _core
from uplink_helpers import validate_message

from tests.interop.daemon_peers import ENERGY_A, Held
from tests.interop.daemon_scenario import (
    CLOCK_OFFSET_S,
    FIRST_READ_S,
    LIMIT_W,
    REGISTERS,
    Observed,
    run_scenario,
)

ACSE_TOLERANT = "acse-field-length" in {q[0] for q in getattr(_core, "known_quirks", list)()}
HLS_QUIRK = pytest.mark.xfail(
    not ACSE_TOLERANT,
    strict=True,
    reason="gateway bug (issue 10 item 1, rust/src/assoc + dlms/association.py, H20): the "
    "Gurux HLS-GMAC AARE carries responding-authentication-value AA 10 80 10 <16 bytes>, "
    "outer length 16 for an 18-byte well-formed inner value (BER, X.690 8.1.3: the length "
    "counts the contents); the client refuses the association ('BER (ACSE): ACSE field: "
    "... expected a definite BER length') instead of taking the inner value, counting the "
    "quirk acse-field-length",
)
CLOCK_TOLERANCE_S = 2.0
"""The gateway's clock_tolerance (default 2 s): a clock within it is left alone, and the
Gurux clock, like a real meter's, counts whole seconds."""
CODE_NAMES = {
    1: "smmc.meter.powerDown",
    2: "smmc.meter.powerUp",
    4: "smmc.meter.clockAdjustedOldTime",
    5: "smmc.meter.clockAdjustedNewTime",
    10: "smmc.meter.errorRegisterCleared",
}
"""IDIS standard event log codes of the rows the meters hold (Blue Book / IDIS)."""


@pytest.fixture(scope="module", params=["gurux", "simulator"])
def observed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    kind = str(request.param)
    tmp: Path = tmp_path_factory.mktemp(f"interop-{kind}")
    yield asyncio.run(run_scenario(kind, tmp))


@pytest.fixture(params=[0, 1], ids=["meter1", "meter2"])
def meter(request: pytest.FixtureRequest, observed: Observed) -> str:
    index = int(request.param)
    if observed.kind == "gurux" and index == 1:
        request.applymarker(HLS_QUIRK)
    return observed.ids[index]


def _ok(obs: Observed, step: str, meter: str, cid: str) -> dict[str, Any]:
    """The reply to ``cid``: the step completed, the reply is valid and says OK."""
    assert (step, meter) not in obs.failures, obs.failures[(step, meter)]
    doc = obs.reply(cid)
    validate_message(_bytes(doc))
    assert doc["reply"]["result"] == "OK", doc["reply"]
    return doc


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _block(reading: dict[str, Any], obis: str) -> list[tuple[datetime, float]]:
    (block,) = [b for b in reading.get("IntervalBlocks", []) if b["ReadingType"]["obis"] == obis]
    return [(_at(r["timeStamp"]), float(r["value"])) for r in block["IntervalReadings"]]


def _rows_between(
    held: Held, lo: datetime, hi: datetime, published: list[tuple[datetime, float]]
) -> list[tuple[datetime, float]]:
    """The meter's rows in [lo, hi]; a row within 2 s of either end (where the
    gateway's own instant decides) counts as expected only if it was published."""
    edge = timedelta(seconds=2)
    out = []
    for t, v in held.profile:
        near = abs(t - lo) <= edge or abs(t - hi) <= edge
        if (lo <= t <= hi and not near) or (near and (t, v) in published):
            out.append((t, v))
    return out


def _bracket(obs: Observed, before: str, after: str, meter: str, obis: str, value: float) -> None:
    """``value`` lies between what the meter held before and after (equal for a meter
    whose registers stand still)."""
    lo = obs.held[(before, meter)].registers[obis]
    hi = obs.held[(after, meter)].registers[obis]
    assert min(lo, hi) - 1e-6 <= value <= max(lo, hi) + 1e-6, (obis, lo, value, hi)


# ------------------------------------------------------------------------- use cases


def test_scheduled_collection_publishes_and_stores_what_the_meter_holds(
    observed: Observed, meter: str
) -> None:
    assert ("collect", meter) not in observed.failures, observed.failures[("collect", meter)]
    docs = observed.on(f"/meter/{meter}/readings")
    first = docs[0]
    validate_message(_bytes(first))
    (reading,) = first["payload"]["MeterReading"]
    assert reading["Meter"]["mRID"] == meter
    values = {r["ReadingType"]["obis"]: float(r["value"]) for r in reading["Readings"]}
    held = observed.held[("collected", meter)]
    assert set(values) == set(held.registers)
    for obis, value in values.items():
        _bracket(observed, "start", "collected", meter, obis, value)
    at = _at(reading["Readings"][0]["timeStamp"])
    rows = _block(reading, ENERGY_A)
    assert rows == _rows_between(held, at - timedelta(seconds=FIRST_READ_S), at, rows)
    assert len(rows) >= 15  # four hours of 15-minute rows
    # stored: the store gives back every row and register value published
    stored = _ok(observed, "stored", meter, f"stored-{meter}")
    (kept,) = stored["payload"]["MeterReading"]
    published_rows = {
        row
        for d in docs
        for r in d["payload"]["MeterReading"]
        if r.get("IntervalBlocks")
        for row in _block(r, ENERGY_A)
    }
    assert set(_block(kept, ENERGY_A)) == published_rows
    kept_values = {
        (r["ReadingType"]["obis"], r["timeStamp"], float(r["value"])) for r in kept["Readings"]
    }
    assert {
        (r["ReadingType"]["obis"], r["timeStamp"], float(r["value"])) for r in reading["Readings"]
    } <= kept_values


def test_on_demand_read_answers_what_the_meter_holds(observed: Observed, meter: str) -> None:
    doc = _ok(observed, "get", meter, f"get-{meter}")
    (reading,) = doc["payload"]["MeterReading"]
    got = {r["ReadingType"]["obis"]: float(r["value"]) for r in reading["Readings"]}
    assert sorted(got) == sorted(REGISTERS)
    for obis, value in got.items():
        _bracket(observed, "collected", "read", meter, obis, value)
    lo, hi = observed.window["get"]
    rows = _block(reading, ENERGY_A)
    assert rows == _rows_between(observed.held[("read", meter)], lo, hi, rows)
    assert len(rows) >= 7  # two hours of 15-minute rows


def test_clock_sync_brings_the_clock_within_tolerance(observed: Observed, meter: str) -> None:
    before = observed.held[("read", meter)]
    assert abs(before.deviation_s - CLOCK_OFFSET_S) < 1.5
    doc = _ok(observed, "clock", meter, f"clk-{meter}")
    (entry,) = doc["payload"]["EndDeviceControl"]
    found = re.match(
        r"deviation before ([-+][\d.]+)s, after ([-+][\d.]+)s, method (\w+)", entry["details"]
    )
    assert found is not None, entry["details"]
    assert abs(float(found[1]) - CLOCK_OFFSET_S) <= CLOCK_TOLERANCE_S / 2 + 0.5
    assert abs(float(found[2])) <= CLOCK_TOLERANCE_S and found[3] == "shift_time"
    after = observed.held[("clock", meter)]
    assert abs(after.deviation_s) <= CLOCK_TOLERANCE_S
    # the meter's own record of the sync, read back by the gateway
    stamp = re.search(r"last_clock_sync (\S+)", entry["details"])
    assert stamp is not None and after.last_sync is not None, entry["details"]
    assert abs((_at(stamp[1]) - after.last_sync).total_seconds()) < 1.0
    assert after.last_sync != before.last_sync
    names = [e["EndDeviceEventType"]["name"] for e in observed.events(meter)]
    assert names.count("smmc.clock.adjusted") == 1


def test_disconnect_and_connect_read_back_the_switch(observed: Observed, meter: str) -> None:
    assert observed.held[("read", meter)].switch == (True, 1)
    off = _ok(observed, "disconnect", meter, f"off-{meter}")
    assert observed.held[("disconnect", meter)].switch == (False, 0)
    assert off["payload"]["EndDeviceControl"][0]["details"] == (
        "output_state False, control_state disconnected"
    )
    ping = _ok(observed, "ping", meter, f"ping-{meter}")
    assert ping["payload"]["EndDeviceControl"][0]["state"] == "disconnected"
    on = _ok(observed, "connect", meter, f"on-{meter}")
    output, control = observed.held[("connect", meter)].switch
    # the Gurux meter is in control mode 2 (remote reconnect closes the switch), the
    # simulator in mode 1 (it arms it: ready_for_reconnection)
    assert (output, control) in ((True, 1), (False, 2))
    state = {1: "connected", 2: "ready_for_reconnection"}[control]
    assert on["payload"]["EndDeviceControl"][0]["details"] == (
        f"output_state {output}, control_state {state}"
    )
    names = [e["EndDeviceEventType"]["name"] for e in observed.events(meter)]
    assert [n for n in names if n.startswith("smmc.switch.")] == [
        "smmc.switch.disconnected",
        "smmc.switch.connected",
    ]


def test_limit_is_written_in_the_monitored_values_scaler(observed: Observed, meter: str) -> None:
    doc = _ok(observed, "limit", meter, f"lim-{meter}")
    held = observed.held[("limit", meter)]
    assert held.threshold_normal * 10**held.monitored_scaler == LIMIT_W, (
        held.threshold_normal,
        held.monitored_scaler,
    )
    (entry,) = doc["payload"]["EndDeviceControl"]
    assert entry["limiter"]["thresholdNormal"] == LIMIT_W
    assert entry["limiter"]["minOverThresholdDuration"] == 10


def test_event_log_rows_come_out_as_named_events(observed: Observed, meter: str) -> None:
    assert ("collect", meter) not in observed.failures, observed.failures[("collect", meter)]
    published = [
        (_at(e["createdDateTime"]), e["EndDeviceEventType"]["name"])
        for e in observed.events(meter)
        if e["EndDeviceEventType"]["name"].startswith("smmc.meter.")
    ]
    for doc in observed.on(f"/meter/{meter}/events"):
        validate_message(_bytes(doc))
    start = observed.held[("start", meter)]
    # the first poll runs at the daemon's start, with the first collection, reading the
    # last FIRST_READ_S (the rows here are well inside: no row sits near that edge)
    (reading,) = observed.on(f"/meter/{meter}/readings")[0]["payload"]["MeterReading"]
    since = _at(reading["Readings"][0]["timeStamp"]) - timedelta(seconds=FIRST_READ_S - 60)
    expected = [(t, CODE_NAMES.get(c, f"code {c}")) for t, c in start.events if t >= since]
    assert expected, "the meter holds no event log rows to poll"
    # every row held at start, once (two rows of the same second both), in order
    assert [p for p in published if p[0] <= expected[-1][0]] == expected
    # and nothing the meter does not hold
    end = {(t, CODE_NAMES.get(c)) for t, c in observed.held[("limit", meter)].events}
    assert set(published) <= end


def test_quirks_are_named_and_counted_per_meter(observed: Observed, meter: str) -> None:
    """Only the Gurux HLS-GMAC meter has a quirk (its AARE): counted for that meter
    and that quirk; the other meters count none."""
    counted = {
        (m, q): float(v)
        for m, q, v in re.findall(
            r'smmc_protocol_quirks_total\{meter="([^"]+)",quirk="([^"]+)"\} (\S+)', observed.metrics
        )
    }
    mine = {q: v for (m, q), v in counted.items() if m == meter and v > 0}
    if observed.kind == "gurux" and meter == observed.ids[1]:
        assert set(mine) == {"acse-field-length"}, counted
    else:
        assert mine == {}, counted


def test_clock_sync_that_does_not_take_is_not_reported_done(observed: Observed) -> None:
    if observed.faulty_id is None:
        pytest.skip("this peer has no meter whose clock ignores adjustments")
    doc = observed.reply(f"clk-{observed.faulty_id}")
    validate_message(_bytes(doc))
    assert doc["reply"]["result"] == "FAILED", doc
    assert "still off by" in doc["reply"]["errors"][0]["details"], doc
    names = [e["EndDeviceEventType"]["name"] for e in observed.events(observed.faulty_id)]
    assert "smmc.clock.adjusted" not in names and "smmc.clock.syncFailed" in names, names
