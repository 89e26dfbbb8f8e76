"""Which device model fits a discovered meter (use case 1): the identification and the
object list scored against each model, best first, with what does not match.

A model *expects* objects: its OBIS map (less the ones the gateway can do without,
``optional``), its registers, its alarm registers (with filter and descriptor) and its
push setups. The score is the share of those the meter's object list has, with the
right interface class, plus a bonus when the meter's manufacturer FLAG id (the first
three letters of its logical device name, 0.0.42.0.0.255, or of a SAP assignment name)
is one the model names, and a penalty when the model names FLAG ids and the meter's is
none of them. Each candidate reports what the model expects that the meter lacks
(``missing``) and the notable objects the meter has that the model does not use
(``unused``: profile generics, push setups, disconnect control, limiter, alarm
registers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smmc_gateway.ops.config_model import ModelConfig

FLAG_BONUS = 0.5
FLAG_PENALTY = 0.5
NOTABLE_CLASSES = frozenset({7, 40, 70, 71})
ALARM_PREFIX = "0.0.97.98."
MAX_LISTED = 40
"""At most this many missing / unused objects are listed per candidate (counts are
complete)."""


@dataclass(frozen=True)
class Expected:
    name: str
    obis: str
    classes: tuple[int, ...]


@dataclass(frozen=True)
class ModelMatch:
    model: str
    score: float
    flag_id: str | None
    flag_match: bool | None
    """True: the model names the meter's FLAG id; False: it names others; None: it names
    none, or the meter's is unknown."""
    expected: int
    found: int
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    missing_count: int = 0
    unused_count: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "score": round(self.score, 3),
            "flagMatch": self.flag_match,
            "expected": self.expected,
            "found": self.found,
            "missing": list(self.missing),
            "missingCount": self.missing_count,
            "unused": list(self.unused),
            "unusedCount": self.unused_count,
        }


def flag_id(identification: Mapping[str, str], sap_names: Iterable[str] = ()) -> str | None:
    """The manufacturer FLAG id: the first three letters of the logical device name."""
    for name in (identification.get("logicalDeviceName"), *sap_names):
        if name and len(name) >= 3 and name[:3].isalpha() and name[:3].isupper():
            return name[:3]
    return None


def expected_objects(
    model: ModelConfig, classes: Mapping[str, tuple[int, ...]], optional: Collection[str]
) -> list[Expected]:
    """What ``model`` needs the meter to have (``classes``: allowed classes by OBIS name)."""
    out: dict[str, Expected] = {}

    def add(name: str, obis: str | None, allowed: tuple[int, ...]) -> None:
        if obis and obis not in out:
            out[obis] = Expected(name, obis, allowed)

    for name, code in model.obis.items():
        if name not in optional:
            add(name, code, classes.get(name, ()))
    for reg in model.registers:
        add(f"register {reg.name}", reg.obis, (3, 4, 5))
    for alarm in model.alarms:
        add(f"alarm {alarm.key}", alarm.obis, (1,))
        add(f"alarm {alarm.key} filter", alarm.filter_obis, (1,))
        add(f"alarm {alarm.key} descriptor", alarm.descriptor_obis, (1,))
    for push in model.pushes:
        add(f"push {push.key}", push.obis, (40,))
    return list(out.values())


def score(
    model: ModelConfig,
    objects: Mapping[str, int],
    flag: str | None,
    classes: Mapping[str, tuple[int, ...]],
    optional: Collection[str],
) -> ModelMatch:
    """``model`` against a meter's object list (OBIS -> class id) and FLAG id."""
    expected = expected_objects(model, classes, optional)
    missing: list[str] = []
    for e in expected:
        got = objects.get(e.obis)
        if got is None:
            missing.append(f"{e.name} {e.obis}: absent")
        elif e.classes and got not in e.classes:
            missing.append(
                f"{e.name} {e.obis}: class {got}, expected {' or '.join(map(str, e.classes))}"
            )
    used = {e.obis for e in expected} | {o.obis for p in model.pushes for o in p.objects}
    unused = sorted(
        f"class {cid} {code}"
        for code, cid in objects.items()
        if code not in used and (cid in NOTABLE_CLASSES or code.startswith(ALARM_PREFIX))
    )
    found = len(expected) - len(missing)
    value = found / len(expected) if expected else 0.0
    flags = model.identification.flag_ids
    match: bool | None = None
    if flag is not None and flags:
        match = flag in flags
        value += FLAG_BONUS if match else -FLAG_PENALTY
    return ModelMatch(
        model.name,
        value,
        flag,
        match,
        len(expected),
        found,
        missing[:MAX_LISTED],
        unused[:MAX_LISTED],
        len(missing),
        len(unused),
    )


def propose(
    models: Mapping[str, ModelConfig],
    objects: Mapping[str, int],
    identification: Mapping[str, str],
    classes: Mapping[str, tuple[int, ...]],
    optional: Collection[str],
    sap_names: Iterable[str] = (),
) -> list[ModelMatch]:
    """Every model scored, best first (ties: the name)."""
    flag = flag_id(identification, sap_names)
    scored = [score(m, objects, flag, classes, optional) for m in models.values()]
    return sorted(scored, key=lambda s: (-s.score, s.model))
