"""Key escrow (issue 11 item 6): a meter's current keys, wrapped with the central KEK,
published so a central key store and the technician's CLI can reach the meter after a
remote key change. Clear keys never leave the gateway.

A bundle (:mod:`~smmc_gateway.usecases.key_bundle`) holds the keys a session with the
meter would use now: after a key change the key journal's (``confirmed``; or
``pending`` with the other set as ``previous``), else the configured ones (key file or
provisioning, ``configured``), plus the master key, LLS password and the meter's system
title when known; wrapped (RFC 3394) with ``[escrow] kek_file``, named by ``kek_id``.

It is published (class EVENT: durable, never dropped; not retained: a key store takes
it with a persistent session, or asks again) on ``smmc/v1/{gw}/meter/{meter}/keys``,
noun ``KeyBundle``:

* after a confirmed key change (``[escrow] on_key_change``, default on): :meth:`Escrow.run`
  watches the key journal (its file's inode, mtime and size; a session that confirms a
  change also wakes it) and escrows every meter whose confirmed keys were not escrowed
  yet. What was escrowed is remembered in the fleet database as a keyed fingerprint
  (HMAC-SHA256 under the central KEK: it reveals nothing of the keys), so a crash
  between the confirmation and the publish is made good at the next start;
* on request: EndDeviceConfig get with ``keyBundle: true`` (``[commands.enabled]
  keyEscrow``, off by default): the bundles are published and also carried in the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.ops.config_model import EscrowConfig, MeterConfig
from smmc_gateway.uplink.envelope import Draft, MessageClass, utc_iso
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics
from smmc_gateway.usecases.key_bundle import ClearKeys, wrap_bundle
from smmc_gateway.usecases.key_change import KeyJournal

log = structlog.get_logger("smmc_gateway.escrow")

NOUN = "KeyBundle"
# Table escrowed_keys: created by the migrations of smmc_gateway.headend.persistence (the
# fleet database is migrated when it is opened).


class Publisher(Protocol):
    async def publish(self, drafts: Sequence[Draft]) -> list[str]: ...


class NoKeys(Exception):
    """The meter has no keys to escrow (security none)."""


class Escrow:
    """Bundles and their publication (see the module doc)."""

    def __init__(
        self,
        config: EscrowConfig,
        fleet: Fleet,
        journal: KeyJournal | None,
        publisher: Publisher,
        topics: Topics,
        store: Store,
        interval_s: float = 2.0,
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.journal = journal
        self.publisher = publisher
        self.topics = topics
        self.store = store
        self.interval_s = interval_s
        self.wake = asyncio.Event()
        """Set it when a key change was confirmed: :meth:`run` looks at once."""

    # -- bundles ---------------------------------------------------------------------
    def _current(self, meter: MeterConfig) -> tuple[str, ClearKeys, ClearKeys | None]:
        k = meter.keys
        if meter.security == "none" or k is None:
            raise NoKeys(f"meter {meter.id}: security none, no keys to escrow")
        extra = {
            "master_key": k.master_key.reveal() if k.master_key else None,
            "password": k.password.reveal() if k.password else None,
            "system_title": k.system_title,
        }
        entry = self.journal.entry(meter.id) if self.journal is not None else None
        if entry is not None and meter.security == "hls-gmac":
            previous = None
            if entry.state == "pending" and entry.old is not None:
                previous = ClearKeys(ek=entry.old.ek, ak=entry.old.ak)
            return entry.state, ClearKeys(ek=entry.new.ek, ak=entry.new.ak, **extra), previous
        return (
            "configured",
            ClearKeys(
                ek=k.ek.reveal() if k.ek else None, ak=k.ak.reveal() if k.ak else None, **extra
            ),
            None,
        )

    def _fingerprint(self, state: str, keys: ClearKeys, previous: ClearKeys | None) -> str:
        parts = [
            state.encode(),
            keys.ek or b"",
            keys.ak or b"",
            previous.ek if previous and previous.ek else b"",
            previous.ak if previous and previous.ak else b"",
        ]
        mac = hmac.new(
            self.config.kek.reveal(), b"smmc-escrow\x00" + b"\x00".join(parts), hashlib.sha256
        )
        return mac.hexdigest()[:32]

    def bundle(self, meter_id: str, reason: str) -> tuple[dict[str, Any], str]:
        """The meter's bundle now and its fingerprint; NoKeys, UnknownMeter."""
        meter = self.fleet.meter(meter_id)
        state, keys, previous = self._current(meter)
        doc = wrap_bundle(
            keys,
            self.config.kek.reveal(),
            self.config.kek_id,
            previous=previous,
            mRID=meter_id,
            state=state,
            keyId=meter.keys.key_id if meter.keys else meter_id,
            reason=reason,
            createdDateTime=utc_iso(datetime.now(UTC)),
        )
        return doc, self._fingerprint(state, keys, previous)

    # -- publication -----------------------------------------------------------------
    async def publish(
        self, meter_ids: Iterable[str], reason: str
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Publish the bundles of ``meter_ids`` (one message each, stored durably with
        the escrow record in one transaction). Returns (bundles, [(meter, why not)])."""
        bundles: list[dict[str, Any]] = []
        refused: list[tuple[str, str]] = []
        drafts: list[Draft] = []
        rows: list[tuple[str, str, float]] = []
        now = datetime.now(UTC).timestamp()
        for meter_id in meter_ids:
            try:
                doc, fingerprint = self.bundle(meter_id, reason)
            except (NoKeys, KeyError, OSError, ValueError) as exc:
                refused.append((meter_id, str(exc) or type(exc).__name__))
                continue
            bundles.append(doc)
            rows.append((meter_id, fingerprint, now))
            body = json.dumps({"KeyBundle": [doc]}, separators=(",", ":")).encode()
            drafts.append(
                Draft(MessageClass.EVENT, self.topics.keys(meter_id), "created", NOUN, body)
            )
        if drafts:
            # stored durably first; a crash before the record is written only escrows the
            # same keys again at the next start
            await self.publisher.publish(drafts)
            await self._remember(rows)
            for doc in bundles:
                log.info(
                    "keys_escrowed",
                    meter_id=doc["mRID"],
                    state=doc["state"],
                    kek_id=self.config.kek_id,
                    reason=reason,
                )
        return bundles, refused

    async def _remember(self, rows: list[tuple[str, str, float]]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO escrowed_keys (meter_id, fingerprint, "
                "escrowed) VALUES (?,?,?)",
                rows,
            )

        await self.store.submit(job)

    async def _escrowed(self) -> dict[str, str]:
        def job(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            return list(conn.execute("SELECT meter_id, fingerprint FROM escrowed_keys"))

        return {str(m): str(f) for m, f in await self.store.submit(job)}

    async def sync(self) -> list[str]:
        """Escrow every served meter whose key change is confirmed and whose current
        keys were not escrowed yet; the meters escrowed."""
        if self.journal is None:
            return []
        done = await self._escrowed()
        due: list[str] = []
        for meter in self.fleet.meters():
            if meter.security != "hls-gmac":
                continue
            entry = self.journal.entry(meter.id)
            if entry is None or entry.state != "confirmed":
                continue
            state, keys, previous = self._current(meter)
            if done.get(meter.id) != self._fingerprint(state, keys, previous):
                due.append(meter.id)
        if due:
            await self.publish(due, "keyChange")
        return due

    def _version(self) -> tuple[int, int, int] | None:
        assert self.journal is not None
        try:
            st = os.stat(self.journal.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    async def run(self) -> None:
        """Escrow after key changes until cancelled (at start, then on every change of
        the key journal)."""
        if self.journal is None or not self.config.on_key_change:
            return
        seen: tuple[int, int, int] | bool | None = False
        while True:
            version = self._version()
            if version != seen or self.wake.is_set():
                self.wake.clear()
                try:
                    await self.sync()
                    seen = version
                except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
                    log.error(
                        "key_escrow_failed",
                        error=f"{type(exc).__name__}: {exc}",
                        effect="tried again at the next look",
                    )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self.wake.wait()
