"""Use case 10, key change, against the simulator (HLS-GMAC): new keys are transferred
wrapped by the master key, the journal keeps old and new until an association with the
new ones proves them; a refusal or an unreachable meter never loses access."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.usecases.key_change import (
    KeyChangeRefused,
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
        s = ClientSession(
            WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1),
            SessionSettings(
                client_sap=1, security=sec, response_timeout=2.0, association_timeout=5.0
            ),
            meter_id="m0",
        )
        async with s:
            yield s

    old = KeySet(bytes.fromhex(info["ek"]), bytes.fromhex(info["ak"]))
    return open_with, old, sim.fleet.meters[0].meter.credentials.kek


async def test_key_change_confirmed_by_an_association(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        open_with, old, kek = opener(sim)
        journal = KeyJournal(tmp_path / "keys.json")
        r = await change_keys(open_with, "m0", kek=kek, old=old, new=NEW, journal=journal)
        assert r.outcome == "changed", r
        creds = sim.fleet.meters[0].meter.credentials
        assert (creds.guek, creds.gak) == (NEW.ek, NEW.ak)
        entry = journal.entry("m0")
        assert entry is not None and entry.state == "confirmed"
        assert journal.current("m0", old) == [NEW]
        assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
        assert NEW.ek.hex() not in repr(entry)
        text = journal.path.read_text()
        assert old.ek.hex() not in text and old.ak.hex() not in text  # wiped once confirmed


async def test_a_refused_transfer_keeps_the_old_keys(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(meters=1)) as sim:
        open_with, old, _kek = opener(sim)
        journal = KeyJournal(tmp_path / "keys.json")
        wrong_kek = bytes(16)
        r = await change_keys(open_with, "m0", kek=wrong_kek, old=old, new=NEW, journal=journal)
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


# -- the journal (issue 7 item 10) ------------------------------------------------------
A = KeySet(bytes([1]) * 16, bytes([2]) * 16)
B = KeySet(bytes([3]) * 16, bytes([4]) * 16)
C = KeySet(bytes([5]) * 16, bytes([6]) * 16)


def _hexes(keys: KeySet) -> tuple[str, str]:
    return keys.ek.hex(), keys.ak.hex()


def _durability_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records fsyncs of files and directories and renames, in order."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_journal_writes_fsync_the_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _durability_log(monkeypatch)
    KeyJournal(tmp_path / "keys.json").begin("m0", A, B)
    assert events == ["fsync-file", "replace", "fsync-dir"]


async def test_begin_is_durable_before_the_transfer_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _durability_log(monkeypatch)

    class Meter:
        async def action(self, *a: Any) -> None:
            events.append("transfer")
            raise DataAccessError(64, "0.0.43.0.1.255", 2, "other-reason", method=True)

    @contextlib.asynccontextmanager
    async def open_with(keys: KeySet) -> AsyncIterator[Any]:
        yield Meter()

    journal = KeyJournal(tmp_path / "keys.json")
    r = await change_keys(open_with, "m0", kek=bytes(16), old=A, new=B, journal=journal)
    assert r.outcome == "unchanged"
    assert events[:4] == ["fsync-file", "replace", "fsync-dir", "transfer"]


def test_confirm_and_abandon_act_only_on_the_exact_pair_and_wipe_the_other_keys(
    tmp_path: Path,
) -> None:
    journal = KeyJournal(tmp_path / "keys.json")
    journal.begin("m0", A, B)
    assert not journal.confirm("m0", C, B) and not journal.confirm("m0", A, C)
    assert not journal.abandon("m0", B, A)
    assert journal.current("m0", C) == [B, A]
    assert journal.confirm("m0", A, B)
    text = journal.path.read_text()
    assert not any(h in text for h in _hexes(A)), "the old keys are wiped once confirmed"
    assert all(h in text for h in _hexes(B))
    e = journal.entry("m0")
    assert e is not None and e.state == "confirmed" and e.old is None and e.new == B
    assert journal.current("m0", C) == [B]
    assert journal.confirm("m0", A, B)  # settled this way already: idempotent, no change

    journal.begin("m1", A, B)
    assert journal.abandon("m1", A, B)
    text = journal.path.read_text()
    e = journal.entry("m1")
    assert e is not None and e.state == "confirmed" and e.old is None and e.new == A
    assert journal.current("m1", C) == [A]
    entry_m1 = json.loads(text)["m1"]
    assert entry_m1 == {"state": "confirmed", "new": A.to_json()}


def test_a_late_settle_of_an_older_change_cannot_clobber_a_newer_one(tmp_path: Path) -> None:
    journal = KeyJournal(tmp_path / "keys.json")
    journal.begin("m0", A, B)
    assert journal.confirm("m0", A, B)
    journal.begin("m0", B, C)  # the next change is running
    assert not journal.confirm("m0", A, B)  # a session of the first change, late
    assert not journal.abandon("m0", A, B)
    e = journal.entry("m0")
    assert e is not None and e.state == "pending" and (e.old, e.new) == (B, C)
    assert journal.current("m0", A) == [C, B]


def test_begin_refuses_to_overwrite_a_pending_change(tmp_path: Path) -> None:
    journal = KeyJournal(tmp_path / "keys.json")
    journal.begin("m0", A, B)
    with pytest.raises(KeyChangeRefused, match="still pending"):
        journal.begin("m0", B, C)
    assert journal.current("m0", A) == [B, A]


def test_journals_of_the_older_shape_still_read_and_are_wiped_on_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps(
            {
                "m0": {"state": "confirmed", "old": A.to_json(), "new": B.to_json()},
                "m1": {"state": "pending", "old": A.to_json(), "new": C.to_json()},
            }
        )
    )
    journal = KeyJournal(path)
    assert journal.current("m0", C) == [B] and journal.current("m1", B) == [C, A]
    e = journal.entry("m0")
    assert e is not None and e.old is None
    assert journal.confirm("m1", A, C)
    doc = json.loads(path.read_text())
    assert doc == {
        "m0": {"state": "confirmed", "new": B.to_json()},
        "m1": {"state": "confirmed", "new": C.to_json()},
    }


async def test_a_fallback_session_built_before_a_newer_change_does_not_settle_it(
    tmp_path: Path,
) -> None:
    """A session built while change (X -> K) was pending opens after that change was
    settled and a newer one (K -> N) began: it associates with K, and must leave the
    newer change pending (marking it confirmed would make the gateway use N, which the
    meter may never have taken)."""
    from smmc_gateway.headend.labconfig import write_lab_config
    from smmc_gateway.headend.sessions import KeyFallbackSession, SessionFactory
    from smmc_gateway.ops.config import load_config

    async with running_fleet(FleetSpec(meters=1)) as sim:
        info = sim.info[0]
        cfg = load_config(
            write_lab_config(
                tmp_path / "gw", [{**info, "port": sim.ports[0]}], broker=("127.0.0.1", 1)
            )
        )
        store = InvocationCounterStore(tmp_path / "gw" / "state" / "ic.sqlite")
        factory = SessionFactory(system_title=b"SMMCTEST", ic_store=store, response_timeout=2.0)
        journal = factory.key_journal
        assert journal is not None
        meter = info["meter_id"]
        held = KeySet(bytes.fromhex(info["ek"]), bytes.fromhex(info["ak"]))
        journal.begin(meter, A, held)
        late = factory.session(cfg.meters[0])
        assert isinstance(late, KeyFallbackSession)
        assert journal.confirm(meter, A, held)  # settled by someone else meanwhile
        journal.begin(meter, held, C)  # and the next change has begun
        async with late as s:  # associates with `held`, the first candidate
            await s.get(8, "0.0.1.0.0.255", 2)
        e = journal.entry(meter)
        assert e is not None and e.state == "pending" and (e.old, e.new) == (held, C)
        store.close()


def test_entry_reads_the_file_again_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every session asks for its meter's entry: an unchanged journal is parsed once; a
    write by this journal, by another one on the same file, or an edit of the file is
    seen by the next entry."""
    path = tmp_path / "keys.json"
    journal, other = KeyJournal(path), KeyJournal(path)
    reads = 0
    read_text = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        nonlocal reads
        reads += 1 if self == path else 0
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    assert journal.current("m0", A) == [A] and reads == 0  # no file: nothing read
    journal.begin("m0", A, B)
    reads = 0
    for _ in range(5):
        assert journal.current("m0", A) == [B, A]
    assert reads == 1
    other.confirm("m0", A, B)  # another journal object writes the same file
    assert journal.current("m0", A) == [B]
    journal.begin("m1", A, C)  # our own write
    assert journal.current("m1", A) == [C, A] and journal.current("m0", A) == [B]
    path.write_text(json.dumps({"m0": {"state": "confirmed", "new": C.to_json()}, "m2": 1}))
    assert journal.current("m0", A) == [C] and journal.entry("m1") is None


def test_a_caller_changing_what_it_loaded_does_not_change_what_entry_sees(
    tmp_path: Path,
) -> None:
    journal = KeyJournal(tmp_path / "keys.json")
    journal.begin("m0", A, B)
    assert journal.current("m0", A) == [B, A]
    journal._load()["m0"]["new"] = C.to_json()  # the mutators' copy, never saved
    assert journal.current("m0", A) == [B, A]
