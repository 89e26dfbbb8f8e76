"""The CLI and the daemon never share an outgoing (system title, invocation counter)
space under one key (issue 7 item 13): the CLI makes its own system title once per
installation (beside its invocation counter store, 0600), reuses it, never uses the
daemon's default, and the meter learns it from the AARQ as any other."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from smmc_gateway.cli import main
from smmc_gateway.cli.common import UsageError
from smmc_gateway.cli.meter_session import default_ic_store, installation_title, title_path
from smmc_gateway.headend.sessions import DEFAULT_SYSTEM_TITLE

from tests.support_sim import FleetSpec, running_fleet


def test_the_title_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    store = tmp_path / "st" / "invocation-counters.sqlite"
    first = installation_title(store)
    path = title_path(store)
    assert path == tmp_path / "st" / "invocation-counters.sqlite.system-title"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert installation_title(store) == first and len(first) == 8
    assert first.startswith(b"SMC")
    assert first not in (b"SMMCGW00", DEFAULT_SYSTEM_TITLE)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    # another counter store (its counters start again): another title
    assert installation_title(tmp_path / "other.sqlite") != first


def test_a_damaged_title_file_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "ic.sqlite"
    title_path(store).write_text("zz\n")
    with pytest.raises(UsageError, match="not hex"):
        installation_title(store)
    title_path(store).write_text("0102\n")
    with pytest.raises(UsageError, match="2 bytes, expected 8"):
        installation_title(store)


async def test_two_runs_associate_with_the_same_own_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("SMMC_EK", "SMMC_AK", "SMMC_PASSWORD", "SMMC_AUDIT_DIR"):
        monkeypatch.delenv(name, raising=False)
    async with running_fleet(FleetSpec(meters=1)) as sim:
        info = sim.info[0]
        monkeypatch.setenv("SMMC_EK", info["ek"])
        monkeypatch.setenv("SMMC_AK", info["ak"])
        creds = sim.fleet.meters[0].meter.credentials
        argv = ["meter", "--tcp", f"127.0.0.1:{sim.ports[0]}", "--json", "get", "8/0.0.1.0.0.255/2"]
        assert await asyncio.to_thread(main, argv) == 0
        title = bytes.fromhex(title_path(default_ic_store()).read_text())
        assert creds.client_system_titles[1] == title  # the meter took it from the AARQ
        assert title != DEFAULT_SYSTEM_TITLE
        creds.client_system_titles.clear()
        assert await asyncio.to_thread(main, argv) == 0
        assert creds.client_system_titles[1] == title
        # --system-title still overrides
        given = "534d435445535431"
        assert await asyncio.to_thread(main, [*argv[:3], "--system-title", given, *argv[3:]]) == 0
        assert creds.client_system_titles[1] == bytes.fromhex(given)
    names = sorted(os.listdir(tmp_path / "state" / "smmc-gateway"))
    assert "invocation-counters.sqlite.system-title" in names
    assert not [n for n in names if n.endswith(".tmp")]
