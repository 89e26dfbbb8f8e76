"""[models.NAME.clock]: a device model's clock conventions, parsed and checked."""

from __future__ import annotations

from typing import Any

from smmc_gateway.ops.config_clock import ClockConfig
from smmc_gateway.ops.config_sections import model_section
from smmc_gateway.ops.config_values import Problems


def parse(clock: Any) -> tuple[ClockConfig, list[str]]:
    probs = Problems()
    model = model_section("chile", {"clock": clock}, probs)
    return model.clock, [f"{p.where}: {p.message}" for p in probs.items]


def test_defaults_trust_the_meters_deviation() -> None:
    probs = Problems()
    clock = model_section("plain", {}, probs).clock
    assert probs.items == [] and clock == ClockConfig()
    assert clock.timezone is None and clock.deviation_unspecified == "timezone"
    assert clock.trusted_status == {"invalid", "doubtful", "invalid_status", "dst"}


def test_a_chilean_model() -> None:
    clock, problems = parse(
        {
            "timezone": "America/Santiago",
            "deviation_unspecified": "refuse",
            "standard_time_all_year": True,
            "trust_deviation": False,
            "deviation_sign": "inverted",
            "trusted_status": ["dst"],
        }
    )
    assert problems == []
    assert clock == ClockConfig(
        timezone="America/Santiago",
        deviation_unspecified="refuse",
        standard_time_all_year=True,
        trust_deviation=False,
        deviation_sign="inverted",
        trusted_status=frozenset({"dst"}),
    )


def test_mistakes_are_named_with_their_key() -> None:
    _, problems = parse(
        {
            "timezone": "America/Santiagoo",
            "deviation_unspecified": "local",
            "trusted_status": ["dts"],
            "zone": "x",
        }
    )
    assert problems == [
        'models.chile.clock.zone: unknown key (did you mean "timezone"?); allowed: timezone, '
        "deviation_unspecified, standard_time_all_year, trust_deviation, deviation_sign, "
        "trusted_status",
        'models.chile.clock.timezone: "America/Santiagoo" is not a zone of the tz database '
        '(an IANA name such as "America/Santiago")',
        'models.chile.clock.deviation_unspecified: "local" is not one of timezone | utc | refuse',
        'models.chile.clock.trusted_status[0]: "dts" is not a clock status bit (did you mean '
        '"dst"?); known: invalid, doubtful, invalid_status, dst',
    ]
    _, problems = parse({"standard_time_all_year": True, "trust_deviation": False})
    assert problems == [
        "models.chile.clock.standard_time_all_year: true needs clock.timezone (the zone whose "
        "local time the meter keeps)",
        "models.chile.clock.trust_deviation: false needs clock.timezone (the zone whose local "
        "time the meter keeps)",
    ]
    assert parse("America/Santiago")[1] == ['models.chile.clock: "America/Santiago" is not a table']
