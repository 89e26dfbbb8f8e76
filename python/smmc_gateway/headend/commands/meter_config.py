"""MQTT noun MeterConfig (use case 10, remote programming and key change): request
validation, use cases per meter, one reply. (PricingStructureConfig, the tariff calendar
of use case 8, is :mod:`~smmc_gateway.headend.commands.pricing_structure_config`; it shares
the helpers here.)

``MeterConfig`` (verb change)::

    {"Settings": [{"EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "g"}],
                   "class_id": 1, "obis": "0.0.97.98.10.255", "attribute": 2,
                   "value": {"type": "double-long-unsigned", "value": 15}}, ...]}

Each setting names its meters (or groups). MeterConfig is default-deny: every setting
(a SET of an attribute, an ACTION of a method) is checked against the configuration's
allowlist (``[commands.meter_config]``, :meth:`CommandsConfig.meter_config_allows`)
before any meter is touched; one no rule allows is answered per meter with ``result``
FAILED, ``code`` ``NotAllowed`` and ``details`` naming class, OBIS and member and the
``[[commands.meter_config.allow]]`` entry that would allow it (and an error of that code
per setting); a meter none of whose settings is allowed gets no session. Class 18 (image
transfer: firmware goes only through EndDeviceFirmware) and members whose value is a
secret (:func:`smmc_gateway.usecases.programming.guarded`) are refused whatever the
allowlist says. A setting allowed only by an OBIS pattern (``*``) is sent only when the
meter's object list confirms that object's class (a meter that does not give its object
list could otherwise be sent a SET of that class at any OBIS).

Per meter, one session SETs the allowed settings in order and reads each back; settings
the meter's object list says are absent or not writable are refused without a SET.
Reply ``Settings``: one entry per setting and meter with ``result`` OK (``value``: the
read-back typed value) or FAILED (``details``: the meter's data-access-result or why it
was not sent).

``MeterConfig`` key change (verb change; use case 10, Security setup ``key_transfer``)::

    {"keyChange": {"keys": ["ek", "ak"], "EndDevices": [{"mRID": "m1"}],
                   "EndDeviceGroups": [{"mRID": "g"}]}}

``keys`` (default both) names the global keys to replace. The new keys are made here
(``secrets.token_bytes(16)``), never taken from the request, never logged nor replied;
they are wrapped by the meter's ``master_key`` from the key file and journaled (see
:mod:`smmc_gateway.usecases.key_change`) before anything is sent. Reply ``KeyChange``:
per meter ``result`` OK (``keys``: the keys changed, ``confirmedAt``: when an association
with the new keys proved them) or FAILED (``details``: the meter's refusal or why the
change was not made; ``outcome`` ``unchanged`` — the old keys still work — or
``unknown`` — both kept, settled on the next session). A request carries either
``Settings`` or ``keyChange``. ``keyChange`` is off by default: unless
``commands.enabled.keyChange`` is true it is answered FAILED ``NounDisabled``. One key
change per meter at a time: a meter whose change is running (another request) is
answered FAILED at once, without touching the meter; a journal entry left ``pending`` by
an earlier change is settled first (by associating), and the new change is refused while
it cannot be settled (both key sets are kept: the meter is never lost).

Invalid requests get a FAILED reply (code ``InvalidRequest``) per problem, each naming
the JSON path and what is allowed; no meter is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.dlms.errors import SessionError
from smmc_gateway.dlms.session import ClientSession
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_guard import NEVER_ALLOWED_CLASSES
from smmc_gateway.ops.config_model import CommandsConfig, MeterConfigRule
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError
from smmc_gateway.usecases import key_change, programming

log = structlog.get_logger("smmc_gateway.headend")

METER_ERRORS = (SessionError, OSError, TimeoutError)
KEY_NAMES = ("ek", "ak")


def invalid(problems: list[str]) -> Outcome:
    return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems])


def target_meters(
    headend: HeadEnd, item: dict[str, Any], where: str, problems: list[str]
) -> list[str]:
    """Configured meters named by ``EndDevices`` and ``EndDeviceGroups`` of ``item``."""
    out: list[str] = []
    for key, resolve in (("EndDevices", None), ("EndDeviceGroups", headend.fleet.group)):
        raw = item.get(key, [])
        if not isinstance(raw, list):
            problems.append(f'{where}.{key}: must be an array of {{"mRID": ...}}')
            continue
        for j, d in enumerate(raw):
            name = d.get("mRID") if isinstance(d, dict) else None
            if not isinstance(name, str) or not name:
                problems.append(f"{where}.{key}[{j}].mRID: missing or not a string")
            elif resolve is None:
                if not headend.fleet.has(name):
                    problems.append(
                        f"{where}.{key}[{j}].mRID: meter {name!r} is not configured on this gateway"
                    )
                elif name not in out:
                    out.append(name)
            else:
                members = resolve(name)
                if not members:
                    problems.append(
                        f"{where}.{key}[{j}].mRID: {name!r} is not a configured "
                        "group (no meter names it)"
                    )
                out.extend(m for m in members if m not in out)
    if not out and not any(p.startswith(where + ".End") for p in problems):
        problems.append(f"{where}: names no meter (EndDevices and EndDeviceGroups are empty)")
    return out


def check_verb(verb: str, allowed: tuple[str, ...], noun: str, problems: list[str]) -> None:
    if verb not in allowed:
        problems.append(f"header.verb: {verb!r}; {noun} takes {' or '.join(allowed)}")


def overall(
    entries: list[dict[str, Any]], errors: list[ReplyError], body: dict[str, Any]
) -> Outcome:
    good = sum(1 for e in entries if e["result"] == "OK")
    result = "OK" if good == len(entries) else ("FAILED" if good == 0 else "PARTIAL")
    return Outcome(result, body, errors)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


Planned = tuple[int, programming.SetItem, MeterConfigRule]
"""(index of the setting in the request, the setting, the allowlist rule allowing it)"""


def _entry(
    meter: str,
    i: int,
    item: programming.SetItem,
    ok: bool,
    details: str,
    value: Any = None,
    code: str | None = None,
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "index": i,
        "EndDevices": [{"mRID": meter}],
        "ref": item.ref,
        "result": "OK" if ok else "FAILED",
        "details": details,
    }
    if value is not None:
        e["value"] = value
    if code is not None:
        e["code"] = code
    return e


def _member(item: programming.SetItem) -> tuple[str, str]:
    """(``attribute N`` or ``method N``, the allow entry's list for it)."""
    if item.method is not None:
        return f"method {item.method}", f"methods = [{item.method}]"
    return f"attribute {item.attribute}", f"attributes = [{item.attribute}]"


def not_allowed(
    commands: CommandsConfig, item: programming.SetItem
) -> tuple[str | None, MeterConfigRule | None]:
    """(why ``item`` may not be sent, None) or (None, the rule that allows it)."""
    what, allow_list = _member(item)
    target = f"class {item.class_id} {item.obis} {what}"
    why = programming.guarded(
        item.class_id, item.attribute if item.method is None else None, item.method
    )
    if why is not None:
        return f"{target} is never sent by MeterConfig, whatever the allowlist says: {why}", None
    if item.class_id in NEVER_ALLOWED_CLASSES:
        return (
            f"{target}: class {item.class_id} cannot be allowed in MeterConfig "
            f"({NEVER_ALLOWED_CLASSES[item.class_id]})"
        ), None
    rule = commands.meter_config_allows(
        item.class_id,
        item.obis,
        attribute=item.attribute if item.method is None else None,
        method=item.method,
    )
    if rule is None:
        return (
            f"{target} is not on this gateway's MeterConfig allowlist (MeterConfig is "
            "default-deny); to allow it on purpose, the operator adds to the "
            f"configuration: [[commands.meter_config.allow]] class_id = {item.class_id}, "
            f'obis = "{item.obis}", {allow_list}'
        ), None
    return None, rule


class MeterConfigCommands:
    """``await MeterConfigCommands(headend, commands)(verb, payload)`` -> the reply Outcome.

    ``commands``: the configuration's ``[commands]`` (the MeterConfig allowlist, whether
    keyChange is served); None: :class:`CommandsConfig` defaults (no setting allowed,
    keyChange off)."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig | None = None) -> None:
        self.headend = headend
        self.commands = commands if commands is not None else CommandsConfig()

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if "keyChange" in payload:
            return await self._key_change(verb, payload)
        problems: list[str] = []
        check_verb(verb, ("change",), "MeterConfig", problems)
        raw = payload.get("Settings")
        items = programming.parse_items(raw, "payload.Settings", problems)
        per_meter: dict[str, list[Planned]] = {}
        refused: list[dict[str, Any]] = []
        errors: list[ReplyError] = []
        if isinstance(raw, list) and len(items) == len(raw):
            for i, (doc, item) in enumerate(zip(raw, items, strict=True)):
                meters = target_meters(self.headend, doc, f"payload.Settings[{i}]", problems)
                why, rule = not_allowed(self.commands, item)
                if why is not None or rule is None:
                    why = why or "no rule"
                    errors.append(
                        {
                            "code": "NotAllowed",
                            "details": f"payload.Settings[{i}] {item.ref}: {why}",
                        }
                    )
                    refused += [
                        _entry(m, i, item, False, f"not sent: {why}", code="NotAllowed")
                        for m in meters
                    ]
                    continue
                for m in meters:
                    per_meter.setdefault(m, []).append((i, item, rule))
        if problems:
            return invalid(problems)
        if errors:
            log.warning("meter_config_not_allowed", settings=[e["details"] for e in errors])
        results = await asyncio.gather(*(self._meter(m, todo) for m, todo in per_meter.items()))
        entries = sorted(
            [*refused, *(e for r in results for e in r)],
            key=lambda e: (e["index"], e["EndDevices"][0]["mRID"]),
        )
        errors += [
            {
                "code": "MeterFailed",
                "details": f"{e['EndDevices'][0]['mRID']}: {e['ref']}: {e['details']}",
            }
            for e in entries
            if e["result"] != "OK" and e.get("code") != "NotAllowed"
        ]
        return overall(entries, errors, {"Settings": entries})

    async def _meter(self, meter: str, todo: list[Planned]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            async with self.headend.scheduler.session(meter, Priority.COMMAND) as s:
                model = await programming.object_model(s)
                send: list[tuple[int, programming.SetItem]] = []
                for i, item, rule in todo:
                    if model is None and "*" in rule.obis:
                        out.append(
                            _entry(
                                meter,
                                i,
                                item,
                                False,
                                (
                                    f"not sent: allowed only by the pattern rule {rule.class_id}/"
                                    f"{rule.obis} and the meter does not give its object list, so "
                                    f"the class of {item.obis} cannot be confirmed; an allow entry "
                                    "naming this OBIS exactly lets it through"
                                ),
                            )
                        )
                    else:
                        send.append((i, item))
                results = await programming.program(
                    s, [it for _, it in send], model=model, check_model=False
                )
        except METER_ERRORS as exc:
            return [_entry(meter, i, it, False, error_text(exc)) for i, it, _ in todo]
        return out + [
            _entry(
                meter,
                i,
                r.item,
                r.ok,
                ("invoked" if r.item.method is not None else "set and read back")
                if r.ok
                else (r.result if r.sent else f"not sent: {r.result}"),
                r.read_back,
            )
            for (i, _), r in zip(send, results, strict=True)
        ]

    # -- key change (use case 10) ------------------------------------------------------
    async def _key_change(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if not self.commands.serves("keyChange"):
            return Outcome(
                "FAILED",
                errors=[
                    {
                        "code": "NounDisabled",
                        "details": "MeterConfig keyChange is disabled on this gateway "
                        "(commands.enabled.keyChange is false); the operator turns it on "
                        "on purpose with [commands.enabled] keyChange = true",
                    }
                ],
            )
        problems: list[str] = []
        check_verb(verb, ("change",), "MeterConfig", problems)
        if "Settings" in payload:
            problems.append("payload: carries Settings and keyChange; send them as two requests")
        doc = payload["keyChange"]
        names: list[str] = []
        meters: list[str] = []
        if not isinstance(doc, dict):
            problems.append(
                "payload.keyChange: must be an object {keys, EndDevices, EndDeviceGroups}"
            )
        else:
            bad = set(doc) - {"keys", "EndDevices", "EndDeviceGroups"}
            if bad:
                problems.append(
                    f"payload.keyChange: unknown field(s) {sorted(bad)}; allowed: "
                    "keys, EndDevices, EndDeviceGroups (new keys are made by the "
                    "gateway, never sent)"
                )
            raw = doc.get("keys", list(KEY_NAMES))
            if (
                not isinstance(raw, list)
                or not raw
                or any(k not in KEY_NAMES for k in raw)
                or len(set(raw)) != len(raw)
            ):
                problems.append(
                    f"payload.keyChange.keys: {raw!r}; a non-empty array of "
                    'distinct names from "ek", "ak"'
                )
            else:
                names = [k for k in KEY_NAMES if k in raw]
            meters = target_meters(self.headend, doc, "payload.keyChange", problems)
        if problems:
            return invalid(problems)
        entries = list(await asyncio.gather(*(self._change_meter(m, names) for m in meters)))
        errors: list[ReplyError] = [
            {"code": "MeterFailed", "details": f"{e['EndDevices'][0]['mRID']}: {e['details']}"}
            for e in entries
            if e["result"] != "OK"
        ]
        return overall(entries, errors, {"KeyChange": entries})

    async def _change_meter(self, meter: str, names: list[str]) -> dict[str, Any]:
        e: dict[str, Any] = {"EndDevices": [{"mRID": meter}], "keys": names}

        def failed(details: str, outcome: str = "unchanged") -> dict[str, Any]:
            log.warning("key_change_failed", meter_id=meter, outcome=outcome, details=details)
            return {**e, "result": "FAILED", "outcome": outcome, "details": details}

        scheduler = self.headend.scheduler
        factory = scheduler.sessions
        journal = factory.key_journal
        cfg = self.headend.fleet.meter(meter)
        if journal is None:
            return failed(
                "no key journal on this gateway (the invocation counters are not "
                "persisted); a key change would risk losing the meter"
            )
        try:
            configured = factory.configured_keys(cfg)
        except ValueError as exc:
            return failed(f"not sent: {exc}")
        if cfg.keys is None or cfg.keys.master_key is None:
            return failed(
                f"not sent: the key file has no master_key for key "
                f"{cfg.keys.key_id if cfg.keys else '?'} (needed to wrap new keys)"
            )
        kek = cfg.keys.master_key.reveal()

        @contextlib.asynccontextmanager
        async def open_with(keys: key_change.KeySet) -> AsyncIterator[ClientSession]:
            with factory.using_keys(meter, keys):
                async with scheduler.session(meter, Priority.COMMAND) as s:
                    yield s

        # One key change per meter: the check and the mark are one step on the event loop
        # (no await between them), so two requests cannot both pass.
        if meter in factory.changing:
            return failed(
                "not sent: a key change for this meter is already running (an "
                "earlier request); send this one again once that one is answered"
            )
        factory.changing.add(meter)
        try:
            pending = journal.entry(meter)
            if pending is not None and pending.state == "pending":
                first = await key_change.settle(open_with, meter, journal)
                if first.outcome == "unknown":
                    return failed(
                        f"not sent: an earlier key change is unsettled and cannot "
                        f"be settled now: {first.details}",
                        "unknown",
                    )
            old = journal.current(meter, configured)[0]
            new = key_change.KeySet(
                secrets.token_bytes(16) if "ek" in names else old.ek,
                secrets.token_bytes(16) if "ak" in names else old.ak,
            )
            log.info("key_change_started", meter_id=meter, changing=names)
            r = await key_change.change_keys(
                open_with, meter, kek=kek, old=old, new=new, journal=journal
            )
        except key_change.KeyChangeRefused as exc:
            return failed(f"not sent: {exc}", "unknown")
        except METER_ERRORS as exc:
            return failed(error_text(exc), "unknown")
        finally:
            factory.changing.discard(meter)
        if r.outcome != "changed":
            return failed(r.details, r.outcome)
        when = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        log.info("key_change_confirmed", meter_id=meter, changed=names, confirmed_at=when)
        return {
            **e,
            "result": "OK",
            "outcome": "changed",
            "confirmedAt": when,
            "details": r.details,
        }
