"""Use case 2 against the simulator: profile by range from the last entry, registers, gaps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.ops.config_model import DEFAULT_OBIS, ModelConfig, RegisterSpec
from smmc_gateway.uplink.envelope import meter_readings_payload
from smmc_gateway.usecases.readings import ReadingsUseCase, find_gaps, registers_for
from test_usecase_support import session_to
from uplink_helpers import validate

from tests.support_sim import FleetSpec, running_fleet

MODEL = ModelConfig(
    name="default",
    obis=dict(DEFAULT_OBIS),
    capture_period_s=900,
    registers=(
        RegisterSpec("1.0.1.8.0.255", "active_energy_import", None, None),
        RegisterSpec("1.0.2.8.0.255", "active_energy_export", 0, "Wh"),
    ),
)


async def test_first_collection_then_resume_from_the_last_entry() -> None:
    uc = ReadingsUseCase(first_read_s=6 * 3600)
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        now = datetime.now(UTC)
        first = await uc.collect(s, "m", MODEL, None, now)
        p = first.profile
        assert p is not None and p.newest is not None
        assert 22 <= p.rows <= 25  # six hours of 15-minute rows
        assert now - timedelta(minutes=16) < p.newest <= now
        assert p.gaps == []
        doc = json.loads(
            meter_readings_payload(
                [
                    {
                        "meter": "m",
                        "readings": first.readings,
                        "interval_blocks": p.interval_blocks or b"",
                    }
                ]
            )
        )
        validate(doc, "meter-readings")
        blocks = doc["MeterReading"][0]["IntervalBlocks"]
        assert {b["ReadingType"]["obis"] for b in blocks} >= {"1.0.1.8.0.255"}
        assert all(len(b["IntervalReadings"]) == p.rows for b in blocks)
        # every block in the IEC 61968-9 code, the 15-minute capture period as measuring
        # period (2), OBIS and unit beside; A+ sampled: bulk (1), forward (1), energy, Wh
        by_obis = {b["ReadingType"]["obis"]: b["ReadingType"] for b in blocks}
        assert by_obis["1.0.1.8.0.255"] == {
            "ref": "0.0.2.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0",
            "obis": "1.0.1.8.0.255",
            "unit": "Wh",
        }
        for rt in by_obis.values():
            assert rt["ref"] == reading_type(rt["obis"], rt["unit"], measuring_period_s=900)
        assert len({rt["ref"] for rt in by_obis.values()}) == len(by_obis)  # one code each
        regs = {r["obis"]: r for r in first.readings}
        assert regs["1.0.1.8.0.255"]["unit"] == "Wh"  # scaler/unit read from attribute 3
        assert isinstance(regs["1.0.1.8.0.255"]["value"], int | float)
        rendered = {
            r["ReadingType"]["obis"]: r["ReadingType"] for r in doc["MeterReading"][0]["Readings"]
        }
        assert rendered["1.0.2.8.0.255"] == {  # a register read: no measuring period
            "ref": "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.0.72.0",
            "obis": "1.0.2.8.0.255",
            "unit": "Wh",
            "name": "active_energy_export",
        }

        # the next collection starts after the newest stored entry: no row twice
        again = await uc.collect(s, "m", MODEL, p.newest, now + timedelta(minutes=1))
        assert again.profile is not None and again.profile.rows == 0


async def test_backfill_after_an_outage_of_the_gateway() -> None:
    uc = ReadingsUseCase()
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        now = datetime.now(UTC)
        since = (now - timedelta(hours=10)).replace(minute=0, second=0, microsecond=0)
        r = await uc.read_profile(s, MODEL, since, now)
        assert r.newest is not None and r.gaps == []
        expected = int((r.newest - since) / timedelta(minutes=15))
        assert r.rows == expected


def test_find_gaps_reports_missing_intervals() -> None:
    t0 = datetime(2026, 11, 27, tzinfo=UTC)
    q = timedelta(minutes=15)
    stamps = [t0, t0 + q, t0 + 4 * q, t0 + 5 * q]
    gaps = find_gaps(stamps, 900, since=t0 - 2 * q)
    assert [(g.start, g.end, g.missing) for g in gaps] == [
        (t0 - q, t0, 1),
        (t0 + 2 * q, t0 + 4 * q, 2),
    ]
    assert find_gaps([t0, t0 + q], 900) == []


def test_registers_for_an_ad_hoc_obis_list() -> None:
    regs = registers_for(MODEL, ["1.0.2.8.0.255", "1.0.32.7.0.255"])
    assert regs[0].name == "active_energy_export" and regs[0].scaler == 0
    assert regs[1].obis == "1.0.32.7.0.255" and regs[1].scaler is None
    assert regs[1].name == ""  # no configured name: the reading carries none


async def test_ad_hoc_and_unknown_registers_get_codes_never_errors() -> None:
    """On-demand registers outside the model, even an OBIS no table knows, are read and
    published with a well-formed 18-part code (the documented fallback)."""
    uc = ReadingsUseCase()
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        got = await uc.read_registers(
            s, registers_for(MODEL, ["1.0.32.7.0.255", "1.0.1.8.0.255"]), datetime.now(UTC)
        )
    doc = json.loads(meter_readings_payload([{"meter": "m", "readings": got}]))
    validate(doc, "meter-readings")
    rts = {r["ReadingType"]["obis"]: r["ReadingType"] for r in doc["MeterReading"][0]["Readings"]}
    assert "name" not in rts["1.0.32.7.0.255"]
    assert rts["1.0.32.7.0.255"]["ref"] == "0.0.0.12.0.1.54.0.0.0.0.0.0.0.129.0.29.0"  # V L1-N
    assert rts["1.0.1.8.0.255"]["name"] == "active_energy_import"
    assert registers_for(MODEL, None) == list(MODEL.registers)
