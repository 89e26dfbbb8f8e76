"""Issue 7 item 1, the counter store: hints are tentative, bounded, and a
counter handed out tentatively is never handed out again, even after a crash."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from smmc_gateway.dlms.errors import SecurityFailure
from smmc_gateway.dlms.ic_store import (
    MAX_COUNTER,
    MAX_TENTATIVE_RANGES,
    TENTATIVE_BLOCK,
    InvocationCounterStore,
)


def test_hint_is_followed_once_and_persisted_only_on_confirmation(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=5)
    assert [store.next("m") for _ in range(3)] == [1, 2, 3]
    assert store.hint("m", 40) is True
    assert store.next("m") == 40
    assert store.next("m") == 41  # the run goes on until confirmed
    assert InvocationCounterStore(path, block=5).next("m") == 6, "persisted before confirmation"
    assert store.confirm("m", 3) is False  # a counter from before the hint confirms nothing
    assert store.confirm("m", 41) is True
    assert store.next("m") == 42
    assert InvocationCounterStore(path, block=5).next("m") >= 42


def test_unconfirmed_counters_are_skipped_after_a_crash(tmp_path: Path) -> None:
    """A process follows a hint, sends a run of tentative counters (longer than
    one persisted extension) and is killed: the next process continues at the
    old position and skips every one of them."""
    path = tmp_path / "ic.db"
    code = (
        "import os\n"
        "from smmc_gateway.dlms.ic_store import InvocationCounterStore\n"
        f"s = InvocationCounterStore({str(path)!r}, block=5)\n"
        "used = [s.next('m') for _ in range(3)]\n"
        "s.hint('m', 20)\n"
        "used += [s.next('m') for _ in range(12)]\n"
        "print(' '.join(map(str, used)), flush=True)\n"
        "os._exit(9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 9, out.stderr
    used = [int(v) for v in out.stdout.split()]
    assert used == [1, 2, 3, *range(20, 32)]
    again = InvocationCounterStore(path, block=5)
    taken = [again.next("m") for _ in range(40)]
    assert taken[0] == 6
    assert not set(taken) & set(used), sorted(set(taken) & set(used))
    assert taken == sorted(taken)


def test_hint_bound_is_from_the_confirmed_counter(tmp_path: Path) -> None:
    store = InvocationCounterStore(tmp_path / "ic.db", block=5)
    store.next("m")
    with pytest.raises(SecurityFailure, match=r"hint 1003 is 1001 ahead .*at most 1000"):
        store.hint("m", 1003, max_jump=1000)
    assert store.hint("m", 900, max_jump=1000)
    assert store.next("m") == 900
    # unconfirmed hints do not chain: the bound is still from counter 2
    with pytest.raises(SecurityFailure, match="at most 1000"):
        store.hint("m", 1500, max_jump=1000)
    assert store.hint("m", 899, max_jump=1000) is False  # not ahead of the run
    with pytest.raises(SecurityFailure, match="hint 4294967295"):
        store.hint("m", MAX_COUNTER, max_jump=1 << 20)


def test_tentative_ranges_stay_bounded_and_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=5)
    tentative: list[int] = []
    for i in range(3 * MAX_TENTATIVE_RANGES):
        assert store.hint("m", 100 + 50 * i, max_jump=1 << 20)
        tentative.append(store.next("m"))
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT COUNT(*) FROM tentative WHERE scope = 'm'").fetchone()[0]
    assert rows <= MAX_TENTATIVE_RANGES
    again = InvocationCounterStore(path, block=5)
    taken = [again.next("m") for _ in range(200)]
    assert not set(taken) & set(tentative)
    assert taken == sorted(taken)


def test_confirmation_drops_passed_ranges(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=5)
    store.hint("m", 30)
    store.next("m")
    store.hint("m", 60)  # the meter refused 30 too: a second run
    assert store.next("m") == 60
    assert store.confirm("m", 60)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT low, high FROM tentative").fetchall()
    assert rows == [], rows
    assert InvocationCounterStore(path, block=5).next("m") >= 60 + TENTATIVE_BLOCK


def test_skip_to_ends_a_run_and_still_skips_its_counters(tmp_path: Path) -> None:
    path = tmp_path / "ic.db"
    store = InvocationCounterStore(path, block=5)
    store.hint("m", 10)
    assert store.next("m") == 10
    store.skip_to("m", 8)
    taken = [store.next("m") for _ in range(5)]
    assert taken[0] == 8 and 10 not in taken
