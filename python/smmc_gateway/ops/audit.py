"""Audit records of state-changing operations done at a meter (use case 5).

The technician's CLI (``smmc-gateway meter … set/action/clock --sync/connect/
disconnect/limit/firmware push``) writes one record per command that wrote to the
meter: who (OS user, client SAP, authentication level; never a secret), when
(UTC), which meter (device id and logical device name read from the meter, and the
connection), what (each set/action: class/OBIS/member and the typed value, values
of secret members redacted), the result (success or the meter's reason) and the
CLI version. A record is one JSON line in its own spool file, written to a
temporary name, fsync'ed, then renamed to ``*.jsonl`` (mode 0600): a reader never
sees half a record.

Spool directory: ``--audit-dir``, else ``$SMMC_AUDIT_DIR``, else
``$XDG_STATE_HOME/smmc-gateway/audit`` (``~/.local/state/smmc-gateway/audit``).
On a concentrator, point it at the daemon's ``state_dir/audit-inbox``; the daemon
publishes every record found there as an EndDeviceEvent
(``smmc.audit.opticalOperation``) and then moves the file to ``audit-inbox/done/``.

Reading a spool (the daemon's side) trusts nothing in it: :func:`inbox_problem` refuses
an inbox that is a symbolic link, not ours, or open to others (looser than 0700: anyone
could plant records); :func:`read_spool_file` opens with ``O_NOFOLLOW`` (a planted
symbolic link is never followed), takes only regular files, and reads at most
:data:`MAX_SPOOL_FILE_BYTES` (a larger file is refused unread); a refusal is a
:class:`SpoolFileRefused` naming why, and the file goes to ``rejected/``.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import socket
import stat
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDIT_NAMESPACE = uuid.UUID("6f7c1f52-2f1e-5b43-9a55-3d1c0a0e4a11")
EVENT_TYPE = "smmc.audit.opticalOperation"
REDACTED = {"redacted": True}

# (class id, "attribute"|"method", member) whose values are secrets.
_SECRET_MEMBERS = {
    (15, "attribute", 7),  # Association LN: secret (LLS password)
    (15, "method", 1),  # reply_to_HLS_authentication
    (15, "method", 2),  # change_HLS_secret
    (12, "method", 8),  # Association SN: change_secret
    (64, "method", 2),  # Security setup: key_transfer
    (64, "method", 3),  # key_agreement
    (64, "method", 5),  # import_certificate (not secret, but key material nearby)
    (72, "method", 7),  # M-Bus client: set_encryption_key (a HAN device's key, in clear)
    (72, "method", 8),  # M-Bus client: transfer_key (the HAN device's new key)
}


MAX_SPOOL_FILE_BYTES = 1 << 20
"""A spool file holds one record (a few KiB); more than this is refused unread."""


class AuditError(Exception):
    """The spool could not be written (the message names the directory and why)."""


class SpoolFileRefused(Exception):
    """A spool file that is not read: a symbolic link, not a regular file, too large or
    unreadable (the message names the file and why)."""


def is_secret(class_id: int, kind: str, member: int) -> bool:
    """Values written to these members are never recorded."""
    return (class_id, kind, member) in _SECRET_MEMBERS


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("SMMC_AUDIT_DIR"):
        return Path(env["SMMC_AUDIT_DIR"])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "smmc-gateway" / "audit"


def cli_version() -> str:
    try:
        from importlib.metadata import version

        return version("smmc-gateway")
    except Exception:
        from smmc_gateway import __version__ as v

        return str(v)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


@dataclass
class Write:
    """One set or action sent to the meter."""

    kind: str  # "set" | "action"
    class_id: int
    obis: str
    member: int
    value: Any
    result: str = "pending"
    count: int = 1

    def as_dict(self) -> dict[str, Any]:
        member = "attribute" if self.kind == "set" else "method"
        secret = is_secret(self.class_id, member, self.member)
        out: dict[str, Any] = {
            "request": self.kind,
            "class": self.class_id,
            "obis": self.obis,
            member: self.member,
            "result": self.result,
        }
        if self.count > 1:
            out["count"] = self.count
        if (self.class_id, member, self.member) == (18, "method", 2):
            out["value"] = {"omitted": "image blocks"}
        elif self.value is not None:
            value = {"raw": self.value.hex()} if isinstance(self.value, bytes) else self.value
            out["value"] = REDACTED if secret else value
        return out


@dataclass
class AuditRecord:
    """One state-changing command at one meter."""

    command: str
    connection: str
    client: int | None
    auth: str
    meter: dict[str, str | None] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    result: str = "success"
    details: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "time": self.time.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "user": os_user(),
            "host": socket.gethostname(),
            "client": self.client,
            "auth": self.auth,
            "connection": self.connection,
            "meter": dict(self.meter),
            "command": self.command,
            "writes": [w.as_dict() for w in self.writes],
            "details": dict(self.details),
            "result": self.result,
            "cliVersion": cli_version(),
        }
        return {"recordId": record_id(body), **body}


def record_id(body: Mapping[str, Any]) -> str:
    """uuid5 of the record's canonical content (without its id): stable across re-reads."""
    content = {k: v for k, v in body.items() if k != "recordId"}
    return str(uuid.uuid5(AUDIT_NAMESPACE, json.dumps(content, sort_keys=True)))


def write_record(directory: Path, record: Mapping[str, Any]) -> Path:
    """Durably write one record as its own ``*.jsonl`` spool file; return its path."""
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    stamp = str(record.get("time", "")).replace(":", "").replace("-", "")
    name = f"{stamp}-{record.get('recordId', uuid.uuid4())}"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = directory / f".{name}.tmp"
        final = directory / f"{name}.jsonl"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise AuditError(f"audit spool {directory}: {exc.strerror or exc}") from None
    return final


def inbox_problem(inbox: Path) -> str | None:
    """Why ``inbox`` must not be scanned (None: it may): it must be a real directory (not
    a symbolic link) owned by this process's user with no access for group or others."""
    try:
        st = os.lstat(inbox)
    except FileNotFoundError:
        return f"audit inbox {inbox} does not exist"
    except OSError as exc:
        return f"audit inbox {inbox}: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        return (
            f"audit inbox {inbox} is a symbolic link; it must be a real directory "
            "(mode 0700, owned by the gateway's user)"
        )
    if not stat.S_ISDIR(st.st_mode):
        return f"audit inbox {inbox} is not a directory"
    if st.st_uid != os.geteuid():
        return (
            f"audit inbox {inbox} is owned by uid {st.st_uid}, not by the gateway's user "
            f"(uid {os.geteuid()}); refused: others could plant or remove records"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return (
            f"audit inbox {inbox} has mode {mode:04o}, looser than 0700: other users "
            f"could plant or read records; refused until 'chmod 700 {inbox}'"
        )
    return None


def _read_capped(path: Path, max_bytes: int) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpoolFileRefused(f"{path.name}: a symbolic link; never followed") from None
        if isinstance(exc, PermissionError):
            raise SpoolFileRefused(
                f"{path.name}: cannot be read ({exc.strerror}); a file "
                "the gateway's user cannot read"
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SpoolFileRefused(f"{path.name}: not a regular file")
        if st.st_size > max_bytes:
            raise SpoolFileRefused(
                f"{path.name}: {st.st_size} bytes, more than the cap of "
                f"{max_bytes} bytes per spool file; not read"
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, max_bytes + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise SpoolFileRefused(
                    f"{path.name}: grew beyond the cap of {max_bytes} bytes "
                    "per spool file while being read; not taken"
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_spool_file(
    path: Path, max_bytes: int = MAX_SPOOL_FILE_BYTES
) -> tuple[list[dict[str, Any]], list[str]]:
    """(records, problems): every line must be a JSON object with a recordId.
    :class:`SpoolFileRefused` when the file is not read at all (see the module doc)."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    text = _read_capped(path, max_bytes).decode(errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name} line {n}: not JSON ({exc.msg})")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("recordId"), str):
            problems.append(f"{path.name} line {n}: not an audit record (no recordId)")
            continue
        records.append(rec)
    return records, problems


def pending_files(inbox: Path, settle_s: float = 1.0, give_up_s: float = 600.0) -> list[Path]:
    """Spool files ready in ``inbox`` (oldest name first; temporaries skipped).

    A file still being copied in is left for the next scan: one changed in the last
    ``settle_s`` seconds, or whose last line has no newline yet (unless it has not
    changed for ``give_up_s``: then it is taken, and its torn line reported). An entry
    that is not a regular file (a symbolic link, a FIFO…) is listed at once, never
    opened here: :func:`read_spool_file` refuses it."""
    if not inbox.is_dir():
        return []
    ready = []
    now = time.time()
    for p in sorted(inbox.glob("*.jsonl")):
        try:
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode):
                ready.append(p)
                continue
            age = now - st.st_mtime
            if age < settle_s:
                continue
            if st.st_size and age < give_up_s and not _ends_with_newline(p):
                continue
        except OSError:
            continue  # moved away meanwhile
        ready.append(p)
    return ready


def _ends_with_newline(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.lseek(fd, -1, os.SEEK_END)
        return os.read(fd, 1) == b"\n"
    finally:
        os.close(fd)


def archive(path: Path, sub: str = "done") -> Path:
    """Move a published spool file into ``inbox/done`` (or ``rejected``), durably."""
    target_dir = path.parent / sub
    target_dir.mkdir(exist_ok=True, mode=0o700)
    if target_dir.is_symlink() or not target_dir.is_dir():
        raise NotADirectoryError(
            f"{target_dir} is not a real directory (a symbolic link?); "
            f"{path.name} stays where it is"
        )
    target = target_dir / path.name
    os.replace(path, target)
    for d in (path.parent, target_dir):
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return target


def event_details(record: Mapping[str, Any]) -> str:
    """Compact JSON of what the EndDeviceEvent carries: the operation and its result."""
    keep = (
        "recordId",
        "time",
        "user",
        "host",
        "client",
        "auth",
        "connection",
        "meter",
        "command",
        "writes",
        "details",
        "result",
        "cliVersion",
    )
    return json.dumps({k: record.get(k) for k in keep}, sort_keys=True, separators=(",", ":"))


class AuditingSession:
    """Wraps a client session: every ``set``/``action`` is noted (with its result)."""

    def __init__(self, session: Any, record: AuditRecord) -> None:
        self._session = session
        self.record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def set(self, class_id: int, obis: Any, attr: int, value: Any, *a: Any, **k: Any) -> Any:
        w = Write("set", class_id, str(obis), attr, value)
        self.record.writes.append(w)
        return await self._note(w, self._session.set(class_id, obis, attr, value, *a, **k))

    async def action(
        self, class_id: int, obis: Any, method: int, param: Any = None, *a: Any, **k: Any
    ) -> Any:
        w = Write("action", class_id, str(obis), method, param)
        last = self.record.writes[-1] if self.record.writes else None
        if (
            (class_id, method) == (18, 2)  # image blocks: one entry with a count
            and last is not None
            and (last.kind, last.class_id, last.obis, last.member, last.result)
            == ("action", 18, w.obis, 2, "success")
        ):
            last.count += 1
            w = last
        else:
            self.record.writes.append(w)
        return await self._note(w, self._session.action(class_id, obis, method, param, *a, **k))

    async def set_many(self, refs: Any, values: Any) -> Any:
        writes = [Write("set", c, str(o), a, v) for (c, o, a), v in zip(refs, values, strict=True)]
        self.record.writes.extend(writes)
        return await self._note_many(writes, self._session.set_many(refs, values))

    async def action_many(self, refs: Any, params: Any) -> Any:
        writes = [
            Write("action", c, str(o), m, p) for (c, o, m), p in zip(refs, params, strict=True)
        ]
        self.record.writes.extend(writes)
        return await self._note_many(writes, self._session.action_many(refs, params))

    async def _note_many(self, writes: list[Write], call: Any) -> Any:
        try:
            results = await call
        except BaseException as exc:
            for w in writes:
                w.result = failure_text(exc)
            raise
        for w, r in zip(writes, results, strict=False):
            w.result = failure_text(r) if isinstance(r, BaseException) else "success"
        return results

    async def _note(self, w: Write, call: Any) -> Any:
        try:
            result = await call
        except BaseException as exc:
            w.result = failure_text(exc)
            raise
        w.result = "success"
        return result


def failure_text(exc: BaseException) -> str:
    """The meter's reason (data-access result) if there is one, else the error."""
    reason = getattr(exc, "result", None)
    if isinstance(reason, str) and reason:
        return reason
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = [
    "EVENT_TYPE",
    "MAX_SPOOL_FILE_BYTES",
    "AuditError",
    "AuditRecord",
    "AuditingSession",
    "SpoolFileRefused",
    "Write",
    "archive",
    "default_dir",
    "event_details",
    "failure_text",
    "inbox_problem",
    "is_secret",
    "pending_files",
    "read_spool_file",
    "record_id",
    "write_record",
]
