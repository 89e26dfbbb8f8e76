"""The daemon's audit inbox trusts nothing it finds (issue 7 item 14): spool files are
opened with O_NOFOLLOW (a planted symbolic link is moved aside, never followed), larger
than the cap they are refused unread, and an inbox that is a symbolic link, not ours,
or looser than 0700 is not scanned at all; the daemon creates it 0700.

The scan runs against the uplink's real SQLite store; ``publish`` is recorded (no
broker needed)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog
from smmc_gateway.headend.audit_inbox import AuditInbox
from smmc_gateway.ops.audit import (
    AuditRecord,
    SpoolFileRefused,
    inbox_problem,
    pending_files,
    read_spool_file,
    write_record,
)
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics

CAP = 4096


def _record(value: int) -> dict[str, Any]:
    r = AuditRecord(
        command="set",
        connection="optical /dev/ttyUSB0",
        client=1,
        auth="lls",
        meter={"deviceId": "SMC001000009"},
    )
    return r.as_dict() | {"details": {"value": value}}


def _aged(path: Path) -> Path:
    t = time.time() - 5
    os.utime(path, (t, t), follow_symlinks=False)
    return path


class Uplink:
    """The parts of the uplink the inbox uses: the real store; publish recorded."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.topics = Topics("gw-audit")
        self.published: list[Any] = []

    async def publish(
        self, drafts: Sequence[Any], also: Callable[[sqlite3.Connection], None] | None = None
    ) -> list[str]:
        def tx(conn: sqlite3.Connection) -> None:
            if also is not None:
                also(conn)

        await self.store.submit(tx)
        self.published.extend(drafts)
        return [f"m{len(self.published)}"]


@pytest.fixture
async def uplink(tmp_path: Path) -> AsyncIterator[Uplink]:
    u = Uplink(tmp_path / "outbox.sqlite")
    yield u
    await u.store.close()


@pytest.fixture
def logs() -> Any:
    with structlog.testing.capture_logs() as captured:
        yield captured


def _inbox(tmp_path: Path, uplink: Uplink) -> AuditInbox:
    return AuditInbox(
        tmp_path / "state" / "audit-inbox",
        uplink,
        settle_s=1.0,  # type: ignore[arg-type]
        max_file_bytes=CAP,
    )


async def test_the_inbox_is_made_0700(tmp_path: Path, uplink: Uplink) -> None:
    inbox = _inbox(tmp_path, uplink)
    assert stat.S_IMODE(inbox.inbox.stat().st_mode) == 0o700
    assert inbox_problem(inbox.inbox) is None


async def test_a_planted_symlink_is_moved_aside_never_followed(
    tmp_path: Path, uplink: Uplink, logs: Any
) -> None:
    inbox = _inbox(tmp_path, uplink)
    outside = tmp_path / "elsewhere.jsonl"  # e.g. another user's file, or /etc/shadow
    outside.write_text(json.dumps(_record(1)) + "\n")
    _aged(outside)
    link = inbox.inbox / "planted.jsonl"
    link.symlink_to(outside)
    _aged(link)
    good = _aged(write_record(inbox.inbox, _record(2)))
    assert await inbox.scan() == 1  # only the real file's record
    assert len(uplink.published) == 1
    moved = inbox.inbox / "rejected" / "planted.jsonl"
    assert moved.is_symlink() and os.readlink(moved) == str(outside)  # the link itself
    assert outside.read_text().startswith("{")  # untouched where it is
    assert (inbox.inbox / "done" / good.name).exists()
    (refused,) = [e for e in logs if e["event"] == "audit_file_refused"]
    assert refused["reason"] == "planted.jsonl: a symbolic link; never followed"


async def test_a_file_over_the_cap_is_rejected_unread(
    tmp_path: Path, uplink: Uplink, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = _inbox(tmp_path, uplink)
    big = inbox.inbox / "big.jsonl"
    line = json.dumps(_record(3)) + "\n"
    big.write_text(line * (CAP // len(line) + 1))
    _aged(big)
    size = big.stat().st_size
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counting_read)
    assert await inbox.scan() == 0 and uplink.published == []
    assert sum(reads) <= 1  # at most the settle check's last byte: the body is never read
    assert (inbox.inbox / "rejected" / "big.jsonl").exists()
    (refused,) = [e for e in logs if e["event"] == "audit_file_refused"]
    assert refused["reason"] == (
        f"big.jsonl: {size} bytes, more than the cap of {CAP} bytes per spool file; not read"
    )


@pytest.mark.parametrize("problem", ["mode-0755", "mode-0750", "symlink", "not-ours"])
async def test_a_loose_inbox_is_not_scanned(
    tmp_path: Path, uplink: Uplink, logs: Any, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = _inbox(tmp_path, uplink)
    record = _aged(write_record(inbox.inbox, _record(4)))
    expected = {
        "mode-0755": "has mode 0755, looser than 0700",
        "mode-0750": "has mode 0750, looser than 0700",
        "symlink": "is a symbolic link",
        "not-ours": "not by the gateway's user",
    }[problem]
    if problem.startswith("mode-"):
        inbox.inbox.chmod(int(problem[5:], 8))
    elif problem == "symlink":
        real = tmp_path / "real-inbox"
        inbox.inbox.rename(real)
        inbox.inbox.symlink_to(real)
        record = real / record.name
    else:
        uid = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: uid + 1)
    assert await inbox.scan() == 0 and await inbox.scan() == 0
    assert uplink.published == [] and record.exists()  # nothing read, nothing moved
    refused = [e for e in logs if e["event"] == "audit_inbox_refused"]
    assert len(refused) == 1 and expected in refused[0]["reason"]  # logged once, not per scan
    if problem.startswith("mode-"):
        assert "chmod 700" in refused[0]["reason"]
        inbox.inbox.chmod(0o700)  # fixed: scanned again
        assert await inbox.scan() == 1
        assert any(e["event"] == "audit_inbox_accepted" for e in logs)


def test_read_spool_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo, 0o600)  # must not block waiting for a writer
    with pytest.raises(SpoolFileRefused, match="not a regular file"):
        read_spool_file(fifo)
    target = tmp_path / "t.jsonl"
    target.write_text(json.dumps(_record(5)) + "\n")
    link = tmp_path / "l.jsonl"
    link.symlink_to(target)
    with pytest.raises(SpoolFileRefused, match="a symbolic link; never followed"):
        read_spool_file(link)
    (rec,), problems = read_spool_file(target, max_bytes=target.stat().st_size)
    assert problems == [] and rec["details"] == {"value": 5}
    with pytest.raises(SpoolFileRefused, match="more than the cap of 10 bytes"):
        read_spool_file(target, max_bytes=10)


def test_pending_files_lists_links_without_opening_them(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir(mode=0o700)
    dangling = inbox / "x.jsonl"
    dangling.symlink_to(tmp_path / "does-not-exist")
    fifo = inbox / "f.jsonl"
    os.mkfifo(fifo, 0o600)  # opening it for the newline check would block
    assert pending_files(inbox) == [fifo, dangling]
