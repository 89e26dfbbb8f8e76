"""Issue 7 item 1: an unauthenticated counter hint never moves a persisted counter.

A real ClientSession over a real WrapperTransport talks to a scripted suite 0
meter (tests/security/meter_peer.py) that plays the attacker on the path for a
request where a test says so. The store is a file, reopened from disk as after
a crash, to check what was persisted; the meter records every counter it saw,
to check none is sent twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.dlms.ic_store import MAX_COUNTER, InvocationCounterStore
from smmc_gateway.dlms.session import MeterTimeout, ProtocolError, SecurityFailure

from tests.security.meter_peer import (
    SCOPE,
    SERVER_TITLE,
    CipheredMeter,
    ciphered_security,
    exception_response,
    session,
    wrapper_transport,
)

CLOCK = (8, "0.0.1.0.0.255", 2)
FORGED = bytes.fromhex("d80106ffffffff")  # the example, 7 bytes


def store_at(path: Path, block: int = 10) -> InvocationCounterStore:
    return InvocationCounterStore(path, block=block)


async def test_forged_exception_response_leaves_the_persisted_counter(tmp_path: Path) -> None:
    """D8 01 06 FFFFFFFF from anyone on the path: refused naming the hint and
    the bound; the next request goes on in sequence; after a restart the
    counter continues where it was (not at 2^32: the key set is not bricked)."""
    path = tmp_path / "ic.sqlite"
    store = store_at(path)
    calls = 0

    def attacker(request: dict[str, Any], counter: int) -> list[bytes] | None:
        nonlocal calls
        calls += 1
        return [FORGED] if calls == 1 else None

    meter = CipheredMeter(on_get=attacker)
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure) as refused:
            await s.get(*CLOCK)
        assert "4294967295" in str(refused.value) and f"at most {1 << 20}" in str(refused.value)
        assert (await s.get(*CLOCK))["value"] == 230  # the genuine meter, next counter
    assert max(meter.seen) < 20, meter.seen
    assert len(set(meter.seen)) == len(meter.seen), "a counter was sent twice"
    store.close()
    again = store_at(path)
    following = again.next(SCOPE)
    assert following <= 11, f"the persisted counter moved to {following}"
    assert following > max(meter.seen)


async def test_hint_within_the_bound_is_tentative_until_authenticated(tmp_path: Path) -> None:
    """A forged hint a little ahead is followed by the next request only; when
    that request gets no authenticated answer the persisted counter has not
    moved, and after a restart the normal sequence skips the counter that was
    sent tentatively (never the same counter twice under one key)."""
    path = tmp_path / "ic.sqlite"
    store = store_at(path, block=10)
    hint = 15
    answers: list[int] = []

    def attacker(request: dict[str, Any], counter: int) -> list[bytes] | None:
        answers.append(counter)
        if len(answers) == 1:
            return [exception_response(hint)]  # forged refusal
        return []  # the request sent with the hint is dropped on the path

    meter = CipheredMeter(on_get=attacker)
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure, match="expects invocation counter 15"):
            await s.get(*CLOCK)
        with pytest.raises(MeterTimeout):
            await s.get(*CLOCK)
    assert answers[1] == hint, "the request after the hint uses it"
    # a crash now: nothing confirmed the hint
    again = store_at(path, block=10)
    taken = [again.next(SCOPE) for _ in range(12)]
    assert taken[0] == 11, f"the persisted counter moved to {taken[0]}"
    assert hint not in taken, "a tentatively sent counter was handed out again"
    assert not set(taken) & set(meter.seen)
    assert taken == sorted(taken)


async def test_genuine_hint_is_followed_and_persisted_after_the_authenticated_answer(
    tmp_path: Path,
) -> None:
    """Our counter is behind the meter's (a store restored from a backup):
    the meter refuses with the counter it expects, the next request uses it,
    the meter's authenticated answer confirms it and it is persisted."""
    path = tmp_path / "ic.sqlite"
    store = store_at(path, block=10)
    meter = CipheredMeter(last_seen=500)
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure, match="expects invocation counter 501"):
            await s.get(*CLOCK)
        assert (await s.get(*CLOCK))["value"] == 230
        assert (await s.get(*CLOCK))["value"] == 230
    assert meter.seen[-2:] == [501, 502]
    store.close()
    again = store_at(path, block=10)
    assert again.next(SCOPE) > 502


async def test_hint_too_far_ahead_is_refused_naming_hint_and_bound(tmp_path: Path) -> None:
    store = store_at(tmp_path / "ic.sqlite")
    meter = CipheredMeter(last_seen=50_000)
    async with session(
        wrapper_transport(meter), ciphered_security(store), max_counter_jump=1000
    ) as s:
        with pytest.raises(SecurityFailure) as refused:
            await s.get(*CLOCK)
        text = str(refused.value)
        assert "hint 50001" in text and "at most 1000" in text, text
        with pytest.raises(SecurityFailure):  # still refused: our counter stays in sequence
            await s.get(*CLOCK)
    assert max(meter.seen) < 20


async def test_hint_not_ahead_of_ours_is_ignored(tmp_path: Path) -> None:
    store = store_at(tmp_path / "ic.sqlite")
    calls: list[int] = []

    def stale(request: dict[str, Any], counter: int) -> list[bytes] | None:
        calls.append(counter)
        return [exception_response(1)] if len(calls) == 1 else None

    meter = CipheredMeter(on_get=stale)
    async with session(wrapper_transport(meter), ciphered_security(store)) as s:
        with pytest.raises(SecurityFailure):
            await s.get(*CLOCK)
        await s.get(*CLOCK)
    assert calls[1] == calls[0] + 1


async def test_incoming_counter_is_recorded_only_from_an_authenticated_answer(
    tmp_path: Path,
) -> None:
    """With an encryption-only policy (no tag) a response proves nothing: its
    counter must not become the high-water mark (a forged 2^32-1 would make
    every later genuine response a 'replay')."""
    store = store_at(tmp_path / "ic.sqlite")
    forged_once: list[bool] = []

    def forger(request: dict[str, Any], counter: int) -> list[bytes] | None:
        if forged_once:
            return None
        forged_once.append(True)
        # encryption-only, counter near the top, content that does not decode
        return [meter.protect(bytes.fromhex("c4ffff"), counter=MAX_COUNTER - 1)]

    meter = CipheredMeter(sc=0x20, on_get=forger)
    async with session(
        wrapper_transport(meter), ciphered_security(store, security_control=0x20)
    ) as s:
        with pytest.raises(ProtocolError, match="undecodable"):
            await s.get(*CLOCK)
        meter.own = 5  # the genuine meter's next counter
        assert (await s.get(*CLOCK))["value"] == 230
    last = store.last_incoming(SCOPE, SERVER_TITLE)
    assert last is None or last < MAX_COUNTER - 1
