"""A meter's date-times under its model's clock conventions (``[models.NAME.clock]``).

:class:`MeterClock` turns the 12-byte COSEM date-times a meter sends (load profile
stamps, its clock) into UTC instants, and builds the date-time a time sync writes,
following :class:`~smmc_gateway.ops.config_clock.ClockConfig`:

* a date-time with a deviation is ``local + deviation`` (Blue Book 4.1.6.1: the
  deviation is in minutes *from local time to UTC*, so Chile's UTC-4 is +240 and
  its summer time UTC-3 is +180), unless the model distrusts the meter's deviation
  or counts it the other way round (``deviation_sign = "inverted"``);
* a date-time without one (0x8000) is local time of the model's zone (the tz
  database through ``zoneinfo``), UTC, or refused, as the model says. A local time
  the zone repeats (Chile: 23:00-23:59 on the Saturday clocks go back, 24:00 ->
  23:00) is told apart by the DST clock status bit when the model trusts it, else
  by order: the first pass is the earlier instant, a stamp after one of the first
  pass is the second. A local time the zone skips (Chile: 24:00 -> 01:00 in
  September) is read with the offset before the jump (a meter that has not yet
  switched);
* a meter keeping standard time all year has its local time read, and written,
  with the zone's standard deviation and the DST bit clear.

A load profile whose stamps need any of this is rewritten (:meth:`MeterClock.normalise`)
before the core turns it into IntervalBlocks: each clock cell becomes the UTC
date-time it means (deviation 0), entries without a time stamp (compact profiles:
null-data) become the previous entry's instant plus the capture period, so the
stamps are right across both yearly transitions. Profiles whose stamps all carry a
trusted deviation are left to the core untouched (its own arithmetic is in UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from smmc_gateway import _core
from smmc_gateway.cosem.datetime import (
    CosemDateTime,
    pack_datetime,
    unpack_datetime,
)
from smmc_gateway.dlms.errors import ProtocolError
from smmc_gateway.ops.config_clock import STATUS_BITS, ClockConfig

DST_BIT = STATUS_BITS["dst"]


class ClockConventionError(ProtocolError):
    """A meter's date-time that the model's clock conventions cannot place in UTC
    (a deviation 'not specified' the model refuses or has no time zone for)."""


def _minutes(delta: timedelta | None) -> int:
    return int((delta or timedelta()).total_seconds() // 60)


class MeterClock:
    """The clock conventions of one model, applied."""

    def __init__(self, config: ClockConfig | None = None, model: str = "") -> None:
        self.config = config or ClockConfig()
        self.model = model or "?"
        self.zone = ZoneInfo(self.config.timezone) if self.config.timezone else None

    # ------------------------------------------------------------------ reading
    @property
    def rewrites_every_stamp(self) -> bool:
        """Whether even stamps with a deviation need this class (not the core)."""
        return not self.config.trust_deviation or self.config.deviation_sign == "inverted"

    def _trusted(self, status: int | None) -> int | None:
        """The status bits the model trusts (None: none to trust)."""
        if status is None:
            return None
        if self.config.trusts("invalid_status") and status & STATUS_BITS["invalid_status"]:
            return None
        mask = sum(bit for name, bit in STATUS_BITS.items() if self.config.trusts(name))
        return status & mask

    def _deviation(self, fields: CosemDateTime) -> int | None:
        dev = fields.deviation
        if dev is not None and self.config.deviation_sign == "inverted":
            dev = -dev
        return dev

    def to_utc(self, fields: CosemDateTime, after: datetime | None = None) -> datetime:
        """The UTC instant of a meter date-time; ``after`` is the instant of the entry
        before it (the order that tells the two passes of a repeated hour apart)."""
        local = fields.to_datetime()
        if local is None:
            raise ClockConventionError(
                f"model {self.model}: a date-time with unspecified fields is not an instant"
            )
        naive = local.replace(tzinfo=None)
        dev = self._deviation(fields)
        if dev is not None and self.config.trust_deviation:
            return (naive + timedelta(minutes=dev)).replace(tzinfo=UTC)
        if dev is None:
            mode = self.config.deviation_unspecified
            if mode == "refuse":
                raise ClockConventionError(
                    f"model {self.model}: the meter's date-time {naive.isoformat()} has its "
                    "deviation not specified (0x8000) and [models."
                    f'{self.model}.clock] deviation_unspecified = "refuse"'
                )
            if mode == "utc":
                return naive.replace(tzinfo=UTC)
            if self.zone is None:
                raise ClockConventionError(
                    f"model {self.model}: the meter's date-time {naive.isoformat()} has its "
                    "deviation not specified (0x8000) and the model has no time zone: set "
                    f'[models.{self.model}.clock] timezone (e.g. "America/Santiago"), or '
                    'deviation_unspecified = "utc" for meters that keep UTC'
                )
        return self._in_zone(naive, self._trusted(fields.clock_status), after)

    def stamp_to_utc(self, value: datetime, after: datetime | None = None) -> datetime:
        """A stamp the core decoded (aware when the meter gave a deviation, naive when it
        was 0x8000) as UTC under the model's conventions: what event-log and billing rows
        need. An aware stamp is taken as it is unless the model distrusts or inverts the
        deviation, which needs the raw bytes (:meth:`normalise`)."""
        if value.tzinfo is not None and not self.rewrites_every_stamp:
            return value.astimezone(UTC)
        naive = value.replace(tzinfo=None)
        if value.tzinfo is not None:  # deviation given but not to be trusted as given
            return self._in_zone(naive, None, after)
        mode = self.config.deviation_unspecified
        if mode == "refuse":
            raise ClockConventionError(
                f"model {self.model}: the meter's date-time {naive.isoformat()} has its "
                f"deviation not specified (0x8000) and [models.{self.model}.clock] "
                'deviation_unspecified = "refuse"'
            )
        if mode == "utc":
            return naive.replace(tzinfo=UTC)
        if self.zone is None:
            raise ClockConventionError(
                f"model {self.model}: the meter's date-time {naive.isoformat()} has its "
                "deviation not specified (0x8000) and the model has no time zone: set "
                f'[models.{self.model}.clock] timezone (e.g. "America/Santiago"), or '
                'deviation_unspecified = "utc" for meters that keep UTC'
            )
        return self._in_zone(naive, None, after)

    def _in_zone(self, naive: datetime, status: int | None, after: datetime | None) -> datetime:
        zone = self.zone
        if zone is None:
            raise ClockConventionError(
                f"model {self.model}: the meter's deviation is not trusted and the model has "
                f"no time zone to read its local time in; set [models.{self.model}.clock] "
                "timezone"
            )
        if self.config.standard_time_all_year:
            probe = naive.replace(tzinfo=zone)
            standard = _minutes(probe.utcoffset()) - _minutes(probe.dst())
            return (naive - timedelta(minutes=standard)).replace(tzinfo=UTC)
        first, second = (naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
        repeated = first != second and all(
            c.astimezone(zone).replace(tzinfo=None) == naive for c in (first, second)
        )
        if not repeated:
            return first  # unambiguous, or skipped: the offset before the jump
        if status is not None and self.config.trusts("dst"):
            summer = bool(status & DST_BIT)
            return next(c for c in (first, second) if bool(c.astimezone(zone).dst()) == summer)
        if after is not None and first <= after:
            return second
        return first

    def needs_rewrite(self, stamps: Sequence[Any]) -> bool:
        """Whether a profile whose decoded clock column is ``stamps`` must go through
        :meth:`normalise` (a stamp without deviation, or a distrusted deviation)."""
        if self.rewrites_every_stamp:
            return True
        return any(isinstance(s, datetime) and s.tzinfo is None for s in stamps)

    def normalise(self, raw: bytes, clock_index: int, period_s: int) -> bytes:
        """The profile buffer ``raw`` with every clock cell the UTC date-time it means
        (deviation 0, the meter's status byte kept) and no entry without one."""
        tree = _core.decode(raw)
        if tree.get("type") not in ("array", "compact-array"):
            raise ClockConventionError(
                f"model {self.model}: a profile buffer is an array, not a {tree.get('type')}"
            )
        prev: datetime | None = None
        step = timedelta(seconds=period_s)
        for i, entry in enumerate(tree["value"]):
            cells = entry.get("value")
            if not isinstance(cells, list) or clock_index >= len(cells):
                raise ClockConventionError(
                    f"model {self.model}: profile entry {i} has no column {clock_index} (the clock)"
                )
            cell = cells[clock_index]
            kind = cell.get("type")
            status: int | None = 0
            if kind == "null-data":
                if prev is None or period_s <= 0:
                    raise ClockConventionError(
                        f"model {self.model}: profile entry {i} has no time stamp and no "
                        "previous entry and capture period to derive it from"
                    )
                instant = prev + step
            elif kind in ("octet-string", "date-time") and len(str(cell["value"])) == 24:
                fields = unpack_datetime(bytes.fromhex(cell["value"]))
                instant = self.to_utc(fields, prev)
                status = fields.clock_status
            else:
                raise ClockConventionError(
                    f"model {self.model}: profile entry {i}: the clock "
                    f"column holds a {kind}, not a date-time"
                )
            cells[clock_index] = {
                "type": kind if kind != "null-data" else "octet-string",
                "value": _utc_bytes(instant, status).hex(),
            }
            prev = instant
        return _core.encode(tree)

    # ------------------------------------------------------------------ writing
    def range_bound(self, instant: datetime) -> datetime:
        """A range-selection bound as the meter keeps time: local time of the model's
        zone with its deviation (meters compare the local fields), else UTC."""
        if self.zone is None:
            return instant.astimezone(UTC)
        if self.config.standard_time_all_year:
            local = instant.astimezone(self.zone)
            standard = _minutes(local.utcoffset()) - _minutes(local.dst())
            return instant.astimezone(timezone(timedelta(minutes=standard)))
        return instant.astimezone(self.zone)

    def clock_bytes(self, target: datetime, meter: CosemDateTime | None) -> bytes:
        """The 12 bytes a time sync writes for the true instant ``target``: local time,
        the deviation and the DST status bit of that instant under the model's
        conventions (``meter``: the date-time the meter last reported, for a model
        without a zone, which keeps the meter's own deviation and DST bit)."""
        target = target.astimezone(UTC)
        status = 0
        if self.zone is not None:
            local = target.astimezone(self.zone)
            dev = -_minutes(local.utcoffset())
            if self.config.standard_time_all_year:
                dev += _minutes(local.dst())
            elif local.dst():
                status = DST_BIT
        else:
            raw_dev = None if meter is None else self._deviation(meter)
            if raw_dev is None:
                if self.config.deviation_unspecified != "utc":
                    raise ClockConventionError(
                        f"model {self.model}: not setting the clock: the meter's deviation is "
                        "not specified (0x8000) and the model has no time zone to write its "
                        f"local time in; set [models.{self.model}.clock] timezone"
                    )
                return pack_datetime(target.replace(tzinfo=None), deviation=None, clock_status=0)
            dev = raw_dev
            trusted = self._trusted(meter.clock_status if meter else None)
            if trusted is not None and self.config.trusts("dst") and trusted & DST_BIT:
                status = DST_BIT
        local_fields = (target - timedelta(minutes=dev)).replace(tzinfo=None)
        written = -dev if self.config.deviation_sign == "inverted" else dev
        return pack_datetime(local_fields, deviation=written, clock_status=status)

    def clock_doubtful(self, fields: CosemDateTime) -> bool:
        """The meter itself says its clock is invalid or doubtful (trusted bits)."""
        status = self._trusted(fields.clock_status)
        return status is not None and bool(
            status & (STATUS_BITS["invalid"] | STATUS_BITS["doubtful"])
        )


def _utc_bytes(instant: datetime, status: int | None) -> bytes:
    naive = instant.astimezone(UTC).replace(tzinfo=None)
    return pack_datetime(naive, deviation=0, clock_status=status)


__all__ = ["ClockConventionError", "MeterClock"]
