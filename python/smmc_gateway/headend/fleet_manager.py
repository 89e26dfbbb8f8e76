"""The fleet while the gateway runs: meters provisioned over MQTT and configuration
reloads (SIGHUP) applied live, persisted and reported (issue 11 item 5).

:class:`FleetManager` owns the answer to "which meters does this gateway serve": the
configuration files' meters, plus the meters provisioned over MQTT
(:mod:`~smmc_gateway.headend.provisioning`) whose ids the files do not define. Every
change goes through :meth:`FleetManager._apply`, one at a time (a lock), and reaches
every part that knows meters, without a restart:

* the :class:`~smmc_gateway.headend.fleet.Fleet` (registry, states, group index);
* the scheduler: an added meter's periodic jobs (collection, event polls, HAN polls)
  are scheduled as at start, a removed meter's pending runs dropped (a running session
  finishes; requests still naming it are answered FAILED: the meter is unknown);
* the session factory: models and buses are updated in place (sessions are built from
  the fleet's MeterConfig at each use);
* push routing: keys, system titles and the listener's admission list (a provisioned
  TCP meter's host is resolved and admitted);
* listeners (:attr:`FleetManager.listeners`): the retained registry, metrics, discovery
  of new meters.

Each change is a :class:`FleetChange` (added / changed / removed, by whom, problems),
logged (``fleet_changed``), replied (provisioning) and published in the registry's
``lastChange`` (reload, provisioning).

Reload: the configuration files are read again (off the event loop) and validated
whole; an invalid configuration changes nothing (every problem logged,
``config_reload_failed``, and reported). Meters, models and buses (and key files) are
applied live; a change of any other section is reported as needing a restart
(``config_reload_restart_needed``) and not applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from smmc_gateway.dlms.push import PushListener
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.provisioning import (
    Context,
    Provisioned,
    ProvisionStore,
    build,
    check_fleet,
    item_of,
    merged,
    record,
)
from smmc_gateway.headend.pushes import PushRouting, resolve_hosts, tcp_hosts
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import TOP_KEYS, ConfigError, load_config
from smmc_gateway.ops.config_model import GatewayConfig, MeterConfig
from smmc_gateway.ops.config_values import Problems
from smmc_gateway.usecases.key_change import KeyChangeRefused

log = structlog.get_logger("smmc_gateway.fleet")

#: Sections a reload does not apply (a restart does); meters, models and buses it applies.
RELOADED = ("meters", "models", "buses")
RESTART_SECTIONS = tuple(
    k for k in TOP_KEYS if k not in (*RELOADED, "include", "meters_csv")
)  # every other section of the file: a new one is restart-only until it says otherwise
VERBS = ("create", "change", "delete")


@dataclass
class FleetChange:
    """What one change did (or why it did nothing: ``result`` FAILED and ``problems``)."""

    by: str  # "start" | "reload" | "provisioning"
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    result: str = "OK"
    problems: list[str] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def summary(self) -> str:
        if self.result != "OK":
            return f"{self.by} failed ({len(self.problems)} problems): nothing changed"
        text = (
            f"{self.by}: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed"
        )
        if self.restart_needed:
            text += f"; needs a restart for [{'], ['.join(self.restart_needed)}]"
        return text


@dataclass
class ItemError:
    index: int
    code: str
    details: str


Listener = Callable[[FleetChange], Awaitable[None]]


class FleetManager:
    """See the module doc. Built by the daemon after the fleet, scheduler and session
    factory; :meth:`start` adds the provisioned meters."""

    def __init__(
        self,
        config: GatewayConfig,
        fleet: Fleet,
        scheduler: Scheduler,
        sessions: SessionFactory,
        store: ProvisionStore,
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.scheduler = scheduler
        self.sessions = sessions
        self.store = store
        self.file_meters: dict[str, MeterConfig] = {m.id: m for m in config.meters}
        self.provisioned: dict[str, Provisioned] = {}
        self.listeners: list[Listener] = []
        self.last_change: FleetChange | None = None
        self._lock = asyncio.Lock()
        self._routing: PushRouting | None = None
        self._listener: PushListener | None = None
        self._allow_from: tuple[str, ...] = ()
        self._addresses: dict[str, tuple[str, ...]] = {}

    # -- set-up ----------------------------------------------------------------------
    def context(self, config: GatewayConfig | None = None) -> Context:
        c = config or self.config
        kek = c.gateway.key_encryption_key
        return Context(
            c.source.parent,
            frozenset(c.models),
            frozenset(c.buses),
            kek.reveal() if kek is not None else None,
        )

    def attach_push(
        self,
        routing: PushRouting,
        listener: PushListener,
        allow_from: Sequence[str],
        addresses: Mapping[str, Sequence[str]],
    ) -> None:
        self._routing, self._listener = routing, listener
        self._allow_from = tuple(allow_from)
        self._addresses = {h: tuple(a) for h, a in addresses.items()}

    def origin(self, meter_id: str) -> str:
        """Where a served meter is defined: "file" or "mqtt"."""
        return "file" if meter_id in self.file_meters else "mqtt"

    async def start(self) -> FleetChange:
        """Add the provisioned meters the files do not shadow (a stored meter that no
        longer validates — the KEK or a model gone — is logged and left out)."""
        async with self._lock:
            self.provisioned = await self.store.load()
            built, problems = self._build_all(self.context())
            change = await self._apply(list(built.values()), [], "start")
            change.problems = problems
            return change

    def _build_all(self, ctx: Context) -> tuple[dict[str, MeterConfig], list[str]]:
        built: dict[str, MeterConfig] = {}
        problems: list[str] = []
        for meter_id, p in self.provisioned.items():
            if meter_id in self.file_meters:
                log.warning(
                    "provisioned_meter_shadowed",
                    meter_id=meter_id,
                    file=self.file_meters[meter_id].source,
                    effect="the configuration files define this id: their entry is "
                    "used; the one provisioned over MQTT is kept, not used",
                )
                continue
            probs = Problems()
            meter = build(item_of(p), f"provisioned meter {meter_id}", ctx, probs)
            if meter is None:
                text = [str(x) for x in probs.items]
                log.error("provisioned_meter_invalid", meter_id=meter_id, problems=text)
                problems.extend(text)
                continue
            built[meter_id] = meter
        return built, problems

    # -- applying --------------------------------------------------------------------
    async def _apply(
        self,
        put: Sequence[MeterConfig],
        remove: Sequence[str],
        by: str,
        restart_needed: Sequence[str] = (),
    ) -> FleetChange:
        change = FleetChange(by, restart_needed=list(restart_needed))
        for m in put:
            outcome = await self.fleet.put(m)
            if outcome == "added":
                self.scheduler.add_meter(m.id)
                change.added.append(m.id)
            elif outcome == "changed":
                change.changed.append(m.id)
        for meter_id in remove:
            if self.fleet.has(meter_id):
                self.fleet.remove(meter_id)
                self.scheduler.forget_meter(meter_id)
                change.removed.append(meter_id)
        if change.added or change.changed or change.removed:
            await self._refresh_push()
        log.info(
            "fleet_changed",
            by=by,
            added=change.added,
            changed=change.changed,
            removed=change.removed,
            meters=len(self.fleet),
            restart_needed=change.restart_needed or None,
        )
        await self._report(change)
        return change

    async def _report(self, change: FleetChange) -> None:
        self.last_change = change
        for listener in self.listeners:
            try:
                await listener(change)
            except Exception:  # a listener's failure does not undo the change
                log.exception("fleet_listener_failed", by=change.by)

    async def _refresh_push(self) -> None:
        if self._routing is None:
            return
        hosts = [h for h in tcp_hosts(self.fleet.meters()) if h not in self._addresses]
        if hosts:
            self._addresses.update(await resolve_hosts(hosts))
        self._routing.update(self.fleet.meters(), self._addresses)
        if self._listener is not None:
            self._listener.allowed_peers = self._routing.peers(self._allow_from)

    # -- provisioning over MQTT --------------------------------------------------------
    async def provision(
        self, verb: str, items: Sequence[Any]
    ) -> tuple[FleetChange | None, list[ItemError]]:
        """EndDeviceConfig create/change/delete of ``items`` (``EndDevices``): all or
        nothing. Errors (per item, with a code) change nothing."""
        async with self._lock:
            errors: list[ItemError] = []
            puts: list[tuple[MeterConfig, Provisioned]] = []
            rekeyed: list[str] = []
            deletes: list[str] = []
            seen: set[str] = set()
            ctx = self.context()
            for i, item in enumerate(items):
                where = f"payload.EndDevices[{i}]"
                meter_id = item.get("mRID") if isinstance(item, Mapping) else None
                if not isinstance(meter_id, str) or not meter_id:
                    errors.append(
                        ItemError(i, "InvalidRequest", f"{where}.mRID: is required (a meter id)")
                    )
                    continue
                if meter_id in seen:
                    errors.append(
                        ItemError(
                            i,
                            "InvalidRequest",
                            f"{where}.mRID: {meter_id!r} appears twice in this request",
                        )
                    )
                    continue
                seen.add(meter_id)
                refusal = self._refusal(verb, meter_id, where)
                if refusal is not None:
                    errors.append(ItemError(i, *refusal))
                    continue
                if verb == "delete":
                    if set(item) - {"mRID"}:
                        errors.append(
                            ItemError(i, "InvalidRequest", f"{where}: delete takes only mRID")
                        )
                    deletes.append(meter_id)
                    continue
                old = self.provisioned.get(meter_id)
                full = merged(item_of(old), item) if verb == "change" and old else dict(item)
                probs = Problems()
                meter = build(full, where, ctx, probs)
                if meter is None:
                    errors.extend(ItemError(i, "InvalidRequest", str(p)) for p in probs.items)
                    continue
                if self._keys_given(item) and not self._journal_allows(meter_id):
                    errors.append(
                        ItemError(
                            i,
                            "KeyChangePending",
                            f"{where}.security.keys: "
                            f"meter {meter_id} has an unsettled key change (it "
                            "may hold either key set); nothing changed",
                        )
                    )
                    continue
                puts.append((meter, record(full, old)))
                if self._keys_given(item):
                    rekeyed.append(meter_id)
            if not errors:
                after = {**{m.id: m for m in self.fleet.meters()}, **{m.id: m for m, _ in puts}}
                for gone in deletes:
                    after.pop(gone, None)
                probs = Problems()
                check_fleet(after.values(), probs)
                errors.extend(ItemError(-1, "InvalidRequest", str(p)) for p in probs.items)
            if errors:
                return None, errors
            await self.store.write([r for _, r in puts], deletes)
            for meter, rec in puts:
                self.provisioned[meter.id] = rec
            for meter_id in rekeyed:
                self._forget_keys(meter_id)
            for gone in deletes:
                self.provisioned.pop(gone, None)
                self._forget_keys(gone)
            change = await self._apply([m for m, _ in puts], deletes, "provisioning")
            return change, []

    def _refusal(self, verb: str, meter_id: str, where: str) -> tuple[str, str] | None:
        in_file = self.file_meters.get(meter_id)
        if verb == "create":
            if in_file is not None:
                return (
                    "AlreadyExists",
                    f"{where}.mRID: meter {meter_id} is defined in the "
                    f"configuration files ({in_file.source})",
                )
            if meter_id in self.provisioned:
                return (
                    "AlreadyExists",
                    f"{where}.mRID: meter {meter_id} is already provisioned; use verb change",
                )
            return None
        if in_file is not None:
            return (
                "NotProvisioned",
                f"{where}.mRID: meter {meter_id} is defined in the "
                f"configuration files ({in_file.source}): {verb} it there and reload "
                "(SIGHUP)",
            )
        if meter_id not in self.provisioned:
            return (
                "UnknownMeter",
                f"{where}.mRID: meter {meter_id} is not provisioned on this gateway",
            )
        if verb == "delete" and meter_id in self.sessions.changing:
            return (
                "KeyChangeRunning",
                f"{where}.mRID: a key change of meter {meter_id} is "
                "running; delete it once that request is answered",
            )
        return None

    @staticmethod
    def _keys_given(item: Mapping[str, Any]) -> bool:
        sec = item.get("security")
        return isinstance(sec, Mapping) and sec.get("keys") is not None

    def _journal_allows(self, meter_id: str) -> bool:
        journal = self.sessions.key_journal
        if journal is None:
            return True
        entry = journal.entry(meter_id)
        return entry is None or entry.state != "pending"

    def _forget_keys(self, meter_id: str) -> None:
        """Keys set anew (or the meter removed): a settled key journal entry would
        override them, so it goes."""
        journal = self.sessions.key_journal
        if journal is None:
            return
        try:
            if journal.forget(meter_id):
                log.info(
                    "key_journal_entry_dropped",
                    meter_id=meter_id,
                    why="keys provisioned anew or meter removed",
                )
        except KeyChangeRefused as exc:
            log.warning("key_journal_entry_kept", meter_id=meter_id, why=str(exc))

    # -- reload (SIGHUP) ---------------------------------------------------------------
    async def reload(self) -> FleetChange:
        """Re-read the configuration files and apply the difference (module doc)."""
        async with self._lock:
            source = self.config.source
            log.info("config_reload_started", source=str(source))
            try:
                new = await asyncio.to_thread(load_config, source)
            except ConfigError as exc:
                return await self._failed([str(p) for p in exc.problems])
            old_files = self.file_meters
            self.file_meters = {m.id: m for m in new.meters}
            # the gateway section (its KEK) is applied at a restart only, like the others
            built, problems = self._build_all(
                self.context(dataclasses.replace(new, gateway=self.config.gateway))
            )
            if problems:
                self.file_meters = old_files
                return await self._failed(problems)
            effective = {**built, **self.file_meters}
            restart = [
                name
                for name in RESTART_SECTIONS
                if getattr(new, name) != getattr(self.config, name)
            ]
            if restart:
                log.warning(
                    "config_reload_restart_needed",
                    sections=restart,
                    effect="not applied until the gateway restarts",
                )
            models_changed = dict(self.sessions.models) != dict(new.models)
            _replace(self.sessions.models, new.models)
            _replace(self.sessions.buses, new.buses)
            self.config = dataclasses.replace(
                new, **{name: getattr(self.config, name) for name in RESTART_SECTIONS}
            )
            remove = [m for m in self.fleet.ids() if m not in effective]
            ordered = [effective[m] for m in (*self.file_meters, *built) if m in effective]
            change = await self._apply(ordered, remove, "reload", restart)
            if models_changed and not (change.added or change.changed or change.removed):
                await self._refresh_push()  # a model's quirks reach its meters' pushes
            return change

    async def _failed(self, problems: list[str]) -> FleetChange:
        log.error(
            "config_reload_failed",
            problems=problems,
            count=len(problems),
            effect="still running on the previous configuration",
        )
        change = FleetChange("reload", result="FAILED", problems=problems)
        await self._report(change)
        return change


def _replace(target: MutableMapping[str, Any], new: Mapping[str, Any]) -> None:
    """Make ``target`` equal ``new`` in place (its holders see the change)."""
    for name in [n for n in target if n not in new]:
        del target[name]
    target.update(new)
