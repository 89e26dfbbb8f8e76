"""Meter pushes (alarms, last gasp, power restored) from the push listener to events.

:class:`PushRouting` gives the :class:`~smmc_gateway.dlms.push.PushListener` the keys
of each configured meter (found by the system title in a ciphered push — from the
meter's key entry ``system_title`` — or else by the peer's IP address when exactly
one TCP meter has it) and turns every accepted data-notification into one
EndDeviceEvents message on the meter's events topic (class EVENT: never dropped).

Keys: for a meter with an entry in the key change journal (use case 10) the key sets
are the journal's (``KeyJournal.current``: the new keys, plus the old ones while the
change is pending), not the key file's. The journal is read again only when its file
changed (inode, mtime, size), so a burst of pushes after an outage does not parse it
on the event loop for every push. A journal that cannot be read refuses the meter's
pushes (``refused_security``) rather than fall back to keys that may be superseded.
Invocation counters: a meter without a journal entry keeps the scope
``push:{meter_id}``; with one, each key set has its own scope (a meter may restart its
counter with new keys).

Peers: :meth:`PushRouting.peers` is the listener's admission list, the configured TCP
meters' addresses (names resolved once, at start, by :func:`resolve_hosts`) and
``[push] allow_from``. :func:`ensure_nofile` checks (and where it can, raises) the
open-files limit against what the configuration may hold open.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from smmc_gateway.dlms.push import (
    MeterKeys,
    PeerFilter,
    PushEvent,
    PushKeySet,
    PushRefused,
    key_fingerprint,
    normalize_ip,
)
from smmc_gateway.ops.config_model import MeterConfig, ModelConfig, TcpConnection
from smmc_gateway.uplink.envelope import Event, event
from smmc_gateway.usecases.key_change import KeyJournal, KeySet

log = structlog.get_logger("smmc_gateway.pushes")

EV_PUSH = "smmc.push.dataNotification"
EV_PUSH_EVENT = "smmc.push.eventNotification"
DETAILS_MAX = 16_384
"""Characters of a push's body in its event's details (the body is cut at whole
top-level elements beyond that, never inside one: details stay valid JSON)."""
NOFILE_MARGIN = 128
"""Open files besides meter sessions and push connections: stores, broker, metrics,
serial buses, logging, the audit inbox."""


def _plain(value: Any) -> Any:
    """A typed value tree to compact plain JSON (type names dropped)."""
    if isinstance(value, dict) and "type" in value:
        inner = value.get("value")
        if isinstance(inner, list):
            return [_plain(v) for v in inner]
        return value.get("datetime", inner)
    return value


def tcp_hosts(meters: Iterable[MeterConfig]) -> list[str]:
    """The distinct hosts of the TCP meters, in configuration order."""
    seen: dict[str, None] = {}
    for m in meters:
        if isinstance(m.connection, TcpConnection):
            seen.setdefault(m.connection.host, None)
    return list(seen)


async def resolve_hosts(
    hosts: Iterable[str], *, timeout_s: float = 5.0, parallel: int = 16
) -> dict[str, tuple[str, ...]]:
    """Each host's IP addresses (normalized: IPv4-mapped IPv6 as IPv4). An IP literal
    is itself; a name is resolved once (a name that does not resolve in ``timeout_s``
    gets no address, with a warning: its meter's pushes are taken only from
    ``allow_from`` networks)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    out: dict[str, tuple[str, ...]] = {}

    async def one(host: str) -> None:
        ip = normalize_ip(host)
        if ip is not None:
            out[host] = (str(ip),)
            return
        async with gate:
            try:
                async with asyncio.timeout(timeout_s):
                    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError) as exc:
                log.warning(
                    "push_peer_unresolved",
                    host=host,
                    error=f"{type(exc).__name__}: {exc}",
                    effect="pushes from this meter are taken only from allow_from",
                )
                out[host] = ()
                return
        found = (normalize_ip(str(info[4][0])) for info in infos)
        out[host] = tuple(dict.fromkeys(str(a) for a in found if a is not None))

    await asyncio.gather(*(one(h) for h in dict.fromkeys(hosts)))
    return out


class PushRouting:
    """Key lookup and event building for pushes from configured meters.

    ``journal``: the key change journal (keys of meters with an entry come from it);
    ``addresses``: host -> IP addresses (:func:`resolve_hosts`); without it, hosts that
    are IP literals are used as they are. ``models``: the meter models, whose quirks
    are tolerated in their meters' pushes (a meter of an unknown model: the defaults)."""

    def __init__(
        self,
        meters: Iterable[MeterConfig],
        journal: KeyJournal | None = None,
        addresses: Mapping[str, Sequence[str]] | None = None,
        models: Mapping[str, ModelConfig] | None = None,
    ) -> None:
        self.journal = journal
        # the live mapping (a reload replaces its content in place): not copied
        self.models: Mapping[str, ModelConfig] = models if models is not None else {}
        self._version: tuple[int, int, int] | None = None
        self._cache: dict[str, MeterKeys | PushRefused] = {}
        self.update(meters, addresses)

    def update(
        self, meters: Iterable[MeterConfig], addresses: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Take the fleet as it is now (a meter provisioned, changed or removed while
        running): keys, system titles and peer addresses are rebuilt; the listener's
        admission list follows when it is given :meth:`peers` again."""
        self._build(meters, addresses)
        self._cache.clear()

    def _build(
        self, meters: Iterable[MeterConfig], addresses: Mapping[str, Sequence[str]] | None
    ) -> None:
        self._base: dict[str, MeterKeys] = {}
        self._configured: dict[str, KeySet] = {}
        self.by_title: dict[bytes, str] = {}
        by_host: dict[str, list[str]] = {}
        self.addresses: set[str] = set()
        for m in meters:
            k = m.keys
            hls = m.security == "hls-gmac"
            model = self.models.get(m.model)
            keys = MeterKeys(
                meter_id=m.id,
                system_title=k.system_title if k else None,
                ek=k.ek.reveal() if hls and k and k.ek else None,
                ak=k.ak.reveal() if hls and k and k.ak else None,
                required_protection=m.push_required_protection,
                quirks=tuple(sorted(model.quirks)) if model is not None else None,
            )
            self._base[m.id] = keys
            if keys.ek is not None and keys.ak is not None:
                self._configured[m.id] = KeySet(keys.ek, keys.ak)
            if keys.system_title:
                self.by_title[keys.system_title] = m.id
            if isinstance(m.connection, TcpConnection):
                host = m.connection.host
                if addresses is not None:
                    ips = tuple(addresses.get(host, ()))
                else:
                    ip = normalize_ip(host)
                    ips = (str(ip),) if ip is not None else ()
                for ip_text in ips:
                    self.addresses.add(ip_text)
                    by_host.setdefault(ip_text, []).append(m.id)
        self.by_host = {h: ids[0] for h, ids in by_host.items() if len(ids) == 1}

    def peers(self, allow_from: Iterable[str] = ()) -> PeerFilter:
        """The listener's admission list: the meters' addresses and ``allow_from``."""
        return PeerFilter(self.addresses, allow_from)

    def lookup(self, system_title: bytes | None, peer: str) -> MeterKeys | None:
        if system_title is not None:
            meter_id = self.by_title.get(system_title)
        else:
            ip = normalize_ip(peer)
            meter_id = self.by_host.get(str(ip)) if ip is not None else None
        if meter_id is None:
            return None
        return self.keys(meter_id)

    def keys(self, meter_id: str) -> MeterKeys:
        """The meter's keys now; raises PushRefused when the journal cannot be read (or
        the meter was removed since the push was routed)."""
        base = self._base.get(meter_id)
        if base is None:
            raise PushRefused("refused_unknown", f"meter {meter_id} is no longer configured")
        configured = self._configured.get(meter_id)
        if self.journal is None or configured is None:
            return base
        version = self._journal_version()
        if version != self._version:
            self._cache.clear()
            self._version = version
        found = self._cache.get(meter_id)
        if found is None:
            found = self._cache[meter_id] = self._from_journal(base, configured)
        if isinstance(found, PushRefused):
            raise found
        return found

    def _journal_version(self) -> tuple[int, int, int] | None:
        assert self.journal is not None
        try:
            st = os.stat(self.journal.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _from_journal(self, base: MeterKeys, configured: KeySet) -> MeterKeys | PushRefused:
        assert self.journal is not None
        try:
            entry = self.journal.entry(base.meter_id)
            sets = self.journal.current(base.meter_id, configured)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "push_key_journal_unreadable",
                meter_id=base.meter_id,
                journal=str(self.journal.path),
                error=f"{type(exc).__name__}: {exc}",
            )
            return PushRefused(
                "refused_security",
                f"meter {base.meter_id}: key journal {self.journal.path} "
                f"unreadable ({type(exc).__name__}); pushes refused until fixed",
            )
        if entry is None:
            return base  # no key change ever: the key file's keys, scope push:{meter_id}
        return MeterKeys(
            meter_id=base.meter_id,
            system_title=base.system_title,
            ek=sets[0].ek,
            ak=sets[0].ak,
            required_protection=base.required_protection,
            quirks=base.quirks,
            key_sets=tuple(
                PushKeySet(s.ek, s.ak, f"push:{base.meter_id}:{key_fingerprint(s.ek, s.ak)}")
                for s in sets
            ),
        )

    @staticmethod
    def event(push: PushEvent) -> Event:
        details, cut = push_details(push.body)
        reason = "ciphered" if push.ciphered else "plain"
        name = EV_PUSH
        if push.attribute is not None:
            class_id, obis, attr = push.attribute
            name, reason = EV_PUSH_EVENT, f"{reason}; attribute {class_id}/{obis}/{attr}"
        if cut:
            reason += f"; details cut to {cut}"
        return event(
            name, created=push.meter_time or push.received_at, reason=reason, details=details
        )


def push_details(body: Any, limit: int = DETAILS_MAX) -> tuple[str, str]:
    """The body as compact JSON, always valid JSON: a body longer than ``limit``
    characters keeps its first top-level elements that fit (and says how many of
    how many in the second element); ``""`` when nothing was cut."""
    plain = _plain(body)
    text = json.dumps(plain, separators=(",", ":"))
    if len(text) <= limit:
        return text, ""
    if not isinstance(plain, list):
        return json.dumps(None), f"nothing: one value of {len(text)} characters"
    kept: list[Any] = []
    size = 2
    for item in plain:
        part = len(json.dumps(item, separators=(",", ":"))) + (1 if kept else 0)
        if size + part > limit:
            break
        kept.append(item)
        size += part
    return json.dumps(kept, separators=(",", ":")), f"{len(kept)} of {len(plain)} elements"


def ensure_nofile(needed: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (never above the hard limit);
    warn when it stays below. Returns the (soft, hard) limits in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                log.info("nofile_limit_raised", soft_was=soft, soft=target, hard=hard)
                soft = target
            except (ValueError, OSError) as exc:
                log.warning("nofile_limit_not_raised", error=str(exc))
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "nofile_limit_low",
            soft=soft,
            hard=hard,
            needed=needed,
            advice="raise LimitNOFILE= in the systemd unit (or ulimit -n) to at least "
            f"{needed}: max_tcp_sessions + push.max_connections + "
            f"{NOFILE_MARGIN}; meter reads may fail with 'Too many open files'",
        )
    return soft, hard
