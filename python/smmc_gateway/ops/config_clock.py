"""A device model's clock conventions: ``[models.NAME.clock]``.

How the gateway reads the date-times of a meter family (load profile stamps, the
clock) and how it writes the clock (time sync)::

    [models.chile-3ph.clock]
    timezone = "America/Santiago"     # IANA tz database zone; default none
    deviation_unspecified = "timezone"  # timezone | utc | refuse
    standard_time_all_year = false    # the meter keeps standard time, no summer time
    trust_deviation = true            # false: read local time in `timezone` only
    deviation_sign = "blue-book"      # blue-book | inverted
    trusted_status = ["invalid", "doubtful", "invalid_status", "dst"]

``timezone`` none means: trust the deviation each date-time carries (Blue Book
4.1.6.1: minutes from local time to UTC, UTC = local + deviation, so Chile's
UTC-4 is +240 and summer UTC-3 is +180). ``deviation_unspecified`` says what a
deviation of 0x8000 ("not specified") means: local time of ``timezone`` (the
default; a model without a timezone then refuses such a reading, naming the
setting), UTC, or refuse. ``standard_time_all_year``: the meter's local time is
the zone's standard time all year (it ignores summer time): read so, and time
sync writes standard time with the standard deviation and the DST bit clear.
``trust_deviation = false``: the meter's deviation is ignored and its local time
read in ``timezone`` (meters that send a fixed or stale deviation).
``deviation_sign = "inverted"``: the meter counts the deviation from UTC to local
time (the opposite of the Blue Book, as some national companion standards do).
``trusted_status`` names the clock status bits (Blue Book 4.1.6.1) the gateway
acts on: ``dst`` (bit 7, daylight saving active) tells the two passes of a
repeated local hour apart when the deviation does not; ``invalid`` (bit 0) and
``doubtful`` (bit 1) make a time sync set the whole date-time instead of
shifting a clock that the meter itself says is wrong; ``invalid_status`` (bit 3)
makes the gateway ignore the other bits of that date-time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smmc_gateway.cosem.datetime import CLOCK_STATUS_BITS
from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_values import Problems, Table, join

DeviationUnspecified = Literal["timezone", "utc", "refuse"]
DeviationSign = Literal["blue-book", "inverted"]

#: Clock status bits (Blue Book 4.1.6.1) a model may trust, by name.
STATUS_BITS: dict[str, int] = {
    "invalid": CLOCK_STATUS_BITS["invalid-value"],
    "doubtful": CLOCK_STATUS_BITS["doubtful-value"],
    "invalid_status": CLOCK_STATUS_BITS["invalid-clock-status"],
    "dst": CLOCK_STATUS_BITS["daylight-saving-active"],
}
CLOCK_KEYS = (
    "timezone",
    "deviation_unspecified",
    "standard_time_all_year",
    "trust_deviation",
    "deviation_sign",
    "trusted_status",
)


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """The clock conventions of one device model (see the module docstring)."""

    timezone: str | None = None
    deviation_unspecified: DeviationUnspecified = "timezone"
    standard_time_all_year: bool = False
    trust_deviation: bool = True
    deviation_sign: DeviationSign = "blue-book"
    trusted_status: frozenset[str] = frozenset(STATUS_BITS)

    def trusts(self, bit: str) -> bool:
        return bit in self.trusted_status


def clock_section(value: object, p: str, probs: Problems) -> ClockConfig:
    """``[models.NAME.clock]`` (``p`` is ``models.NAME``); defaults when absent."""
    if value is None:
        return ClockConfig()
    where = join(p, "clock")
    t: Table = v.table(value, where, probs)
    v.check_keys(t, where, CLOCK_KEYS, probs)
    zone = v.get_opt_str(t, "timezone", where, probs)
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            probs.add(
                join(where, "timezone"),
                f"{v.show(zone)} is not a zone of the tz "
                'database (an IANA name such as "America/Santiago")',
            )
            zone = None
    unspecified = v.get_choice(
        t, "deviation_unspecified", where, probs, ("timezone", "utc", "refuse"), "timezone"
    )
    standard = v.get_bool(t, "standard_time_all_year", where, probs, False)
    trust = v.get_bool(t, "trust_deviation", where, probs, True)
    sign = v.get_choice(t, "deviation_sign", where, probs, ("blue-book", "inverted"), "blue-book")
    trusted = set(STATUS_BITS)
    if "trusted_status" in t:
        trusted = set()
        for i, name in enumerate(v.get_str_list(t, "trusted_status", where, probs)):
            if name in STATUS_BITS:
                trusted.add(name)
            else:
                probs.add(
                    join(join(where, "trusted_status"), i),
                    f"{v.show(name)} is not a clock status bit"
                    f"{v.suggest(name, STATUS_BITS)}; known: {', '.join(STATUS_BITS)}",
                )
    if "timezone" not in t or t.get("timezone") is None:
        for key, needs in (("standard_time_all_year", standard), ("trust_deviation", not trust)):
            if needs:
                probs.add(
                    join(where, key),
                    f"{v.show(t[key])} needs clock.timezone (the zone "
                    "whose local time the meter keeps)",
                )
    return ClockConfig(
        timezone=zone,
        deviation_unspecified=cast(DeviationUnspecified, unspecified),
        standard_time_all_year=standard,
        trust_deviation=trust,
        deviation_sign=cast(DeviationSign, sign),
        trusted_status=frozenset(trusted),
    )
