"""Issue 7 item 5, push keys after a key change: pushes are deciphered with the keys the
key journal says are current (the new ones, and the old ones while a change is pending),
not only with the key file; replay detection runs only after a push authenticated; the
journal is read again only when its file changed; an unreadable journal refuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import PushEvent, PushListener, PushRefused
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.pushes import PushRouting
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.key_change import KeyEntry, KeyJournal, KeySet, change_keys

from tests.support_sim import FleetSpec, RunningFleet, running_fleet

TITLE = bytes.fromhex("4d4d4d0000000007")
OLD = KeySet(bytes(range(16)), bytes(range(16, 32)))
NEW = KeySet(bytes(range(100, 116)), bytes(range(200, 216)))
FORGED = KeySet(bytes(range(16)), bytes(16))
METER = "m-7"


def push(keys: KeySet, counter: int, invoke: int = 1) -> bytes:
    apdu = _core.encode_apdu(
        {
            "apdu": "data-notification",
            "long_invoke_id_and_priority": invoke,
            "date_time": _core.encode_datetime(datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
            "body_raw": _core.encode({"type": "double-long-unsigned", "value": 1}),
        }
    )
    return _core.cipher_apdu(
        apdu,
        security_control=0x30,
        system_title=TITLE,
        invocation_counter=counter,
        ek=keys.ek,
        ak=keys.ak,
        general=True,
    )


def routing(tmp_path: Path, journal: KeyJournal | None) -> PushRouting:
    meters = [
        {
            "meter_id": METER,
            "port": 4061,
            "ek": OLD.ek.hex(),
            "ak": OLD.ak.hex(),
            "system_title": TITLE.hex(),
        }
    ]
    cfg = load_config(write_lab_config(tmp_path / "gw", meters, broker=("127.0.0.1", 1883)))
    return PushRouting(cfg.meters, journal=journal)


def listener_for(r: PushRouting) -> PushListener:
    """The sans-IO part is enough here: ``accept`` is what every pushed frame goes through."""
    return PushListener(r.lookup, lambda e: None, ic_store=InvocationCounterStore(":memory:"))


def refused(listener: PushListener, apdu: bytes) -> PushRefused:
    with pytest.raises(PushRefused) as caught:
        listener.accept(apdu, "127.0.0.1")
    return caught.value


def settle_with_new(journal: KeyJournal) -> None:
    """Confirm the pending change (the journal's API takes the pair it settles)."""
    journal.confirm(METER, OLD, NEW)


def test_pending_change_takes_new_and_old_keys_and_after_confirm_only_new(tmp_path: Path) -> None:
    journal = KeyJournal(tmp_path / "gw" / "state" / "key-journal.json")
    listener = listener_for(routing(tmp_path, journal))
    assert listener.accept(push(OLD, 100), "127.0.0.1").meter_id == METER  # before: key file
    journal.begin(METER, OLD, NEW)

    assert listener.accept(push(NEW, 1), "127.0.0.1").invocation_counter == 1
    assert listener.accept(push(OLD, 101), "127.0.0.1").invocation_counter == 101
    # counters are per key set: the new keys may start again low
    assert listener.accept(push(NEW, 2), "127.0.0.1").invocation_counter == 2
    assert "replayed invocation counter 2" in str(refused(listener, push(NEW, 2)))

    settle_with_new(journal)
    stale = refused(listener, push(OLD, 102))
    assert stale.kind == "refused_security"
    assert listener.accept(push(NEW, 3), "127.0.0.1").invocation_counter == 3


def test_key_file_only_without_a_journal_entry(tmp_path: Path) -> None:
    journal = KeyJournal(tmp_path / "gw" / "state" / "key-journal.json")
    listener = listener_for(routing(tmp_path, journal))
    assert listener.accept(push(OLD, 5), "127.0.0.1").meter_id == METER
    assert refused(listener, push(NEW, 6)).kind == "refused_security"
    # the scope of a meter that never changed keys is the one stored before: push:{id}
    assert listener.store.last_incoming(f"push:{METER}", TITLE) == 5


def test_a_forged_push_does_not_move_the_invocation_counter(tmp_path: Path) -> None:
    """Replay detection only after authentication: a push with a bad tag and a huge
    counter is refused and leaves the counter where it was."""
    journal = KeyJournal(tmp_path / "gw" / "state" / "key-journal.json")
    journal.begin(METER, OLD, NEW)
    listener = listener_for(routing(tmp_path, journal))
    forged = refused(listener, push(FORGED, 0xFFFFFFF0))
    assert forged.kind == "refused_security" and "2 key sets tried" in str(forged)
    assert listener.accept(push(NEW, 7), "127.0.0.1").invocation_counter == 7
    assert listener.accept(push(OLD, 8), "127.0.0.1").invocation_counter == 8


class CountingJournal(KeyJournal):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0

    def entry(self, meter_id: str) -> KeyEntry | None:
        self.reads += 1
        return super().entry(meter_id)


def test_the_journal_is_read_again_only_when_its_file_changed(tmp_path: Path) -> None:
    journal = CountingJournal(tmp_path / "gw" / "state" / "key-journal.json")
    journal.begin(METER, OLD, NEW)
    listener = listener_for(routing(tmp_path, journal))
    for n in range(1, 21):
        listener.accept(push(NEW, n), "127.0.0.1")
    first = journal.reads
    assert 1 <= first <= 2, first  # once for the meter (entry + current), not per push
    settle_with_new(journal)
    for n in range(21, 31):
        listener.accept(push(NEW, n), "127.0.0.1")
    assert first < journal.reads <= 2 * first + 2
    assert refused(listener, push(OLD, 500)).kind == "refused_security"


def test_an_unreadable_journal_refuses_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "gw" / "state" / "key-journal.json"
    journal = KeyJournal(path)
    journal.begin(METER, OLD, NEW)
    listener = listener_for(routing(tmp_path, journal))
    good = path.read_text()
    path.write_text("{ not json")
    why = refused(listener, push(NEW, 1))
    assert why.kind == "refused_security" and "key journal" in str(why) and str(path) in str(why)
    path.write_text(good)  # repaired: read again (the file changed)
    assert listener.accept(push(NEW, 2), "127.0.0.1").invocation_counter == 2


# ---------------------------------------------------------------- the real thing
def lab(sim: RunningFleet, tmp: Path, broker: Any, **kw: Any) -> Path:
    meters = [{**info, "port": port} for info, port in zip(sim.info, sim.ports, strict=True)]
    return write_lab_config(
        tmp / "gw", meters, broker=(broker.host, broker.port), gateway_id="gw-keys", **kw
    )


@contextlib.asynccontextmanager
async def opener_for(sim: RunningFleet) -> AsyncIterator[Any]:
    store = InvocationCounterStore(":memory:")

    @contextlib.asynccontextmanager
    async def open_with(keys: KeySet) -> AsyncIterator[ClientSession]:
        sec = Security.hls_gmac(system_title=b"SMMCTEST", ek=keys.ek, ak=keys.ak, ic_store=store)
        s = ClientSession(
            WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1),
            SessionSettings(client_sap=1, security=sec, response_timeout=2.0),
            meter_id="m0",
        )
        async with s:
            yield s

    yield open_with


async def test_the_daemon_takes_pushes_with_the_keys_of_a_finished_key_change(
    mosquitto: Any, tmp_path: Path
) -> None:
    """A simulated meter changes keys (the key file still has the old ones); its next
    pushes, ciphered with the new keys, are accepted by the daemon's push listener."""
    from smmc_gateway.headend.daemon import DaemonOptions, Gateway
    from smmc_gateway.usecases.clock import FixedTimeSource

    from tests.support_sim import free_ports

    port = free_ports(1)[0]
    async with running_fleet(FleetSpec(meters=1, push_destination=f"127.0.0.1:{port}")) as sim:
        config = load_config(lab(sim, tmp_path, mosquitto, push_port=port))
        info = sim.info[0]
        old = KeySet(bytes.fromhex(info["ek"]), bytes.fromhex(info["ak"]))
        journal = KeyJournal(Path(config.gateway.state_dir) / "key-journal.json")
        async with opener_for(sim) as open_with:
            done = await change_keys(
                open_with,
                info["meter_id"],
                old=old,
                new=NEW,
                kek=sim.fleet.meters[0].meter.credentials.kek,
                journal=journal,
            )
        assert done.outcome == "changed", done
        gw = Gateway(
            config, DaemonOptions(time_source=FixedTimeSource(synced=True), first_read_s=3600)
        )
        await gw.start()
        try:
            assert gw.push_listener is not None
            pushed: asyncio.Queue[PushEvent] = asyncio.Queue()
            on_event = gw.push_listener.on_event

            async def seen(event: PushEvent) -> None:
                result = on_event(event)
                if result is not None:
                    await result
                pushed.put_nowait(event)

            gw.push_listener.on_event = seen
            sim.fleet.power_outage(0)
            event = await asyncio.wait_for(pushed.get(), 30)
            counters = gw.push_listener.counters
        finally:
            await gw.stop()
    assert event.meter_id == info["meter_id"] and event.ciphered
    assert counters.refused_security == 0
