"""Every object the management client sees answers every readable attribute
with a typed value, and accepts its own value back on every writable one."""

from datetime import UTC, datetime

from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.simulator import MeterOptions, SimulatedMeter

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_all_readable_attributes_answer() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=1), now=NOW)
    model = ObjectModel.from_object_list(meter.object_list(1))
    assert len(model) > 30
    for info in model:
        for aid in info.attributes:
            value = meter.get(info.class_id, info.obis, aid, now=NOW, client=1)
            if info.can_read(aid):
                assert isinstance(value, dict), (info.obis, aid, value)
                assert "type" in value and "value" in value
            else:
                assert value == "read-write-denied", (info.obis, aid)


def test_writable_attributes_accept_their_own_value() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=1), now=NOW)
    model = ObjectModel.from_object_list(meter.object_list(1))
    written = 0
    for info in model:
        for aid in info.attributes:
            if not (info.can_write(aid) and info.can_read(aid)):
                continue
            value = meter.get(info.class_id, info.obis, aid, now=NOW, client=1)
            assert isinstance(value, dict)
            result = meter.set(info.class_id, info.obis, aid, value, now=NOW, client=1)
            assert result == "success", (info.obis, aid, result)
            assert meter.get(info.class_id, info.obis, aid, now=NOW, client=1) == value
            written += 1
    assert written > 20


def test_public_client_reads_all_it_sees() -> None:
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    model = ObjectModel.from_object_list(meter.object_list(16))
    for info in model:
        for aid, right in info.attributes.items():
            value = meter.get(info.class_id, info.obis, aid, now=NOW, client=16)
            assert isinstance(value, dict) == right.access.can_read, (info.obis, aid)


# ---------------------------------------------------------------- robustness
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from smmc_gateway.cosem.classes import ACTION_RESULTS, DATA_ACCESS_RESULTS  # noqa: E402

_scalars = st.one_of(
    st.builds(lambda v: {"type": "null-data", "value": None}, st.none()),
    st.builds(lambda v: {"type": "boolean", "value": v}, st.booleans()),
    st.builds(lambda v: {"type": "unsigned", "value": v}, st.integers(0, 255)),
    st.builds(lambda v: {"type": "enum", "value": v}, st.integers(0, 255)),
    st.builds(lambda v: {"type": "integer", "value": v}, st.integers(-128, 127)),
    st.builds(lambda v: {"type": "long", "value": v}, st.integers(-32768, 32767)),
    st.builds(lambda v: {"type": "long-unsigned", "value": v}, st.integers(0, 65535)),
    st.builds(lambda v: {"type": "double-long-unsigned", "value": v}, st.integers(0, 2**32 - 1)),
    st.builds(lambda v: {"type": "octet-string", "value": v.hex()}, st.binary(max_size=16)),
    st.builds(lambda v: {"type": "visible-string", "value": v}, st.text(max_size=8)),
)
typed_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda v: {"type": "array", "value": v}, st.lists(inner, max_size=4)),
        st.builds(lambda v: {"type": "structure", "value": v}, st.lists(inner, max_size=5)),
    ),
    max_leaves=12,
)

_METER = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
_TARGETS = [
    (info.class_id, info.obis, aid, kind)
    for info in ObjectModel.from_object_list(_METER.object_list(1))
    for kind, ids in (("set", info.attributes), ("action", info.methods))
    for aid in ids
    if (kind == "set" and info.can_write(aid)) or (kind == "action" and info.can_invoke(aid))
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(_TARGETS), st.one_of(st.none(), typed_values))
def test_random_set_and_action_never_raise(target: tuple[object, ...], value: dict | None) -> None:  # type: ignore[type-arg]
    class_id, obis, aid, kind = target
    meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
    if kind == "set":
        if value is None:
            return
        result = meter.set(class_id, obis, aid, value, now=NOW, client=1)  # type: ignore[arg-type]
        assert result in DATA_ACCESS_RESULTS
    else:
        outcome = meter.action(class_id, obis, aid, value, now=NOW, client=1)  # type: ignore[arg-type]
        assert outcome[0] in ACTION_RESULTS


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2), typed_values)
def test_random_selective_access_never_raises(selector: int, params: dict) -> None:  # type: ignore[type-arg]
    result = _METER.get(
        7, "1.0.99.1.0.255", 2, now=NOW, client=1, selector=selector, parameters=params
    )
    assert isinstance(result, dict) or result in DATA_ACCESS_RESULTS


def test_every_method_without_parameters_answers() -> None:
    for class_id, obis, mid, kind in _TARGETS:
        if kind != "action":
            continue
        meter = SimulatedMeter(MeterOptions(history_days=0), now=NOW)
        outcome = meter.action(class_id, obis, mid, None, now=NOW, client=1)
        assert outcome[0] in ACTION_RESULTS, (obis, mid)
