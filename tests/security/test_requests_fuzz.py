"""Property tests: requests generated from the contract's request schemas
(docs/schemas/*-request.schema.json, as docs/asyncapi.yaml lists them for
``cmd/{noun}``), plus hostile variants of them, sent to the Dispatcher of a HeadEnd whose
meters fail fast. For every request: no exception escapes, exactly one Outcome, within a
bound (a hang detector), a FAILED outcome carries at least one error with details, and
the reply renders as JSON within ``max_reply_bytes``.

The generator is our own (a JSON Schema subset: the keywords these schemas use):
hypothesis-jsonschema 0.23 relies on Hypothesis internals the pinned Hypothesis no
longer has. Schemas are generated and then retargeted (some mRIDs become configured
meters and groups, so the requests get past "not configured") and mutated (one node
replaced by a hostile value: huge numbers, NaN, extreme dates, long arrays, deep
nesting, wrong types).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smmc_gateway.headend.request_limits import MAX_DETAIL_CHARS
from smmc_gateway.uplink.client import Outcome

from tests.security.requests_support import Lab, dead_fleet

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HANG = 5.0  # s per request: a hang detector
EXAMPLES = 40
REPLY_BYTES = 64 * 1024

VERBS = {
    "EndDeviceControls": ("create", "execute", "cancel"),
    "MeterReadings": ("get",),
    "MasterDataLinkageConfig": ("create", "change", "cancel"),
    "EndDeviceFirmware": ("create",),
    "MeterConfig": ("change",),
    "PricingStructureConfig": ("create", "change"),
    "EndDeviceConfig": ("get",),
    "CustomerMeterDataSet": ("get",),
    "ReadingsReport": ("get",),
    "MeterReadSchedule": ("create", "change", "delete", "get"),
}


def request_schemas() -> dict[str, dict[str, Any]]:
    """noun -> request payload schema, as the AsyncAPI document lists them."""
    api = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    cmd = next(v for k, v in api["channels"].items() if k.endswith("/cmd/{noun}"))
    out: dict[str, dict[str, Any]] = {}
    for alt in cmd["publish"]["message"]["payload"]["oneOf"]:
        ref = alt.get("$ref")
        if ref is None:
            continue
        schema = json.loads((DOCS / ref).read_text())
        out[schema["title"].split()[0]] = schema
    return out


SCHEMAS = request_schemas()
M0 = [{"mRID": "m0"}]
#: One well-formed request per noun: mutated like the generated ones, these reach the
#: deeper checks (a random calendar or setting is rarely well-formed).
VALID: dict[str, dict[str, Any]] = {
    "EndDeviceControls": {
        "EndDeviceControl": [
            {
                "EndDeviceControlType": {"ref": "demandResponse"},
                "EndDevices": M0,
                "demandLimit": {"value": 2, "unit": "kW"},
                "emergencyProfileId": 2,
                "scheduledInterval": {
                    "start": "2030-01-01T00:00:00Z",
                    "end": "2030-01-01T01:00:00Z",
                },
            },
            {
                "EndDeviceControlType": {"ref": "limit"},
                "EndDevices": M0,
                "demandLimit": {"value": 500, "unit": "W"},
                "minOverThresholdDuration": 60,
            },
            {"EndDeviceControlType": {"ref": "ping"}, "EndDeviceGroups": [{"mRID": "pair"}]},
        ]
    },
    "MeterReadings": {
        "EndDevices": M0,
        "ReadingTypes": [{"obis": "1.0.1.8.0.255"}],
        "timeSchedule": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
    },
    "MasterDataLinkageConfig": {"ConfigurationEvent": {"reason": "moveOut"}, "Meter": M0},
    "EndDeviceFirmware": {
        "EndDeviceFirmware": {
            "imageIdentifier": "SMMC-SIM-2.0.0",
            "activationTime": "2030-01-01T02:00:00Z",
            "maxConcurrent": 2,
        },
        "EndDevices": M0,
        "EndDeviceGroups": [{"mRID": "pair"}],
    },
    "MeterConfig": {
        "Settings": [
            {
                "EndDevices": M0,
                "class_id": 1,
                "obis": "0.0.97.98.10.255",
                "attribute": 2,
                "value": {"type": "double-long-unsigned", "value": 15},
            }
        ]
    },
    "PricingStructureConfig": {
        "EndDevices": M0,
        "PricingStructure": {
            "calendarName": "TOU",
            "seasons": [{"name": "S1", "start": "01-01", "week": "W1"}],
            "weeks": [{"name": "W1", "days": [1, 1, 1, 1, 1, 2, 2]}],
            "dayProfiles": [
                {
                    "id": 1,
                    "actions": [{"start": "00:00", "tariff": 1}, {"start": "07:00", "tariff": 2}],
                },
                {"id": 2, "actions": [{"start": "00:00", "tariff": 1}]},
            ],
            "specialDays": [{"index": 1, "date": "12-25", "dayId": 2}],
            "activation": "2030-01-01T00:00:00Z",
        },
    },
    "EndDeviceConfig": {"EndDevices": M0, "EndDeviceGroups": [{"mRID": "all"}], "refresh": True},
    "CustomerMeterDataSet": {
        "EndDevices": M0,
        "timeSchedule": {"start": "2026-11-01T00:00:00Z"},
        "maxIntervals": 100,
    },
    "ReadingsReport": {
        "EndDeviceGroups": [{"mRID": "all"}],
        "timeSchedule": {"start": "2026-11-01T00:00:00Z"},
        "intervalSeconds": 900,
    },
    "MeterReadSchedule": {
        "mRID": "night",
        "EndDevices": M0,
        "EndDeviceGroups": [{"mRID": "pair"}],
        "ReadingTypes": [{"obis": "1.0.1.8.0.255"}, {"obis": "1.0.99.1.0.255"}],
        "TimeSchedule": {"recurrencePeriod": 3600, "window": {"start": "00:00", "end": "04:00"}},
    },
}


def test_every_served_noun_has_a_request_schema() -> None:
    import jsonschema

    assert set(SCHEMAS) == set(VERBS) == set(VALID)
    for noun, doc in VALID.items():
        jsonschema.Draft202012Validator(SCHEMAS[noun]).validate(doc)


# -- a JSON Schema subset as Hypothesis strategies ------------------------------------
def _excluded(negated: dict[str, Any]) -> set[str]:
    """Keys a ``not`` of ``required`` (or of ``anyOf`` such) forbids."""
    keys = set(negated.get("required", []))
    for alt in negated.get("anyOf", []):
        keys |= set(alt.get("required", []))
    return keys


def _merge(base: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one branch of its oneOf/anyOf applied."""
    out = {k: v for k, v in base.items() if k not in ("oneOf", "anyOf")}
    for k, v in branch.items():
        if k == "required":
            out["required"] = sorted({*out.get("required", []), *v})
        elif k == "properties":
            out["properties"] = {**out.get("properties", {}), **v}
        elif k != "not":
            out[k] = v
    forbidden = _excluded(branch.get("not", {}))
    if forbidden:
        out["properties"] = {
            k: v for k, v in out.get("properties", {}).items() if k not in forbidden
        }
    return out


ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
MOMENTS = st.datetimes(datetime(1960, 1, 1), datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0).isoformat() + "Z"
)
#: Values by property name, beside what the schema allows, so more requests get past
#: the first check (a plain "string" control type is rarely one the gateway knows).
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "ref": st.sampled_from(
        ["connect", "disconnect", "ping", "clockSync", "limit", "demandResponse"]
    ),
    "obis": st.sampled_from(
        ["1.0.1.8.0.255", "0.0.1.0.0.255", "0.0.97.98.10.255", "0.0.13.0.0.255"]
    ),
    "unit": st.sampled_from(["W", "kW"]),
}


def _iso_pattern(pattern: str) -> bool:
    return pattern.startswith("^\\d{4}-") and "T" in pattern


def strategy(schema: dict[str, Any], depth: int = 0, name: str = "") -> st.SearchStrategy[Any]:
    base = _strategy(schema, depth)
    hint = HINTS.get(name)
    return st.one_of(hint, base) if hint is not None else base


def _strategy(schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([strategy(_merge(schema, b), depth) for b in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy({**schema, "type": k}, depth) for k in kind])
    if kind is None:
        kind = "object" if "properties" in schema or depth == 0 else "any"
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        optional = [k for k in props if k not in required]
        fixed = {k: strategy(props.get(k, {}), depth + 1, k) for k in required}
        extra = {k: strategy(props[k], depth + 1, k) for k in optional}
        return st.fixed_dictionaries(fixed, optional=extra)
    if kind == "array":
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", low + 4))
        return st.lists(
            strategy(schema.get("items", {}), depth + 1), min_size=low, max_size=min(high, low + 4)
        )
    if kind == "string":
        if "pattern" in schema:
            exact = st.one_of(
                st.from_regex(schema["pattern"], fullmatch=True, alphabet=ASCII),
                st.from_regex(schema["pattern"], fullmatch=True),
            )
            return st.one_of(MOMENTS, exact) if _iso_pattern(schema["pattern"]) else exact
        low = int(schema.get("minLength", 0))
        return st.text(min_size=low, max_size=max(low, int(schema.get("maxLength", 12))))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))


# -- retargeting and hostile mutations --------------------------------------------------
def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return doc


def retarget(doc: Any, draw: Any, meters: list[str]) -> Any:
    """Some mRIDs become configured meters (or groups): requests reach deeper."""
    for path in list(_nodes(doc)):
        if len(path) >= 3 and path[-1] == "mRID" and isinstance(path[-3], str):
            names = ["all", "pair"] if path[-3] == "EndDeviceGroups" else meters
            if draw(st.integers(0, 9)) < 8:
                _set(doc, path, draw(st.sampled_from(names)))
    return doc


HOSTILE = st.one_of(
    st.sampled_from(
        [
            10**30,
            -(10**30),
            -1,
            0,
            2**63,
            math.nan,
            math.inf,
            -math.inf,
            1e308,
            True,
            None,
            "",
            "x" * 70_000,
            "\u0000",
            "\u202e",
            [],
            {},
            [[[[[[[[]]]]]]]],
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59.999999Z",
            "2026-02-30T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "99:99",
            "13-45",
            "00-00",
            "255.255.255.255.255.255",
            "0.0.0.0.0.0",
            "now",
            "all",
            "m0",
            {"mRID": "all"},
            [{"mRID": "m0"}] * 5000,
            [{"mRID": f"m{i}"} for i in range(3)] * 3,
        ]
    ),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.recursive(st.none() | st.integers(), lambda c: st.lists(c, max_size=3), max_leaves=20),
)


def mutate(doc: Any, draw: Any) -> Any:
    path = draw(st.sampled_from(list(_nodes(doc))))
    return _set(doc, path, draw(HOSTILE))


def deep(levels: int) -> Any:
    doc: Any = []
    for _ in range(levels):
        doc = [doc]
    return doc


# -- the property --------------------------------------------------------------------------
def check(outcome: Any) -> None:
    assert isinstance(outcome, Outcome)
    assert outcome.result in ("OK", "PARTIAL", "FAILED")
    if outcome.result == "FAILED":
        assert outcome.errors, outcome
    for e in outcome.errors:
        assert isinstance(e["code"], str) and e["code"]
        assert isinstance(e["details"], str) and e["details"].strip(), outcome
        assert len(e["details"]) <= MAX_DETAIL_CHARS
    body = json.dumps(
        {"payload": outcome.payload, "errors": list(outcome.errors)},
        allow_nan=False,
        separators=(",", ":"),
    )
    assert len(body.encode()) <= REPLY_BYTES, (outcome.result, len(body))


async def send(lab: Lab, noun: str, verb: str, payload: Any) -> None:
    async with asyncio.timeout(HANG):
        outcome = await lab(noun, verb, payload)
    check(outcome)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("noun", sorted(VERBS))
def test_generated_and_hostile_requests(noun: str, tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        cm = dead_fleet(
            tmp_path,
            enable=("MeterConfig", "keyChange", "EndDeviceFirmware"),
            commands={
                "max_meters_per_request": 8,
                "max_reply_bytes": REPLY_BYTES,
                "max_query_intervals": 5000,
            },
        )
        lab = runner.run(cm.__aenter__())
        try:
            schema = SCHEMAS[noun]
            verbs = st.sampled_from(
                [*VERBS[noun] * 8, "get", "create", "change", "delete", "x" * 300]
            )

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(data=st.data())
            def one(data: st.DataObject) -> None:
                payload = retarget(
                    data.draw(strategy(schema) | st.just(VALID[noun]).map(copy.deepcopy)),
                    data.draw,
                    lab.meters,
                )
                if data.draw(st.booleans()):
                    payload = mutate(payload, data.draw)
                runner.run(send(lab, noun, data.draw(verbs), payload))

            one()
            # and a few fixed shapes no generator is likely to hit
            for payload in (
                VALID[noun],
                {},
                [],
                "x",
                None,
                {"EndDevices": deep(500)},
                {"EndDevices": [{"mRID": "m0"}] * 100_000},
                {"EndDeviceGroups": [{"mRID": "all"}] * 100_000},
                {
                    "timeSchedule": {"start": "0001-01-01T00:00:00Z"},
                    "EndDevices": [{"mRID": "m0"}],
                    "intervalSeconds": 1,
                },
            ):
                runner.run(send(lab, noun, VERBS[noun][0], payload))
        finally:
            runner.run(cm.__aexit__(None, None, None))


def test_the_generator_follows_the_schemas() -> None:
    """A good share of the generated payloads is valid against its schema (the generator
    ignores ``not`` and picks oneOf branches blindly), so the property tests exercise real
    requests, not only refusals."""
    import jsonschema

    for noun, schema in SCHEMAS.items():
        validator = jsonschema.Draft202012Validator(schema)
        seen: list[bool] = []

        @settings(
            max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(strategy(schema))
        def count(doc: Any) -> None:
            seen.append(validator.is_valid(doc))  # noqa: B023 - run before the next loop

        count()
        assert len(seen) >= 20 and sum(seen) >= len(seen) // 4, (noun, sum(seen), len(seen))
