"""Use cases 14 and 8 (DR part) — the Limiter (class 71): power limitation and emergency profile.

Attributes (Blue Book, class 71 version 0): 2 monitored_value, 3 threshold_active
(read only: the threshold in force now), 4 threshold_normal, 5 threshold_emergency,
6 min_over_threshold_duration and 7 min_under_threshold_duration (double-long-unsigned,
seconds), 8 emergency_profile {id long-unsigned, activation_time date-time (octet-string),
duration double-long-unsigned s}, 9 emergency_profile_group_id_list (array of
long-unsigned), 10 emergency_profile_active (boolean), 11 actions.

:func:`set_limit` writes threshold_normal (4) and the durations (6, 7), then reads 3..7
back and raises :class:`LimiterNotConfirmed` when the meter holds other values than
written. ``off`` writes the largest value of the threshold's type (the limiter can then
never trip). :func:`schedule_emergency` writes threshold_emergency (5), the
emergency profile (8) and adds its id to the group id list (9), then reads them back.
The thresholds are written with the data type the meter reports for threshold_normal
(the Blue Book leaves it to the monitored value's type).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smmc_gateway.cosem.datetime import from_utc, to_utc
from smmc_gateway.dlms.access import AttributeRef, TypedValue
from smmc_gateway.dlms.session import ClientSession

LIMITER_CLASS = 71
_MAX = {"double-long-unsigned": 0xFFFFFFFF, "long-unsigned": 0xFFFF, "unsigned": 0xFF,
        "double-long": 0x7FFFFFFF, "long": 0x7FFF, "long64-unsigned": 2**64 - 1}


class LimiterNotConfirmed(RuntimeError):
    """The values read back differ from those written."""


@dataclass(frozen=True)
class LimiterState:
    threshold_active: int
    threshold_normal: int
    threshold_emergency: int
    min_over_s: int
    min_under_s: int

    def describe(self) -> str:
        return (f"threshold_normal {self.threshold_normal} W, threshold_active "
                f"{self.threshold_active} W, threshold_emergency {self.threshold_emergency} W, "
                f"min_over {self.min_over_s} s, min_under {self.min_under_s} s")


@dataclass(frozen=True)
class EmergencyState:
    profile_id: int
    activation: datetime | None
    duration_s: int
    group_ids: tuple[int, ...]
    threshold_emergency: int
    active: bool

    def describe(self) -> str:
        at = self.activation.isoformat() if self.activation else "unset"
        return (f"emergency profile {self.profile_id} from {at} for {self.duration_s} s, "
                f"threshold_emergency {self.threshold_emergency} W, group ids "
                f"{list(self.group_ids)}, active now {self.active}")


async def read_state(session: ClientSession, obis: str) -> LimiterState:
    values = await session.get_all([(LIMITER_CLASS, obis, a) for a in (3, 4, 5, 6, 7)])
    return LimiterState(*(int(v["value"]) for v in values))


async def _threshold_type(session: ClientSession, obis: str) -> str:
    return str((await session.get(LIMITER_CLASS, obis, 4))["type"])


def off_value(type_name: str) -> int:
    return _MAX.get(type_name, 0xFFFFFFFF)


async def set_limit(session: ClientSession, obis: str, *, threshold_w: int | None,
                    min_over_s: int | None = None, min_under_s: int | None = None,
                    off: bool = False) -> LimiterState:
    """Write what is given (``off``: no limit), read back, confirm; the confirmed state."""
    ttype = await _threshold_type(session, obis)
    wanted: dict[int, int] = {}
    if off:
        wanted[4] = off_value(ttype)
    elif threshold_w is not None:
        wanted[4] = threshold_w
    if min_over_s is not None:
        wanted[6] = min_over_s
    if min_under_s is not None:
        wanted[7] = min_under_s
    await session.set_all(
        [(LIMITER_CLASS, obis, attr) for attr in wanted],
        [{"type": ttype if attr == 4 else "double-long-unsigned", "value": value}
         for attr, value in wanted.items()],
    )
    state = await read_state(session, obis)
    got = {4: state.threshold_normal, 6: state.min_over_s, 7: state.min_under_s}
    wrong = [f"attribute {a}: wrote {v}, read back {got[a]}" for a, v in wanted.items()
             if got[a] != v]
    if wrong:
        raise LimiterNotConfirmed(f"limiter {obis}: " + "; ".join(wrong))
    return state


async def read_emergency(session: ClientSession, obis: str, deviation: int = 0
                         ) -> EmergencyState:
    values = await session.get_all([(LIMITER_CLASS, obis, a) for a in (8, 9, 5, 10)])
    prof = values[0]["value"]
    groups = values[1]["value"] or []
    emergency = int(values[2]["value"])
    active = bool(values[3]["value"])
    activation = to_utc(bytes.fromhex(prof[1]["value"]), default_deviation=deviation)
    return EmergencyState(int(prof[0]["value"]), activation, int(prof[2]["value"]),
                          tuple(int(g["value"]) for g in groups), emergency, active)


async def schedule_emergency(session: ClientSession, obis: str, *, profile_id: int,
                             start: datetime, duration_s: int, threshold_w: int,
                             clock_obis: str = "0.0.1.0.0.255") -> EmergencyState:
    """Emergency threshold ``threshold_w`` from ``start`` for ``duration_s`` (meter's clock);
    read back and confirmed. The activation time is written in the meter's local time with
    its deviation (clock attribute 3)."""
    threshold, time_zone, listed = await session.get_all(
        [(LIMITER_CLASS, obis, 4), (8, clock_obis, 3), (LIMITER_CLASS, obis, 9)])
    ttype, deviation = str(threshold["type"]), int(time_zone["value"])
    stamp = from_utc(start.astimezone(UTC), deviation=deviation)
    refs: list[AttributeRef] = [(LIMITER_CLASS, obis, 5), (LIMITER_CLASS, obis, 8)]
    values: list[TypedValue] = [
        {"type": ttype, "value": threshold_w},
        {"type": "structure", "value": [
            {"type": "long-unsigned", "value": profile_id},
            {"type": "octet-string", "value": stamp.hex()},
            {"type": "double-long-unsigned", "value": duration_s}]},
    ]
    groups = [int(g["value"]) for g in listed["value"] or []]
    if profile_id not in groups:
        groups.append(profile_id)
        refs.append((LIMITER_CLASS, obis, 9))
        values.append({"type": "array", "value": [
            {"type": "long-unsigned", "value": g} for g in groups]})
    await session.set_all(refs, values)
    state = await read_emergency(session, obis, deviation)
    wrong: list[str] = []
    if state.profile_id != profile_id:
        wrong.append(f"emergency_profile.id {state.profile_id} (wrote {profile_id})")
    if state.activation is None or abs(state.activation - start) > timedelta(seconds=1):
        wrong.append(f"emergency_profile.activation_time {state.activation} (wrote {start})")
    if state.duration_s != duration_s:
        wrong.append(f"emergency_profile.duration {state.duration_s} (wrote {duration_s})")
    if profile_id not in state.group_ids:
        wrong.append(f"group id list {list(state.group_ids)} lacks {profile_id}")
    if state.threshold_emergency != threshold_w:
        wrong.append(f"threshold_emergency {state.threshold_emergency} (wrote {threshold_w})")
    if wrong:
        raise LimiterNotConfirmed(f"limiter {obis}: " + "; ".join(wrong))
    return state
