"""Use case 10, key change: new global keys for a meter without ever losing access to it.

The meter's Security setup (class 64, 0.0.43.0.x.255) method 2 ``key_transfer``
takes ``array of structure {key_id enum, key_wrapped octet-string}`` with each key
wrapped by the master key (KEK) per RFC 3394 (``_core.aes_key_wrap``); key ids:
0 global unicast encryption (EK), 2 authentication (AK).

The hard part is not the transfer but knowing afterwards which keys the meter holds:
a meter may apply the new keys at once and cipher its answer to the transfer with
them, or the line may drop between the meter's change and its answer. So:

1. the old *and* new keys are written durably to a :class:`KeyJournal` (state
   ``pending``) *before* anything is sent;
2. the transfer is sent on a session with the old keys; a data-access-result (the
   meter refused) means nothing changed: ``abandon``;
3. otherwise (success or an unreadable answer) :func:`settle` proves which keys
   work by associating: the new ones first (success: ``confirm``; only now may the
   gateway's key store drop the old keys), then the old ones (success: the meter
   did not change: ``abandon``); if neither associates, both stay in the journal
   (state ``pending``) and ``settle`` is tried again on the next occasion.

The journal is a JSON file (mode 0600, written atomically: temp file, fsync, rename,
then fsync of the directory, so a ``begin`` survives a power cut before the transfer is
sent) holding secrets; it is the source of truth for a meter with an entry. ``confirm``
and ``abandon`` act only on the exact (old, new) pair they were given: a late settle of
an older change (a session that started before a newer change began) cannot mark the
newer one settled. Once settled, the entry keeps only the keys the meter holds (state
``confirmed``, ``new``): the other key set is wiped from the file. ``begin`` refuses to
overwrite a ``pending`` entry (it would forget a key set the meter may hold); the caller
settles it first. Running changes are tracked by the head-end (one per meter).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Required, TypedDict

import structlog

from smmc_gateway import _core
from smmc_gateway.cosem.objects import Clock, SecuritySetup
from smmc_gateway.cosem.values import TypedValue, array, enum, octet_string, structure
from smmc_gateway.dlms.errors import DataAccessError, SessionError

log = structlog.get_logger("smmc_gateway.key_change")

SECURITY_SETUP = "0.0.43.0.1.255"
KEY_EK, KEY_AK = 0, 2
State = Literal["pending", "confirmed"]


@dataclass(frozen=True)
class KeySet:
    ek: bytes
    ak: bytes

    def __repr__(self) -> str:  # never show secrets
        return "KeySet(***)"

    def to_json(self) -> dict[str, str]:
        return {"ek": self.ek.hex(), "ak": self.ak.hex()}

    @classmethod
    def from_json(cls, doc: dict[str, str]) -> KeySet:
        return cls(bytes.fromhex(doc["ek"]), bytes.fromhex(doc["ak"]))


@dataclass(frozen=True)
class KeyEntry:
    """A meter's journal entry. ``old`` is None once the change is settled (``confirmed``:
    ``new`` holds the keys the meter takes; the other set was wiped)."""

    state: State
    old: KeySet | None
    new: KeySet


class KeyChangeRefused(Exception):
    """The journal cannot start this change (the message says why)."""


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalEntry(TypedDict, total=False):
    """One meter's entry of the key journal file: ``pending`` (``old`` and ``new``
    journaled before the transfer) or ``confirmed`` (``new`` only), each key set as
    :meth:`KeySet.to_json` writes it."""

    state: Required[Literal["pending", "confirmed"]]
    old: dict[str, str]
    new: Required[dict[str, str]]


Journal = dict[str, JournalEntry]
"""The key journal file: meter id -> its entry."""


class KeyJournal:
    """Durable per-meter key change state (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Every session asks for its meter's entry: the parsed file is kept with the
        # identity of the file it came from (device, inode, size, mtime, ctime), and read
        # again when a stat shows another file (each write renames a new one in) or after
        # our own write. The stat comes before the read, so a file replaced in between is
        # only read once more, never cached under the new file's identity.
        self._cached: Journal | None = None
        self._cached_as: tuple[int, int, int, int, int] | None = None

    def _load(self) -> Journal:
        """The journal as on disk, a fresh copy (the caller may change it and save it)."""
        try:
            doc: Journal = json.loads(self.path.read_text("utf-8"))
            return doc
        except FileNotFoundError:
            return {}

    def _view(self) -> Mapping[str, JournalEntry]:
        """The journal as on disk, to read only (shared: never change it)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if self._cached is None or self._cached_as != ident:
            self._cached, self._cached_as = None, None
            doc = self._load()
            self._cached, self._cached_as = doc, ident
        return self._cached

    def _save(self, doc: Journal) -> None:
        for e in doc.values():  # settled entries of an older version still held the old keys
            if e.get("state") == "confirmed":
                e.pop("old", None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            self._cached, self._cached_as = None, None
        fsync_dir(self.path.parent)

    def entry(self, meter_id: str) -> KeyEntry | None:
        e = self._view().get(meter_id)
        if e is None:
            return None
        old = e.get("old")
        if e["state"] == "confirmed":
            old = None  # a journal of an older version kept it: never used again
        return KeyEntry(
            e["state"],
            KeySet.from_json(old) if old is not None else None,
            KeySet.from_json(e["new"]),
        )

    def current(self, meter_id: str, configured: KeySet) -> list[KeySet]:
        """The key sets to try for a meter, most likely first."""
        e = self.entry(meter_id)
        if e is None:
            return [configured]
        if e.state == "confirmed" or e.old is None:
            return [e.new]
        return [e.new, e.old]

    def begin(self, meter_id: str, old: KeySet, new: KeySet) -> None:
        """Journal ``old`` and ``new`` (state ``pending``), durably, before the transfer."""
        doc = self._load()
        e = doc.get(meter_id)
        if e is not None and e.get("state") == "pending":
            raise KeyChangeRefused(
                f"meter {meter_id}: an earlier key change is still pending "
                "(settle it first: the meter may hold either key set)"
            )
        doc[meter_id] = {"state": "pending", "old": old.to_json(), "new": new.to_json()}
        self._save(doc)

    def forget(self, meter_id: str) -> bool:
        """Drop a *settled* entry (the meter's keys were set anew by provisioning, or the
        meter was removed): True if one was dropped. A ``pending`` entry is never dropped
        (KeyChangeRefused: the meter may hold either key set; settle it first)."""
        doc = self._load()
        e = doc.get(meter_id)
        if e is None:
            return False
        if e.get("state") == "pending":
            raise KeyChangeRefused(
                f"meter {meter_id}: a key change is still pending (the "
                "meter may hold either key set); settle it first"
            )
        del doc[meter_id]
        self._save(doc)
        return True

    def _settle(self, meter_id: str, old: KeySet, new: KeySet, keep: KeySet, how: str) -> bool:
        doc = self._load()
        e = doc.get(meter_id)
        if e is not None and e.get("state") == "confirmed" and KeySet.from_json(e["new"]) == keep:
            if "old" in e:  # settled the same way by a journal of an older version: wipe
                doc[meter_id] = {"state": "confirmed", "new": keep.to_json()}
                self._save(doc)
            return True  # already settled this way (by another session)
        if (
            e is None
            or e.get("state") != "pending"
            or "old" not in e
            or KeySet.from_json(e["old"]) != old
            or KeySet.from_json(e["new"]) != new
        ):
            log.warning(
                "key_journal_stale_settle",
                meter_id=meter_id,
                action=how,
                state=None if e is None else e.get("state"),
                reason="the journal no longer holds this pending (old, new) pair: left as it is",
            )
            return False
        doc[meter_id] = {"state": "confirmed", "new": keep.to_json()}
        self._save(doc)
        return True

    def confirm(self, meter_id: str, old: KeySet, new: KeySet) -> bool:
        """The meter takes ``new``: keep only it. Acts only if the pending entry is exactly
        (``old``, ``new``); True also when it is already settled this way, False (and a
        log line; nothing written) when the journal holds something else."""
        return self._settle(meter_id, old, new, new, "confirm")

    def abandon(self, meter_id: str, old: KeySet, new: KeySet) -> bool:
        """The meter still takes ``old``: keep only it. Acts only if the pending entry is
        exactly (``old``, ``new``); True also when it is already settled this way, False
        (and a log line; nothing written) when the journal holds something else."""
        return self._settle(meter_id, old, new, old, "abandon")


OpenWith = Callable[[KeySet], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class KeyChangeResult:
    meter_id: str
    outcome: Literal["changed", "unchanged", "unknown"]
    details: str


def transfer_parameters(kek: bytes, new: KeySet) -> TypedValue:
    """key_transfer's parameter: (key id, the key wrapped with the KEK) per key."""

    def item(key_id: int, key: bytes) -> TypedValue:
        return structure([enum(key_id), octet_string(_core.aes_key_wrap(kek, key))])

    return array([item(KEY_EK, new.ek), item(KEY_AK, new.ak)])


async def _associates(open_with: OpenWith, keys: KeySet) -> str | None:
    """None when a session with ``keys`` opens and answers a GET, else the error."""
    try:
        async with open_with(keys) as s:
            await s.get(*Clock().time)
        return None
    except (SessionError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def settle(open_with: OpenWith, meter_id: str, journal: KeyJournal) -> KeyChangeResult:
    """Prove which keys the meter holds and record it (see the module doc)."""
    e = journal.entry(meter_id)
    if e is None or e.state == "confirmed" or e.old is None:
        return KeyChangeResult(meter_id, "changed" if e else "unchanged", "nothing pending")
    why_new = await _associates(open_with, e.new)
    if why_new is None:
        if not journal.confirm(meter_id, e.old, e.new):
            return KeyChangeResult(
                meter_id,
                "unknown",
                "associated with the new keys, but "
                "the journal entry changed meanwhile; left as it is",
            )
        return KeyChangeResult(meter_id, "changed", "associated with the new keys")
    why_old = await _associates(open_with, e.old)
    if why_old is None:
        if not journal.abandon(meter_id, e.old, e.new):
            return KeyChangeResult(
                meter_id,
                "unknown",
                "associated with the old keys, but "
                "the journal entry changed meanwhile; left as it is",
            )
        return KeyChangeResult(
            meter_id, "unchanged", f"the meter still takes the old keys (new: {why_new})"
        )
    return KeyChangeResult(
        meter_id,
        "unknown",
        f"neither key set associates (new: {why_new}; "
        f"old: {why_old}); both kept, settle again later",
    )


async def change_keys(
    open_with: OpenWith,
    meter_id: str,
    *,
    kek: bytes,
    old: KeySet,
    new: KeySet,
    journal: KeyJournal,
    obis: str = SECURITY_SETUP,
) -> KeyChangeResult:
    """Transfer ``new`` to the meter (wrapped by ``kek``) and settle which keys it holds."""
    if len(kek) != 16 or len(new.ek) != 16 or len(new.ak) != 16:
        raise ValueError("suite 0 keys and the master key are 16 bytes")
    pending = journal.entry(meter_id)
    if pending is not None and pending.state == "pending":
        first = await settle(open_with, meter_id, journal)
        if first.outcome == "unknown":
            return first
        old = journal.current(meter_id, old)[0]
    journal.begin(meter_id, old, new)  # durable (file and directory) before the transfer
    try:
        async with open_with(old) as s:
            await s.action(*SecuritySetup(obis).key_transfer, transfer_parameters(kek, new))
    except DataAccessError as exc:
        journal.abandon(meter_id, old, new)
        return KeyChangeResult(meter_id, "unchanged", f"the meter refused: {exc.result}")
    except (SessionError, OSError, TimeoutError):
        pass  # an answer ciphered with the new keys, or a drop: settle decides
    return await settle(open_with, meter_id, journal)
