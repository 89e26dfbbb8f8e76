"""Short-name (SN) referencing for the client session.

The protocol is the Rust association machine's (``rust/src/assoc/sn_*.rs``):
with ``referencing="sn"`` the same ``get``/``set``/``action`` calls travel as
ReadRequest / WriteRequest on 16-bit short names. This module is the glue:

* :func:`associate` opens the association with the configured referencing;
  with ``auto`` an AARE refusing the LN context (diagnostic
  ``application-context-name-not-supported``, 2) is followed by a second
  association with the SN context on the same link (a rejected AARQ leaves
  the link up and the association idle), logged (``referencing_fallback``);
  the meter is then remembered as SN, so its next sessions start with SN.
* :func:`load_short_names` reads the current association's object list
  (Association SN, class 12, ``0.0.40.0.0.255``, attribute 2, short name
  0xFA08; in blocks when long) and installs it in the machine, so the user
  still writes ``CLASS/OBIS/ATTR``. The list is kept per meter id for the
  life of the process (a meter's short names are fixed by its firmware);
  :func:`forget_short_names` drops it (e.g. after a firmware upgrade).
* :func:`write_unconfirmed` sends an UnconfirmedWriteRequest (SN only; the
  meter answers nothing, so nothing says whether it took the value).
* :func:`read_object_model` is ``ClientSession.read_object_model`` for SN:
  the object list with the rights of Association SN attribute 3
  (access_rights_list, per base name; objects it does not list, or all when
  the meter does not serve it, have no known rights).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import structlog

from smmc_gateway import _core
from smmc_gateway.cosem.model import ObjectListError, ObjectModel
from smmc_gateway.cosem.values import TypedValue, array, structure
from smmc_gateway.dlms.driver import Driver
from smmc_gateway.dlms.errors import AssociationRefused, DataAccessError, ProtocolError

if TYPE_CHECKING:
    from smmc_gateway.dlms.association import SessionSettings
    from smmc_gateway.dlms.client import ClientSession
    from smmc_gateway.dlms.stream import Transport

log = structlog.get_logger("smmc_gateway.dlms")

OBJECT_LIST = (12, "0.0.40.0.0.255", 2)
"""Association SN, current association, object_list."""

CONTEXT_REFUSALS = frozenset({"application-context-name-not-supported", "2"})
"""AARE diagnostics that mean "not this application context"."""

_cache: dict[str, bytes] = {}
_sn_meters: set[str] = set()
"""Meters an ``auto`` session found serving short names (this process)."""


def refuses_context(exc: AssociationRefused) -> bool:
    """Whether the AARE refused the application context (LN or SN) itself."""
    return exc.diagnostic in CONTEXT_REFUSALS


def forget_short_names(meter_id: str | None = None) -> None:
    """Drop the short names (and the referencing an ``auto`` session learnt)
    kept for ``meter_id`` (all meters when None)."""
    if meter_id is None:
        _cache.clear()
        _sn_meters.clear()
    else:
        _cache.pop(meter_id, None)
        _sn_meters.discard(meter_id)


async def associate(
    driver: Driver,
    transport: Transport,
    settings: SessionSettings,
    meter_id: str,
    deadline: float,
    budget: float,
) -> tuple[Driver, _core.Agreement]:
    """Associate with ``driver``; with ``auto``, switch referencing on a context
    refusal (a new driver on the same link). Returns the driver in use.

    With ``auto`` a meter found to serve short names is remembered (per meter
    id, for the life of the process): its next sessions start with SN, and go
    back to LN only if it refuses the SN context (a replaced meter)."""
    auto = settings.referencing == "auto"
    if auto and meter_id in _sn_meters and driver.referencing == "ln":
        with contextlib.suppress(_core.DlmsError):  # HLS-GMAC: no SN driver, stay LN
            driver = _driver(driver, transport, settings, meter_id, "sn")
    try:
        agreed = await driver.associate(deadline, budget)
    except AssociationRefused as exc:
        if not auto or not refuses_context(exc):
            raise
        other = "ln" if driver.referencing == "sn" else "sn"
        log.info("referencing_fallback", meter_id=meter_id, to=other, why=str(exc))
        driver.finish()
        # A rejected AARQ leaves the link up and the association idle: the
        # next AARQ goes on the same link (HDLC connection or TCP connection).
        try:
            driver = _driver(driver, transport, settings, meter_id, other)
        except _core.DlmsError as why:  # e.g. HLS-GMAC, not served with short names
            raise AssociationRefused(exc.result, exc.diagnostic, f"no SN fallback: {why}") from exc
        agreed = await driver.associate(deadline, budget)
    if auto and meter_id:
        if driver.referencing == "sn":
            _sn_meters.add(meter_id)
        else:
            _sn_meters.discard(meter_id)
    if driver.referencing == "sn":
        await load_short_names(driver, meter_id, deadline, budget)
    return driver, agreed


def _driver(
    old: Driver, transport: Transport, settings: SessionSettings, meter_id: str, referencing: str
) -> Driver:
    return Driver(transport, settings, meter_id, old.observer, referencing=referencing)


async def load_short_names(driver: Driver, meter_id: str, deadline: float, budget: float) -> int:
    """Read the meter's SN object list (or take the one kept for
    ``meter_id``) into the machine; returns the number of objects."""
    assoc = driver.assoc
    kept = _cache.get(meter_id) if meter_id else None
    if kept is not None:
        return assoc.load_short_names(kept)
    what = "READ SN object list 12/0.0.40.0.0.255/2"
    item = _core.Attribute(*OBJECT_LIST)
    rid = driver.start(lambda now: assoc.get([item], now))
    outcome = await driver.request(rid, deadline, what, budget)
    if not isinstance(outcome, _core.GetOutcome):
        raise ProtocolError(f"{what}: answered with {type(outcome).__name__}")
    (result,) = outcome.results
    if result.data is None:
        raise DataAccessError(*OBJECT_LIST, result.error_name or "?")
    try:
        n = assoc.load_short_names(result.data)
    except _core.DlmsError as exc:
        raise ProtocolError(f"{what}: {exc}") from exc
    if meter_id:
        _cache[meter_id] = result.data
    log.debug("sn_object_list", meter_id=meter_id, objects=n)
    return n


async def read_object_model(session: ClientSession) -> ObjectModel:
    """The SN object list (and access rights) as an :class:`ObjectModel`."""
    listed = await session.get(*OBJECT_LIST)
    try:
        rights_v = await session.get(OBJECT_LIST[0], OBJECT_LIST[1], 3)
    except DataAccessError as exc:
        log.info("sn_access_rights_unavailable", meter_id=session.meter_id, why=str(exc))
        rights_v = array([])
    no_rights = structure([array([]), array([])])
    rights: dict[int, TypedValue] = {}
    entries: list[TypedValue] = []
    where = "access_rights_list"
    try:
        for n, item in enumerate(rights_v["value"]):
            where = f"access_rights_list entry {n}"
            base_v, attributes, methods = item["value"]
            rights[base_v["value"] & 0xFFFF] = structure([attributes, methods])
        for n, item in enumerate(listed["value"]):
            where = f"object_list entry {n}"
            base_v, class_v, version_v, ln_v = item["value"]
            access = rights.get(base_v["value"] & 0xFFFF, no_rights)
            entries.append(structure([class_v, version_v, ln_v, access]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ObjectListError(f"Association SN {where}: {exc!r}") from exc
    return ObjectModel.from_object_list(array(entries))


async def write_unconfirmed(
    session: ClientSession, class_id: int, obis: str, attribute_id: int, value: TypedValue | bytes
) -> None:
    """UnconfirmedWriteRequest of one attribute (SN associations only)."""
    if not session.associated or session.referencing != "sn":
        raise ProtocolError(
            f"unconfirmed write {class_id}/{obis}/{attribute_id}: needs an open short-name "
            f"association (it is {session.referencing if session.associated else 'closed'})"
        )
    raw = value if isinstance(value, bytes) else _core.encode(value)
    item = (_core.Attribute(class_id, obis, attribute_id), raw)
    driver = session._driver  # the session's own driver: same lock, same link
    async with session._lock:
        what = f"unconfirmed WRITE {class_id}/{obis}/{attribute_id}"
        await driver.send_unanswered(
            lambda _now: driver.assoc.unconfirmed_write([item]),
            what,
            session.settings.response_timeout,
        )
