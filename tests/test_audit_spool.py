"""The audit spool format (ops/audit.py): durable 0600 files, one record a line,
content-derived ids, secrets redacted, files still being copied in left alone,
bad lines named."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from smmc_gateway.ops.audit import (
    AuditRecord,
    Write,
    archive,
    default_dir,
    pending_files,
    read_spool_file,
    record_id,
    write_record,
)


def _rec(value: object, cls: int = 71, member: int = 4, kind: str = "set") -> dict[str, object]:
    r = AuditRecord(command=kind, connection="optical /dev/ttyUSB0", client=1, auth="lls")
    r.writes.append(Write(kind, cls, "0.0.17.0.0.255", member, value, result="success"))
    return r.as_dict()


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_write_read_round_trip_mode_and_stable_id(tmp_path: Path) -> None:
    rec = _rec({"type": "long-unsigned", "value": 5})
    path = write_record(tmp_path / "spool", rec)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind
    (back,), problems = read_spool_file(path)
    assert problems == [] and back == rec
    assert back["recordId"] == record_id(back)
    changed = {**back, "result": "type-unmatched"}
    assert record_id(changed) != back["recordId"]


def test_secret_members_are_redacted() -> None:
    secret = {"type": "octet-string", "value": "41" * 16}
    for cls, member, kind in ((15, 7, "set"), (15, 2, "action"), (64, 2, "action")):
        rec = _rec(secret, cls, member, kind)
        assert "41" * 16 not in json.dumps(rec)
        assert rec["writes"][0]["value"] == {"redacted": True}  # type: ignore[index]
    assert _rec(secret)["writes"][0]["value"] == secret  # type: ignore[index]


def test_files_being_copied_wait_and_bad_lines_are_named(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ready = write_record(inbox, _rec({"type": "unsigned", "value": 1}))
    assert pending_files(inbox) == []  # just written: may still be settling
    _age(ready, 5)
    torn = inbox / "copying.jsonl"
    torn.write_text(json.dumps(_rec({"type": "unsigned", "value": 2})) + '\n{"recor')
    _age(torn, 5)
    (inbox / ".x.tmp").write_text("{}\n")
    assert pending_files(inbox) == [ready]
    _age(torn, 3600)  # never completed: taken, the torn line reported
    assert set(pending_files(inbox)) == {ready, torn}
    records, problems = read_spool_file(torn)
    assert len(records) == 1 and len(problems) == 1 and "line 2: not JSON" in problems[0]
    moved = archive(torn, "rejected")
    assert moved == inbox / "rejected" / "copying.jsonl" and not torn.exists()


def test_default_dir() -> None:
    assert default_dir({"SMMC_AUDIT_DIR": "/x/a"}) == Path("/x/a")
    assert default_dir({"XDG_STATE_HOME": "/s"}) == Path("/s/smmc-gateway/audit")
    assert default_dir({}) == Path.home() / ".local/state/smmc-gateway/audit"


async def test_auditing_session_notes_each_item_of_a_with_list_set() -> None:
    """Against the simulator: a SET with-list is two writes, each with its own result."""
    from smmc_gateway.dlms.errors import DataAccessError
    from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
    from smmc_gateway.dlms.transport import WrapperTransport
    from smmc_gateway.ops.audit import AuditingSession

    from tests.support_sim import FleetSpec, running_fleet

    password = b"Audit-pw-1"
    push, energy = "0.0.25.9.0.255", (3, "1.0.1.8.0.255", 2)
    async with running_fleet(FleetSpec(auth="lls", password=password, history_days=0)) as sim:
        settings = SessionSettings(client_sap=1, security=Security.lls(password))
        transport = WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1)
        async with ClientSession(transport, settings) as s:
            rec = AuditRecord(command="set", connection="tcp", client=1, auth="lls")
            audited = AuditingSession(s, rec)
            objects = await audited.get(40, push, 2)
            value = {"type": "double-long-unsigned", "value": 1}
            results = await audited.set_many([(40, push, 2), energy], [objects, value])
            assert results[0] is None and isinstance(results[1], DataAccessError)
    assert [w.result for w in rec.writes] == ["success", "read-write-denied"]
    assert rec.as_dict()["writes"][1]["value"] == value
