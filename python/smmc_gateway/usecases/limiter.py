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
(the Blue Book leaves it to the monitored value's type), and in the unit and scaler of
the monitored value (:class:`LimiterScale`): the device model declares them
(``[models.NAME.values.limiter_threshold] unit, scaler``) or says to read them
(``scaler_from = "monitored"``: attribute 2 names the monitored value, whose
scaler_unit, attribute 3, is read). Requests are in watts; a meter whose monitored value
is not in W (an apparent power in VA, a current in A) is refused with
:class:`LimiterUnitError` rather than written a number in the wrong unit. Thresholds in
:class:`LimiterState` and :class:`EmergencyState` are in W (rounded to the whole watt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smmc_gateway.cosem.datetime import from_utc, to_utc
from smmc_gateway.cosem.objects import Clock, Limiter
from smmc_gateway.cosem.units import unit_name
from smmc_gateway.cosem.values import TypedValue
from smmc_gateway.dlms.access import AttributeRef
from smmc_gateway.dlms.session import ClientSession
from smmc_gateway.ops.config_model import ModelConfig

LIMITER_CLASS = Limiter.class_id
_STATE = (
    "threshold_active",
    "threshold_normal",
    "threshold_emergency",
    "min_over_threshold_duration",
    "min_under_threshold_duration",
)


def _state_refs(obis: str) -> list[AttributeRef]:
    """Attributes 3..7 of limiter ``obis``: the thresholds and the two durations."""
    lim = Limiter(obis)
    return [getattr(lim, name) for name in _STATE]


_MAX = {
    "double-long-unsigned": 0xFFFFFFFF,
    "long-unsigned": 0xFFFF,
    "unsigned": 0xFF,
    "double-long": 0x7FFFFFFF,
    "long": 0x7FFF,
    "long64-unsigned": 2**64 - 1,
}


class LimiterNotConfirmed(RuntimeError):
    """The values read back differ from those written."""


class LimiterUnitError(LimiterNotConfirmed):
    """The threshold cannot be written in the unit the meter expects (nothing written)."""


SCALER_CLASSES = (3, 4, 5)  # Register, Extended register, Demand register: scaler_unit = 3


@dataclass(frozen=True)
class LimiterScale:
    """The unit and scaler of the limiter's thresholds (those of its monitored value)."""

    scaler: int = 0
    unit: str = "W"
    origin: str = "default"
    """Where they came from: ``model`` (declared), the monitored value's OBIS, or
    ``default`` (no model: whole watts)."""

    def to_meter(self, watts: int) -> int:
        """``watts`` in the meter's unit (rounded to its resolution)."""
        factor = int(10 ** abs(self.scaler))
        return round(watts / factor) if self.scaler >= 0 else watts * factor

    def to_watts(self, raw: int) -> int:
        factor = int(10 ** abs(self.scaler))
        return raw * factor if self.scaler >= 0 else round(raw / factor)


async def threshold_scale(
    session: ClientSession, obis: str, model: ModelConfig | None
) -> LimiterScale:
    """The scale of limiter ``obis``'s thresholds per ``model`` (see the module doc)."""
    spec = model.values.get("limiter_threshold") if model is not None else None
    if spec is None:
        return LimiterScale()
    if spec.scaler_from is None and spec.scaler is not None and spec.unit is not None:
        scale = LimiterScale(spec.scaler, spec.unit, "model")
    else:
        monitored = (await session.get(*Limiter(obis).monitored_value))["value"]
        class_id, ln = int(monitored[0]["value"]), monitored[1]["value"]
        code = ".".join(str(b) for b in bytes.fromhex(str(ln)))
        if class_id not in SCALER_CLASSES:
            raise LimiterUnitError(
                f"limiter {obis}: its monitored value {code} is class {class_id}, which has "
                f"no scaler_unit; declare [models.{model.name if model else '?'}.values."
                "limiter_threshold] scaler and unit"
            )
        su = (await session.get(class_id, code, 3))["value"]
        unit_code = int(su[1]["value"])
        scale = LimiterScale(int(su[0]["value"]), unit_name(unit_code), code)
    if scale.unit != "W":
        raise LimiterUnitError(
            f"limiter {obis}: the meter compares its thresholds with a value in "
            f"{scale.unit} (scaler {scale.scaler}, from {scale.origin}); a limit in W cannot "
            "be written to it: nothing was written"
        )
    return scale


@dataclass(frozen=True)
class LimiterState:
    threshold_active: int
    threshold_normal: int
    threshold_emergency: int
    min_over_s: int
    min_under_s: int

    def describe(self) -> str:
        return (
            f"threshold_normal {self.threshold_normal} W, threshold_active "
            f"{self.threshold_active} W, threshold_emergency {self.threshold_emergency} W, "
            f"min_over {self.min_over_s} s, min_under {self.min_under_s} s"
        )


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
        return (
            f"emergency profile {self.profile_id} from {at} for {self.duration_s} s, "
            f"threshold_emergency {self.threshold_emergency} W, group ids "
            f"{list(self.group_ids)}, active now {self.active}"
        )


async def read_state(
    session: ClientSession, obis: str, scale: LimiterScale | None = None
) -> LimiterState:
    """Attributes 3..7, thresholds in W (per ``scale``; default whole watts)."""
    sc = scale or LimiterScale()
    values = [int(v["value"]) for v in await session.get_all(_state_refs(obis))]
    return LimiterState(
        sc.to_watts(values[0]), sc.to_watts(values[1]), sc.to_watts(values[2]), values[3], values[4]
    )


async def _threshold_type(session: ClientSession, obis: str) -> str:
    return str((await session.get(*Limiter(obis).threshold_normal))["type"])


def off_value(type_name: str) -> int:
    return _MAX.get(type_name, 0xFFFFFFFF)


async def set_limit(
    session: ClientSession,
    obis: str,
    *,
    threshold_w: int | None,
    min_over_s: int | None = None,
    min_under_s: int | None = None,
    off: bool = False,
    model: ModelConfig | None = None,
) -> LimiterState:
    """Write what is given (``off``: no limit; the threshold in the unit and scaler
    ``model`` says), read back, confirm; the confirmed state."""
    try:
        scale = await threshold_scale(session, obis, model)
    except LimiterUnitError:
        if threshold_w is not None and not off:
            raise
        scale = LimiterScale()  # "off" and the durations carry no unit
    ttype = await _threshold_type(session, obis)
    wanted: dict[int, int] = {}
    if off:
        wanted[4] = off_value(ttype)
    elif threshold_w is not None:
        wanted[4] = scale.to_meter(threshold_w)
    if min_over_s is not None:
        wanted[6] = min_over_s
    if min_under_s is not None:
        wanted[7] = min_under_s
    await session.set_all(
        [(LIMITER_CLASS, obis, attr) for attr in wanted],
        [
            {"type": ttype if attr == 4 else "double-long-unsigned", "value": value}
            for attr, value in wanted.items()
        ],
    )
    raw = [int(v["value"]) for v in await session.get_all(_state_refs(obis))]
    got = {4: raw[1], 6: raw[3], 7: raw[4]}
    wrong = [
        f"attribute {a}: wrote {v}, read back {got[a]}" for a, v in wanted.items() if got[a] != v
    ]
    if wrong:
        raise LimiterNotConfirmed(f"limiter {obis}: " + "; ".join(wrong))
    return LimiterState(
        scale.to_watts(raw[0]), scale.to_watts(raw[1]), scale.to_watts(raw[2]), raw[3], raw[4]
    )


async def read_emergency(
    session: ClientSession, obis: str, deviation: int = 0, scale: LimiterScale | None = None
) -> EmergencyState:
    lim = Limiter(obis)
    values = await session.get_all(
        [
            lim.emergency_profile,
            lim.emergency_profile_group_id_list,
            lim.threshold_emergency,
            lim.emergency_profile_active,
        ]
    )
    prof = values[0]["value"]
    groups = values[1]["value"] or []
    emergency = (scale or LimiterScale()).to_watts(int(values[2]["value"]))
    active = bool(values[3]["value"])
    activation = to_utc(bytes.fromhex(prof[1]["value"]), default_deviation=deviation)
    return EmergencyState(
        int(prof[0]["value"]),
        activation,
        int(prof[2]["value"]),
        tuple(int(g["value"]) for g in groups),
        emergency,
        active,
    )


async def schedule_emergency(
    session: ClientSession,
    obis: str,
    *,
    profile_id: int,
    start: datetime,
    duration_s: int,
    threshold_w: int,
    clock_obis: str = "0.0.1.0.0.255",
    model: ModelConfig | None = None,
) -> EmergencyState:
    """Emergency threshold ``threshold_w`` from ``start`` for ``duration_s`` (meter's clock);
    read back and confirmed. The activation time is written in the meter's local time with
    its deviation (clock attribute 3); the threshold in the unit and scaler ``model``
    says."""
    scale = await threshold_scale(session, obis, model)
    lim = Limiter(obis)
    threshold, time_zone, listed = await session.get_all(
        [lim.threshold_normal, Clock(clock_obis).time_zone, lim.emergency_profile_group_id_list]
    )
    ttype, deviation = str(threshold["type"]), int(time_zone["value"])
    stamp = from_utc(start.astimezone(UTC), deviation=deviation)
    refs: list[AttributeRef] = [lim.threshold_emergency, lim.emergency_profile]
    values: list[TypedValue] = [
        {"type": ttype, "value": scale.to_meter(threshold_w)},
        {
            "type": "structure",
            "value": [
                {"type": "long-unsigned", "value": profile_id},
                {"type": "octet-string", "value": stamp.hex()},
                {"type": "double-long-unsigned", "value": duration_s},
            ],
        },
    ]
    groups = [int(g["value"]) for g in listed["value"] or []]
    if profile_id not in groups:
        groups.append(profile_id)
        refs.append(lim.emergency_profile_group_id_list)
        values.append(
            {"type": "array", "value": [{"type": "long-unsigned", "value": g} for g in groups]}
        )
    await session.set_all(refs, values)
    state = await read_emergency(session, obis, deviation, scale)
    wrong: list[str] = []
    if state.profile_id != profile_id:
        wrong.append(f"emergency_profile.id {state.profile_id} (wrote {profile_id})")
    if state.activation is None or abs(state.activation - start) > timedelta(seconds=1):
        wrong.append(f"emergency_profile.activation_time {state.activation} (wrote {start})")
    if state.duration_s != duration_s:
        wrong.append(f"emergency_profile.duration {state.duration_s} (wrote {duration_s})")
    if profile_id not in state.group_ids:
        wrong.append(f"group id list {list(state.group_ids)} lacks {profile_id}")
    if state.threshold_emergency != scale.to_watts(scale.to_meter(threshold_w)):
        wrong.append(
            f"threshold_emergency {state.threshold_emergency} W (wrote "
            f"{scale.to_meter(threshold_w)} x 10^{scale.scaler} W)"
        )
    if wrong:
        raise LimiterNotConfirmed(f"limiter {obis}: " + "; ".join(wrong))
    return state
