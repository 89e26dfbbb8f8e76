"""The invocation counter store: our counters never reused across restarts or
crashes, theirs must increase (replays refused), per scope."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from smmc_gateway.dlms.errors import SecurityFailure
from smmc_gateway.dlms.ic_store import MAX_COUNTER, InvocationCounterStore

ST = bytes.fromhex("4d4d4d0000bc614e")


def test_counters_increase_and_scopes_are_independent(tmp_path: Path) -> None:
    store = InvocationCounterStore(tmp_path / "ic.db", block=10)
    assert [store.next("a") for _ in range(3)] == [1, 2, 3]
    assert store.next("b") == 1
    assert store.next("a") == 4


def test_restart_continues_after_the_reserved_block(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=100)
    used = [store.next("m1") for _ in range(150)]  # spans two blocks: 1..100, 101..200
    store.close()
    again = InvocationCounterStore(path, block=100)
    first = again.next("m1")
    assert first == 201
    assert first > max(used)


def test_crash_without_close_never_reuses(tmp_path: Path) -> None:
    """A process that takes counters and is killed (no close, no flush) must
    not make the next process hand out any counter it may have used."""
    path = tmp_path / "ic.db"
    code = (
        "import os, sys\n"
        "from smmc_gateway.dlms.ic_store import InvocationCounterStore\n"
        f"s = InvocationCounterStore({str(path)!r}, block=7)\n"
        "vals = [s.next('m') for _ in range(20)]\n"
        "print(max(vals), flush=True)\n"
        "os._exit(9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 9, out.stderr
    highest = int(out.stdout)
    assert highest == 20
    assert InvocationCounterStore(path, block=7).next("m") > highest


def test_incoming_counter_must_increase(tmp_path: Path) -> None:
    store = InvocationCounterStore(tmp_path / "ic.db")
    store.check_incoming("m", ST, 5)
    store.check_incoming("m", ST, 6)
    with pytest.raises(SecurityFailure, match=r"replayed invocation counter 6 .*last seen 6"):
        store.check_incoming("m", ST, 6)
    with pytest.raises(SecurityFailure, match="replayed"):
        store.check_incoming("m", ST, 2)
    store.check_incoming("other", ST, 1)  # another scope (key set) starts fresh


def test_incoming_counters_survive_a_restart_after_flush(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path)
    store.check_incoming("m", ST, 41)
    store.flush()
    store.check_incoming("m", ST, 42)
    store.close()  # close flushes too
    again = InvocationCounterStore(path)
    assert again.last_incoming("m", ST) == 42
    with pytest.raises(SecurityFailure):
        again.check_incoming("m", ST, 42)
    again.check_incoming("m", ST, 43)


def test_skip_to_is_persisted_before_use(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=5)
    assert store.next("m") == 1
    store.skip_to("m", 1000)
    assert store.next("m") == 1000
    # crash here: the new process must still be past 1000
    assert InvocationCounterStore(path, block=5).next("m") > 1000


def test_exhausted_counter_space_is_an_error(tmp_path: Path) -> None:
    store = InvocationCounterStore(tmp_path / "ic.db", block=2)
    store.skip_to("m", MAX_COUNTER)
    assert store.next("m") == MAX_COUNTER
    with pytest.raises(SecurityFailure, match="exhausted"):
        store.next("m")


def test_bad_block_size() -> None:
    with pytest.raises(ValueError, match="block size 0"):
        InvocationCounterStore(":memory:", block=0)


def test_take_hands_out_a_run_persisted_before_use(tmp_path: Path) -> None:
    """What an association is granted: consecutive counters, across a block
    boundary, never again, and never past a jump of the sequence."""
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=5)
    assert store.take("m", 3) == (1, 3)
    assert store.take("m", 4) == (4, 4)  # 4..7 spans the reservation of 6..10
    assert store.next("m") == 8
    assert InvocationCounterStore(path, block=5).next("m") >= 11  # 8 was within a persisted block
    # a followed hint starts a new run: the take before it stops where the sequence jumps
    store.hint("m", 40)
    assert store.take("m", 8) == (40, 8)  # the tentative run, extended (persisted) as it goes
    assert store.take("m", 3) == (48, 3)
    store.confirm("m", 41)
    assert store.next("m") == 51
    # a normal sequence stops before a persisted tentative range it must skip
    other = InvocationCounterStore(tmp_path / "o.db", block=100)
    assert other.take("n", 2) == (1, 2)
    other.hint("n", 10)
    assert other.next("n") == 10  # tentative, never confirmed
    crashed = InvocationCounterStore(tmp_path / "o.db", block=100)
    assert crashed.take("n", 20) == (101, 20)  # the old reservation is skipped whole
    with pytest.raises(ValueError, match="must be >= 1"):
        store.take("m", 0)


def test_take_stops_before_a_tentative_range(tmp_path: Path) -> None:
    """After a crash the normal sequence reaches counters once sent
    tentatively: a run ends before them and the next one starts after."""
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=50)
    assert store.take("m", 2) == (1, 2)
    store.hint("m", 100)
    assert store.next("m") == 100  # tentative: [100, 108) persisted, never confirmed
    again = InvocationCounterStore(path, block=50)  # a crash
    assert again.take("m", 80) == (51, 49)  # 51..99, not into the tentative range
    first, n = again.take("m", 5)
    assert first >= 108 and n == 5


def test_known_and_recorded_incoming_counters(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path)
    assert store.known_incoming("m") == []
    store.record_incoming("m", ST, 40)
    store.record_incoming("m", ST, 7)  # never lowered
    store.record_incoming("other", ST, 99)
    assert store.known_incoming("m") == [(ST, 40)]
    store.flush()
    assert InvocationCounterStore(path).known_incoming("m") == [(ST, 40)]
    with pytest.raises(SecurityFailure, match="replayed invocation counter 40"):
        store.check_incoming("m", ST, 40)
