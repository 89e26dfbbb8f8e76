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

The journal is a JSON file (mode 0600, written atomically: temp file, fsync,
rename) holding secrets; it is the source of truth for a meter with an entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from smmc_gateway import _core
from smmc_gateway.dlms.errors import DataAccessError, SessionError

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
    state: State
    old: KeySet
    new: KeySet


class KeyJournal:
    """Durable per-meter key change state (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
            return doc
        except FileNotFoundError:
            return {}

    def _save(self, doc: dict[str, Any]) -> None:
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

    def entry(self, meter_id: str) -> KeyEntry | None:
        e = self._load().get(meter_id)
        if e is None:
            return None
        return KeyEntry(e["state"], KeySet.from_json(e["old"]), KeySet.from_json(e["new"]))

    def current(self, meter_id: str, configured: KeySet) -> list[KeySet]:
        """The key sets to try for a meter, most likely first."""
        e = self.entry(meter_id)
        if e is None:
            return [configured]
        return [e.new] if e.state == "confirmed" else [e.new, e.old]

    def begin(self, meter_id: str, old: KeySet, new: KeySet) -> None:
        doc = self._load()
        doc[meter_id] = {"state": "pending", "old": old.to_json(), "new": new.to_json()}
        self._save(doc)

    def confirm(self, meter_id: str) -> None:
        doc = self._load()
        doc[meter_id]["state"] = "confirmed"
        self._save(doc)

    def abandon(self, meter_id: str) -> None:
        doc = self._load()
        e = doc.get(meter_id)
        if e is not None and e["state"] == "pending":
            doc[meter_id] = {"state": "confirmed", "old": e["old"], "new": e["old"]}
            self._save(doc)


OpenWith = Callable[[KeySet], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class KeyChangeResult:
    meter_id: str
    outcome: Literal["changed", "unchanged", "unknown"]
    details: str


def transfer_parameters(kek: bytes, new: KeySet) -> dict[str, Any]:
    def item(key_id: int, key: bytes) -> dict[str, Any]:
        return {"type": "structure", "value": [
            {"type": "enum", "value": key_id},
            {"type": "octet-string", "value": _core.aes_key_wrap(kek, key).hex()}]}

    return {"type": "array", "value": [item(KEY_EK, new.ek), item(KEY_AK, new.ak)]}


async def _associates(open_with: OpenWith, keys: KeySet) -> str | None:
    """None when a session with ``keys`` opens and answers a GET, else the error."""
    try:
        async with open_with(keys) as s:
            await s.get(8, "0.0.1.0.0.255", 2)
        return None
    except (SessionError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def settle(open_with: OpenWith, meter_id: str, journal: KeyJournal) -> KeyChangeResult:
    """Prove which keys the meter holds and record it (see the module doc)."""
    e = journal.entry(meter_id)
    if e is None or e.state == "confirmed":
        return KeyChangeResult(meter_id, "changed" if e else "unchanged", "nothing pending")
    why_new = await _associates(open_with, e.new)
    if why_new is None:
        journal.confirm(meter_id)
        return KeyChangeResult(meter_id, "changed", "associated with the new keys")
    why_old = await _associates(open_with, e.old)
    if why_old is None:
        journal.abandon(meter_id)
        return KeyChangeResult(meter_id, "unchanged",
                               f"the meter still takes the old keys (new: {why_new})")
    return KeyChangeResult(meter_id, "unknown", f"neither key set associates (new: {why_new}; "
                           f"old: {why_old}); both kept, settle again later")


async def change_keys(open_with: OpenWith, meter_id: str, *, kek: bytes, old: KeySet,
                      new: KeySet, journal: KeyJournal,
                      obis: str = SECURITY_SETUP) -> KeyChangeResult:
    """Transfer ``new`` to the meter (wrapped by ``kek``) and settle which keys it holds."""
    if len(kek) != 16 or len(new.ek) != 16 or len(new.ak) != 16:
        raise ValueError("suite 0 keys and the master key are 16 bytes")
    pending = journal.entry(meter_id)
    if pending is not None and pending.state == "pending":
        first = await settle(open_with, meter_id, journal)
        if first.outcome == "unknown":
            return first
        old = journal.current(meter_id, old)[0]
    journal.begin(meter_id, old, new)
    try:
        async with open_with(old) as s:
            await s.action(64, obis, 2, transfer_parameters(kek, new))
    except DataAccessError as exc:
        journal.abandon(meter_id)
        return KeyChangeResult(meter_id, "unchanged", f"the meter refused: {exc.result}")
    except (SessionError, OSError, TimeoutError):
        pass  # an answer ciphered with the new keys, or a drop: settle decides
    return await settle(open_with, meter_id, journal)
