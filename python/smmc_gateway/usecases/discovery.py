"""Use case 1 — meter registration and discovery: who the meter is and what it has.

:func:`discover` reads, in one association, the Association LN object_list
(0.0.40.0.0.255 attribute 2), then only the identification objects the list names
(Blue Book / IDIS defaults, all Data class 1 attribute 2: device id 1
0.0.96.1.0.255, device id 2 0.0.96.1.1.255, COSEM logical device name 0.0.42.0.0.255,
active firmware identifier 1.0.0.2.0.255 and its signature 1.0.0.2.8.255) and the
clock's time_zone (class 8 attribute 3, minutes local -> UTC) and
daylight_savings_enabled (attribute 8), the SAP assignment (class 17 attribute 2: which
logical device answers at which SAP) and, of every Security setup (class 64) in the list,
security_policy (2), security_suite (3) and server_system_title (5). It compares the
configured model's OBIS codes with the object list: a code the list lacks, or that names
an object of another class, is a *mismatch* when the gateway needs that object
(:data:`OPTIONAL` lists the ones it can do without); so is an alarm register (with its
filter and descriptor) or a push setup of the model the list lacks. It then scores every
shipped device model and the configured one against the identification (the FLAG id,
the first three letters of the logical device name) and the object list
(:mod:`smmc_gateway.models.match`) and proposes the best (``modelProposal``: each
candidate with what it expects that the meter lacks and the notable objects it does not
use). :meth:`Discovery.summary` is the compact JSON body kept in the fleet state and
published as EndDeviceConfig.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.cosem.objects import Clock, SapAssignment, SecuritySetup
from smmc_gateway.cosem.values import text_of
from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.dlms.session import ClientSession
from smmc_gateway.jsonvalue import JsonObject
from smmc_gateway.models.catalog import shipped_models
from smmc_gateway.models.match import ModelMatch, flag_id, propose
from smmc_gateway.ops.config_model import ModelConfig

ASSOCIATION_LN = "0.0.40.0.0.255"
IDENTIFICATION: dict[str, str] = {
    "deviceId": "0.0.96.1.0.255",
    "deviceId2": "0.0.96.1.1.255",
    "logicalDeviceName": "0.0.42.0.0.255",
    "firmwareVersion": "1.0.0.2.0.255",
    "firmwareSignature": "1.0.0.2.8.255",
}
"""Summary key -> Blue Book default OBIS (the model's device_id / firmware_id win)."""

EXPECTED_CLASS: dict[str, tuple[int, ...]] = {
    "clock": (8,),
    "load_profile": (7,),
    "billing_profile": (7,),
    "power_failure_log": (7,),
    "event_log_standard": (7,),
    "event_log_fraud": (7,),
    "event_log_disconnect": (7,),
    "event_log_power_quality": (7,),
    "disconnect_control": (70,),
    "limiter": (71,),
    "image_transfer": (18,),
    "image_activation_schedule": (22,),
    "activity_calendar": (20,),
    "special_days": (11,),
    "association_ln": (15,),
    "security_setup": (64,),
    "device_id": (1,),
    "last_clock_sync": (1, 3, 4),
    "end_of_billing_script": (9,),
    "active_tariff": (1, 3),
    "consumer_message": (1,),
    "push_setup": (40,),
    "voltage_l1": (3, 4, 5),
    "alarm_register": (1,),
    "firmware_id": (1,),
    "consumer_message_code": (1,),
    "charge": (113,),
    "customer_interface": (1,),
}
"""Interface classes a model object may have (Blue Book)."""

OPTIONAL = frozenset(
    {
        "end_of_billing_script",
        "last_clock_sync",
        "consumer_message",
        "security_setup",
        "consumer_message_code",
        "charge",
        "customer_interface",
    }
)
"""Model objects whose absence is not a mismatch: the account move falls back to a
billing-profile capture without the end-of-billing script; no use case reads the last
clock sync; the customer-side objects (consumer message and code, the Charge with the
prices, the customer interface switch: use cases 4 and 8) are needed only by the
EndDeviceControls that write them, which name them when absent; IDIS meters keep one
security setup per association (0.0.43.0.n.255) rather than the Blue Book default
0.0.43.0.0.255.
Listed as ``absentOptional`` in the summary, without an event."""

REGISTER_CLASSES = (3, 4, 5)


@dataclass(frozen=True)
class Mismatch:
    name: str
    obis: str
    problem: str

    def describe(self) -> str:
        return f"{self.name} {self.obis}: {self.problem}"


@dataclass
class Discovery:
    """What one discovery found."""

    meter_id: str
    model: str
    at: datetime
    identification: dict[str, str] = field(default_factory=dict)
    time_zone: int | None = None
    dst_enabled: bool | None = None
    objects: list[tuple[int, int, str]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    absent_optional: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    saps: list[tuple[int, str]] = field(default_factory=list)
    security: list[JsonObject] = field(default_factory=list)
    proposal: list[ModelMatch] = field(default_factory=list)
    """Every candidate model scored, best first."""

    def proposal_summary(self, top: int = 3) -> JsonObject:
        """``modelProposal``: the best model, the configured one's score, the top
        candidates."""
        best = self.proposal[0] if self.proposal else None
        configured = next((m for m in self.proposal if m.model == self.model), None)
        return {
            "flagId": flag_id(self.identification, (n for _, n in self.saps)),
            "best": best.model if best else None,
            "configuredFits": bool(best and configured and configured.score >= best.score),
            "configured": configured.summary() if configured else None,
            "candidates": [m.summary() for m in self.proposal[:top]],
        }

    def summary(self) -> JsonObject:
        """The EndDeviceConfig item (JSON-ready; also what the fleet state keeps)."""
        clock: JsonObject = {}
        if self.time_zone is not None:
            clock["timeZone"] = self.time_zone
        if self.dst_enabled is not None:
            clock["daylightSavingsEnabled"] = self.dst_enabled
        return {
            "EndDevice": {"mRID": self.meter_id},
            "discoveredDateTime": _iso(self.at),
            "model": self.model,
            "identification": dict(self.identification),
            "clock": clock,
            "sapAssignment": [{"sap": sap, "logicalDeviceName": name} for sap, name in self.saps],
            "securitySetups": [dict(x) for x in self.security],
            "objectCount": len(self.objects),
            "objects": [{"classId": c, "version": v, "obis": o} for c, v, o in self.objects],
            "modelMismatch": [
                {"name": m.name, "obis": m.obis, "problem": m.problem} for m in self.mismatches
            ],
            "absentOptional": list(self.absent_optional),
            "unreadable": dict(self.unreadable),
            "modelProposal": self.proposal_summary(),
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def compare(model: ModelConfig, objects: ObjectModel) -> tuple[list[Mismatch], list[str]]:
    """(mismatches, absent optional names) of ``model`` against the meter's object list."""
    mismatches: list[Mismatch] = []
    optional: list[str] = []
    for name, code in model.obis.items():
        if not code:
            continue
        info = objects.get(code)
        if info is None:
            if name in OPTIONAL:
                optional.append(f"{name} {code}")
            else:
                mismatches.append(Mismatch(name, code, "absent from the object list"))
            continue
        allowed = EXPECTED_CLASS.get(name)
        if allowed is not None and info.class_id not in allowed:
            mismatches.append(
                Mismatch(
                    name,
                    code,
                    f"is class {info.class_id} "
                    f"({info.class_name}), expected class "
                    f"{' or '.join(map(str, allowed))}",
                )
            )
    for reg in model.registers:
        info = objects.get(reg.obis)
        if info is None:
            mismatches.append(
                Mismatch(f"register {reg.name}", reg.obis, "absent from the object list")
            )
        elif info.class_id not in REGISTER_CLASSES:
            mismatches.append(
                Mismatch(
                    f"register {reg.name}",
                    reg.obis,
                    f"is class {info.class_id} ({info.class_name}), expected class 3, 4 or 5",
                )
            )
    listed = {m.obis for m in mismatches} | set(model.obis.values())
    for name, code, classes in [
        *(
            (f"alarm {a.key}{what}", c, (1,))
            for a in model.alarms
            for what, c in (
                ("", a.obis),
                (" filter", a.filter_obis),
                (" descriptor", a.descriptor_obis),
            )
            if c
        ),
        *((f"push {p.key}", p.obis, (40,)) for p in model.pushes),
    ]:
        if code in listed:
            continue
        listed.add(code)
        info = objects.get(code)
        if info is None:
            mismatches.append(Mismatch(name, code, "absent from the object list"))
        elif info.class_id not in classes:
            mismatches.append(
                Mismatch(
                    name,
                    code,
                    f"is class {info.class_id} ({info.class_name}), expected class {classes[0]}",
                )
            )
    return mismatches, optional


def propose_models(
    found: Discovery,
    model: ModelConfig,
    objects: ObjectModel,
    candidates: Mapping[str, ModelConfig] | None = None,
) -> list[ModelMatch]:
    """Every candidate (default: the shipped models) and the configured model scored."""
    pool = dict(candidates if candidates is not None else shipped_models())
    pool[model.name] = model  # the configured one as configured (it may override a shipped one)
    by_obis = {str(o.obis): o.class_id for o in objects}
    return propose(
        pool, by_obis, found.identification, EXPECTED_CLASS, OPTIONAL, (n for _, n in found.saps)
    )


async def discover(
    session: ClientSession,
    meter_id: str,
    model: ModelConfig,
    at: datetime,
    candidates: Mapping[str, ModelConfig] | None = None,
) -> Discovery:
    """Object list, identification and time zone of the meter on ``session``, the
    configured model compared and a model proposed (from ``candidates``, default the
    shipped models)."""
    objects = await session.read_object_model()
    found = Discovery(meter_id, model.name, at)
    found.objects = sorted((o.class_id, o.version, str(o.obis)) for o in objects)
    idents = dict(IDENTIFICATION)
    idents["deviceId"] = model.obis.get("device_id") or idents["deviceId"]
    idents["firmwareVersion"] = model.obis.get("firmware_id") or idents["firmwareVersion"]
    for key, code in idents.items():
        info = objects.get(code)
        if info is None or not info.can_read(2):
            continue
        try:
            found.identification[key] = text_of(await session.get(info.class_id, code, 2))
        except DataAccessError as exc:
            found.unreadable[key] = f"{code}: {exc.result or exc}"
    clock = Clock(model.obis.get("clock") or Clock.default_obis)
    info = objects.get(clock.obis)
    if info is not None and info.class_id == Clock.class_id:
        for ref in (clock.time_zone, clock.daylight_savings_enabled):
            if not info.can_read(ref.attribute_id):
                continue
            try:
                value = await session.get(*ref)
            except DataAccessError as exc:
                found.unreadable[f"clock/{ref.attribute_id}"] = f"{clock.obis}: {exc.result or exc}"
                continue
            if ref == clock.time_zone:
                found.time_zone = int(value["value"])
            else:
                found.dst_enabled = bool(value["value"])
    for sap_info in objects.of_class(SapAssignment.class_id):
        saps = SapAssignment(sap_info.obis).sap_assignment_list
        if sap_info.can_read(saps.attribute_id):
            try:
                value = await session.get(*saps)
            except DataAccessError as exc:
                found.unreadable[f"sap/{sap_info.obis}"] = str(exc.result or exc)
            else:
                for entry in value.get("value") or []:
                    sap_v, name_v = entry["value"]
                    found.saps.append((int(sap_v["value"]), text_of(name_v)))
    for sec_info in objects.of_class(SecuritySetup.class_id):
        sec = SecuritySetup(sec_info.obis)
        item: JsonObject = {"obis": sec.obis}
        for ref, key in (
            (sec.security_policy, "securityPolicy"),
            (sec.security_suite, "securitySuite"),
            (sec.server_system_title, "serverSystemTitle"),
        ):
            if not sec_info.can_read(ref.attribute_id):
                continue
            try:
                v = await session.get(*ref)
            except DataAccessError as exc:
                where = f"security/{sec.obis}/{ref.attribute_id}"
                found.unreadable[where] = str(exc.result or exc)
                continue
            item[key] = v["value"] if ref == sec.server_system_title else int(v["value"])
        found.security.append(item)
    found.mismatches, found.absent_optional = compare(model, objects)
    found.proposal = propose_models(found, model, objects, candidates)
    return found
