"""Use case 10, key change, against the simulator (HLS-GMAC): new keys are transferred
wrapped by the master key, the journal keeps old and new until an association with the
new ones proves them; a refusal or an unreachable meter never loses access."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.usecases.key_change import (
    KeyJournal,
    KeySet,
    OpenWith,
    change_keys,
    settle,
    transfer_parameters,
)

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

NEW = KeySet(bytes(range(100, 116)), bytes(range(200, 216)))


def opener(sim: RunningFleet) -> tuple[OpenWith, KeySet, bytes]:
    store = InvocationCounterStore(":memory:")  # one client: counters only go up
    info = sim.info[0]

    @contextlib.asynccontextmanager
    async def open_with(keys: KeySet) -> AsyncIterator[ClientSession]:
        sec = Security.hls_gmac(system_title=b"SMMCTEST", ek=keys.ek, ak=keys.ak, ic_store=store)
        s = ClientSession(WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1),
                          SessionSettings(client_sap=1, security=sec, response_timeout=2.0,
                                          association_timeout=5.0), meter_id="m0")
        async with s:
            yield s

    old = KeySet(bytes.fromhex(info["ek"]), bytes.fromhex(info["ak"]))
    return open_with, old, sim.fleet.meters[0].meter.credentials.kek


async def test_key_change_confirmed_by_an_association(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        open_with, old, kek = opener(sim)
        journal = KeyJournal(tmp_path / "keys.json")
        r = await change_keys(open_with, "m0", kek=kek, old=old, new=NEW,
                              journal=journal)
        assert r.outcome == "changed", r
        creds = sim.fleet.meters[0].meter.credentials
        assert (creds.guek, creds.gak) == (NEW.ek, NEW.ak)
        entry = journal.entry("m0")
        assert entry is not None and entry.state == "confirmed"
        assert journal.current("m0", old) == [NEW]
        assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
        assert NEW.ek.hex() not in repr(entry)


async def test_a_refused_transfer_keeps_the_old_keys(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        open_with, old, _kek = opener(sim)
        journal = KeyJournal(tmp_path / "keys.json")
        wrong_kek = bytes(16)
        r = await change_keys(open_with, "m0", kek=wrong_kek, old=old, new=NEW,
                              journal=journal)
        assert r.outcome == "unchanged" and "other-reason" in r.details
        assert journal.current("m0", old) == [old]
        assert sim.fleet.meters[0].meter.credentials.guek == old.ek


async def test_unreachable_after_the_transfer_keeps_both_then_settles(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        open_with, old, kek = opener(sim)
        journal = KeyJournal(tmp_path / "keys.json")
        journal.begin("m0", old, NEW)
        # the transfer reached the meter, then the meter went away before we could check
        async with open_with(old) as s:
            with contextlib.suppress(Exception):  # the answer is ciphered with the new keys
                await s.action(64, "0.0.43.0.1.255", 2, transfer_parameters(kek, NEW))
        sim.fleet.power_outage(0)
        r = await settle(open_with, "m0", journal)
        assert r.outcome == "unknown"
        assert journal.current("m0", old) == [NEW, old]  # both kept: access never lost
        sim.fleet.power_restored(0)
        r = await settle(open_with, "m0", journal)
        assert r.outcome == "changed", r
        assert journal.current("m0", old) == [NEW]
