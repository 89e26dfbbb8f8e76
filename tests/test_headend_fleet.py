"""Fleet registry and per-meter state persisted in SQLite across a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from smmc_gateway.headend.fleet import Fleet, UnknownMeter
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.ops.config import load_config

KEY = "00112233445566778899aabbccddeeff"


def lab_meters(n: int) -> list[dict[str, object]]:
    return [
        {"meter_id": f"m-{i:04d}", "port": 40000 + i, "ek": KEY, "ak": KEY, "auth": "hls-gmac"}
        for i in range(n)
    ]


def config(tmp_path: Path, n: int = 3, **kw: object):  # type: ignore[no-untyped-def]
    path = write_lab_config(
        tmp_path / "gw",
        lab_meters(n),
        broker=("127.0.0.1", 1883),
        groups={"m-0000": "feeder-1;north", "m-0001": "feeder-1"},
        **kw,
    )
    return load_config(path)


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = tmp_path / "fleet.sqlite"
    fleet = await Fleet.open(cfg.meters, db)
    assert len(fleet) == 3
    st = fleet.state("m-0001")
    assert st.last_entry is None and st.reachable is None
    entry = datetime(2026, 11, 27, 12, 15, tzinfo=UTC)
    st.last_entry = entry
    st.clock_deviation_s = -1.25
    st.record_success(1000.0)
    st.record_failure(1010.0, "MeterTimeout: no answer")
    st.energised = False
    await fleet.save(st)
    await fleet.close()

    again = await Fleet.open(cfg.meters, db)
    st2 = again.state("m-0001")
    assert st2.last_entry == entry
    assert st2.clock_deviation_s == -1.25
    assert (st2.reads_ok, st2.reads_failed, st2.consecutive_failures) == (1, 1, 1)
    assert st2.reachable is False and st2.energised is False
    assert st2.last_error == "MeterTimeout: no answer"
    assert again.state("m-0000").last_entry is None
    await again.close()


async def test_registry_lookups_and_groups(tmp_path: Path) -> None:
    fleet = await Fleet.open(config(tmp_path).meters, tmp_path / "f.sqlite")
    assert fleet.ids() == ["m-0000", "m-0001", "m-0002"]
    assert fleet.group("feeder-1") == ["m-0000", "m-0001"]
    assert fleet.group("north") == ["m-0000"]
    assert fleet.group("nowhere") == []
    with pytest.raises(UnknownMeter, match="'ghost' is not configured"):
        fleet.meter("ghost")
    with pytest.raises(UnknownMeter):
        fleet.state("ghost")
    await fleet.close()


async def test_a_meter_removed_from_the_config_is_not_loaded(tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite"
    fleet = await Fleet.open(config(tmp_path, 3).meters, db)
    await fleet.save(*(fleet.state(m) for m in fleet.ids()))
    await fleet.close()
    smaller = await Fleet.open(config(tmp_path / "b", 2).meters, db)
    assert smaller.ids() == ["m-0000", "m-0001"]
    assert not smaller.has("m-0002")
    await smaller.close()
