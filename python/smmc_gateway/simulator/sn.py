"""Short-name (SN) referencing in the simulated meter (``simulate --referencing sn``).

An SN meter names every attribute and method with a 16-bit short name; the
association machine (``_core.ServerAssociation`` with ``referencing="sn"``)
turns ReadRequest / WriteRequest back into GET / SET / ACTION of
``CLASS/OBIS/ATTR`` through the table given here, so the meter's objects
answer exactly as with logical names.

* Base names: the meter's objects in their fixed order, 0x100 apart from
  0x0100 (room for every attribute and method of the classes served), so an
  object keeps its short names across clients and runs. The current
  association is Association SN (class 12) at 0xFA00, as in every SN device;
  Association LN objects (class 15) do not exist in an SN meter.
* Each client sees what its association lets it see (the public client the
  public objects), as with the LN object list.
* Class 12, ``0.0.40.0.0.255``: attribute 1 is its logical name, attribute 2
  the object list ``{base_name long, class_id, version, logical_name}``
  per object, attribute 3 the access_rights_list ``{base_name long,
  attribute_access, method_access}`` per object (the same rights as the LN
  object list gives that client); attribute 4 is not served (object-unavailable).
* Pushes go out as InformationReport (0x18): the meter time, the short name
  of each pushed attribute (the push setup's object list) and its value,
  instead of a data-notification (:func:`information_report`).
"""

from __future__ import annotations

from datetime import datetime

from smmc_gateway import _core
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import TypedValue, structure
from smmc_gateway.simulator import services
from smmc_gateway.simulator.acse import association_config
from smmc_gateway.simulator.layout import PUBLIC_OBJECTS
from smmc_gateway.simulator.meter import SimulatedMeter
from smmc_gateway.simulator.objects.association import AssociationLN
from smmc_gateway.simulator.objects.push import PushSetup

SN_CONFORMANCE = (
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "multiple-references",
    "information-report",
    "parameterized-access",
    "read",
    "write",
    "unconfirmed-write",
)
"""What the simulated SN meter offers."""

FIRST_BASE = 0x0100
SPACING = 0x0100
CURRENT_ASSOCIATION = (12, "0.0.40.0.0.255")
ASSOCIATION_LN_CLASS = 15
MAX_OBJECTS = (0xFA00 - FIRST_BASE) // SPACING


def short_names(meter: SimulatedMeter, client: int) -> list[tuple[int, int, int, bytes]]:
    """The SN object list of ``client``: ``(base_name, class_id, version, logical_name)``."""
    public = meter._is_public(client)  # the meter's own visibility rule
    objects = list(meter.objects.items())
    if len(objects) > MAX_OBJECTS:
        raise ValueError(
            f"{len(objects)} objects do not fit the SN base names (at most {MAX_OBJECTS})"
        )
    out: list[tuple[int, int, int, bytes]] = []
    for i, (obis, obj) in enumerate(objects):
        if obj.class_id == ASSOCIATION_LN_CLASS or (public and obis not in PUBLIC_OBJECTS):
            continue
        out.append((FIRST_BASE + SPACING * i, obj.class_id, obj.version, obis.to_bytes()))
    out.append((0xFA00, 12, 0, bytes([0, 0, 40, 0, 0, 255])))
    return out


def machine(meter: SimulatedMeter, cosem: AssociationLN, client: int) -> _core.ServerAssociation:
    """The SN association machine of ``client``: the SN contexts only, its
    object list; HLS-GMAC is not served with short names (every AARQ refused)."""
    if cosem.mechanism == "hls-gmac":
        refusing = _core.ServerAssociation(_core.AssociationConfig(referencing="sn"))
        refusing.refuse_all(f"client {client}: HLS-GMAC is not served with short names")
        return refusing
    assoc = _core.ServerAssociation(association_config(meter, cosem, SN_CONFORMANCE, "sn"))
    assoc.set_short_names(short_names(meter, client))
    return assoc


def answer(
    assoc: _core.ServerAssociation,
    event: _core.Request,
    meter: SimulatedMeter,
    client: int,
    now: datetime,
) -> None:
    """Answer one request of an SN association (class 12 served here)."""
    request = event.request
    if not isinstance(request, _core.GetRequest):
        services.answer(assoc, event, meter, client, now)
        return
    results: list[bytes | str] = []
    for a in request.attributes:
        if (a.class_id, str(a.obis)) == CURRENT_ASSOCIATION:
            results.append(_association(assoc, meter, client, a.attribute_id))
        else:
            results.append(services._read(meter, a, client, now))
    assoc.respond_get(event.id, results)


def _association(
    assoc: _core.ServerAssociation, meter: SimulatedMeter, client: int, attribute: int
) -> bytes | str:
    if attribute == 1:
        return _core.encode({"type": "octet-string", "value": "0000280000ff"})
    if attribute == 2:
        return assoc.sn_object_list()
    if attribute == 3:
        return _core.encode(access_rights(meter, client))
    return "object-unavailable"


def access_rights(meter: SimulatedMeter, client: int) -> TypedValue:
    """Association SN attribute 3: per object its base name and the rights of
    the LN object list entry (attribute and method access)."""
    bases = {(c, ln): b for b, c, _v, ln in short_names(meter, client)}
    rights = []
    for entry in meter.object_list(client)["value"]:
        class_v, _version, ln_v, access = entry["value"]
        base = bases.get((class_v["value"], bytes.fromhex(ln_v["value"])))
        if base is None:
            continue
        attributes, methods = access["value"]
        base_v: TypedValue = {"type": "long", "value": base - 0x10000 if base >= 0x8000 else base}
        rights.append(structure([base_v, attributes, methods]))
    return {"type": "array", "value": rights}


def information_report(meter: SimulatedMeter, setup: Obis, stamp: bytes, body: TypedValue) -> bytes:
    """The InformationReport of one push: the short names of the push setup's
    objects (as the management client sees them) with the pushed values."""
    push = meter.objects[setup]
    if not isinstance(push, PushSetup):
        raise ValueError(f"{setup} is not a push setup")
    bases = {(c, ln): b for b, c, _v, ln in short_names(meter, meter.options.management_client)}
    names = []
    for o in push.objects:
        base = bases.get((o.class_id, o.obis.to_bytes()))
        if base is None:
            raise ValueError(f"push {setup}: {o.class_id}/{o.obis} has no short name")
        names.append({"access": "variable-name", "name": base + 8 * (o.attribute - 1)})
    values = body["value"]
    return _core.encode_apdu(
        {
            "apdu": "information-report-request",
            "current_time": stamp or None,
            "variables": names,
            "data_raw": [_core.encode(v) for v in values],
        }
    )
