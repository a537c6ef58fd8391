"""The composition root: the one place that builds the engine, keyring, bot and desks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.catalog import Catalog
from handlers.flows.intake import FlowContext
from handlers.flows.schedule import CheckinPolicy, SlaPolicy
from keys import Keyring
from relay import inbox, webhook
from relay.case_commands import CaseCommands
from relay.checkins import Checkins
from relay.clock import Clock
from relay.config import OrgConfig
from relay.delivery import Destinations, failure_hook
from relay.dispatcher import Dispatcher
from relay.due import DueRunner
from relay.escalation import Escalations
from relay.gateway import SignalGateway
from relay.groups import GroupRoster
from relay.health import HealthEndpoint, serve
from relay.lifecycle import CaseLifecycle
from relay.logs import get_logger
from relay.loops import run_until_stopped
from relay.moderation import Moderation
from relay.officers import OfficerDesk
from relay.outbox import OutboxPump, Status
from relay.receiver import Receiver
from relay.reporters import ReporterDesk
from relay.store.db import WalCheckpointer, make_engine, make_sessionmaker, start_checkpointer
from relay.store.migrate import ensure_schema
from relay.store.models import OutboxRow
from relay.store.sealing import Sealer

log = get_logger("app")
TIMER_POLL_SECONDS = 30.0


@dataclass
class Relay:
    cfg: OrgConfig
    engine: Engine
    sessions: sessionmaker[Session]
    sealer: Sealer
    clock: Clock
    gateway: SignalGateway
    dispatcher: Dispatcher
    pump: OutboxPump
    receiver: Receiver
    catalog: Catalog
    due: DueRunner
    roster: GroupRoster
    _db: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "relay-db"))
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _webhook: web.AppRunner | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    health: HealthEndpoint | None = None  # /healthz and /metrics on loopback, when on
    timers_ran_at: datetime | None = None  # when the timer loop last completed a run
    checkpointer: WalCheckpointer | None = None  # SQLite: checkpoints off the DB thread

    def run_db(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def ingest(self, frames: list[str], source: str = "ws") -> None:
        await self.run_db(self._ingest_sync, frames, source)
        self.dispatcher.wake.set()

    async def ingest_webhook(self, frames: list[str]) -> None:
        await self.ingest(frames, "webhook")

    def _ingest_sync(self, frames: list[str], source: str) -> None:
        now = self.clock.now()
        with self.sessions.begin() as s:
            for raw in frames:
                if inbox.ingest(s, self.sealer, raw, source, now) is inbox.Stored.QUARANTINED:
                    self.dispatcher.alert_quarantine(s, now)

    async def _dispatch(self) -> None:
        async def step() -> bool:
            busy = bool(await self.run_db(self.dispatcher.process_one))
            if self.dispatcher.groups_changed:
                self.dispatcher.groups_changed = False
                await self.refresh_groups()
            return busy

        await run_until_stopped(step, self.dispatcher.wake, self._stop, name="dispatcher")

    async def refresh_groups(self) -> None:
        """Re-read group membership; messages held for a now-clean group go out at once."""
        if await self.roster.refresh():
            await self.run_db(self._release_held)
            self.pump.wake.set()

    def _release_held(self) -> None:
        with self.sessions.begin() as s:
            s.execute(update(OutboxRow).where(
                OutboxRow.status == Status.HELD, OutboxRow.error_class == "held_by_policy",
            ).values(available_at=self.clock.now()))

    def _sweep(self) -> bool:
        with self.sessions.begin() as s:
            self.dispatcher.reporters.sweep_expired(s, self.clock.now())
        return False

    async def tick(self) -> int:
        """Fire the timers due at the clock's `now` (the loop calls this; tests call it
        after moving a fake clock), a short batch per database job until none is left, so
        messages are handled in between. Returns how many fired."""
        fired = 0
        while True:
            batch = int(await self.run_db(self.due.run_due, self.clock.now()))
            fired += batch
            if batch:
                self.pump.wake.set()
            if not self.due.backlog:
                break
        self.timers_ran_at = self.clock.now()
        return fired

    async def _timers(self) -> None:
        async def step() -> bool:
            await self.tick()
            return False

        await run_until_stopped(step, asyncio.Event(), self._stop, name="timers",
                                idle_poll=TIMER_POLL_SECONDS)

    async def _housekeeping(self) -> None:
        """Every minute: re-read group membership, delete abandoned drafts."""

        async def step() -> bool:
            await self.refresh_groups()
            return bool(await self.run_db(self._sweep))

        await run_until_stopped(step, asyncio.Event(), self._stop, name="housekeeping",
                                idle_poll=60.0)

    def _reask(self) -> None:
        with self.sessions.begin() as s:
            self.dispatcher.reporters.reask_all(s, self.clock.now())

    def _recover(self) -> None:
        """A row left 'sending' by a crash may have been delivered: resend it marked."""
        with self.sessions.begin() as s:
            s.execute(update(OutboxRow).where(OutboxRow.status == Status.SENDING).values(
                status=Status.PENDING, possible_repeat=True, lease_until=None))

    async def start(self) -> None:
        """Check Signal, recover, then start the receiver, dispatcher and outbox pump."""
        self.dispatcher.on_committed = self._wake_pump_threadsafe
        self._loop = asyncio.get_running_loop()
        await self.gateway.check()
        await self.roster.refresh()
        await self.run_db(self._recover)
        while await self.run_db(self.dispatcher.process_one):
            pass  # frames stored before a crash are handled before anyone is re-asked
        await self.run_db(self._reask)
        self._tasks = [
            asyncio.create_task(self.receiver.run(self._stop), name="receiver"),
            asyncio.create_task(self._dispatch(), name="dispatcher"),
            asyncio.create_task(self.pump.run(self._stop), name="outbox"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
            asyncio.create_task(self._timers(), name="timers"),
        ]
        if self.cfg.signal.webhook_listen:
            self._webhook = await webhook.start(self.ingest_webhook,
                                                self.cfg.signal.webhook_listen)
        self.health = await serve(self)  # before the wait: it reports a missing socket
        await self.receiver.connected.wait()
        self.ready.set()
        log.info("relay.ready")

    def _wake_pump_threadsafe(self) -> None:
        self._loop.call_soon_threadsafe(self.pump.wake.set)

    async def stop(self) -> None:
        self._stop.set()
        self.dispatcher.wake.set()
        self.pump.wake.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
        if self._webhook is not None:
            await self._webhook.cleanup()
        if self.health is not None:
            await self.health.stop()
        await self.gateway.close()
        await self.roster.close()
        self._db.shutdown(wait=True)
        self.engine.dispose()
        if self.checkpointer is not None:
            self.checkpointer.stop()  # TRUNCATE: a clean stop leaves an empty WAL

    async def run_forever(self) -> None:
        await self.start()
        await self._stop.wait()


def freeze_heap() -> None:
    """Once a long-running relay has started: collect, then move every object alive now
    (modules, config, keyring, compiled statements) out of the cyclic collector's reach
    (`gc.freeze`). A full collection walks only what was allocated since: in the
    benchmark (`python -m bench --trace`) a relay without this paused both of its threads
    for 89 ms in a full collection during the load, and none with it. Only for `relay run`:
    a process that builds many relays (the tests) would keep their cyclic garbage."""
    gc.collect()
    gc.freeze()


def build(cfg: OrgConfig, keyring: Keyring, clock: Clock, *, database_url: str | None = None,
          ping_interval: float = 20.0) -> Relay:
    engine = make_engine(database_url or cfg.storage.url, autocheckpoint=False)
    ensure_schema(engine)
    sessions = make_sessionmaker(engine)
    sealer = Sealer(keyring, clock)
    catalog = Catalog(cfg.texts)
    gateway = SignalGateway(service=cfg.signal.service, number=cfg.signal.bot_number,
                            use_https=cfg.signal.connection == "https",
                            send_timeout=cfg.signal.send_timeout_seconds)
    ctx = FlowContext.from_config(cfg)
    checkin_policy = CheckinPolicy.from_config(cfg.checkins, cfg.organisation.timezone)
    sla = SlaPolicy.from_config(cfg.escalation) if cfg.escalation.unclaimed else None
    escalations = Escalations(cfg, sealer, catalog)
    checkins = Checkins(cfg, sealer, catalog, checkin_policy, escalations)
    lifecycle = CaseLifecycle(cfg, sealer, catalog, escalations, checkins,
                              checkin_policy if cfg.checkins.enabled else None, sla)
    due = DueRunner(sessions, checkins, escalations, sla)
    reporters = ReporterDesk(cfg, sealer, catalog, ctx, lifecycle)
    officers = OfficerDesk(cfg, sealer, catalog, lifecycle)
    moderation = Moderation(cfg, sealer, catalog, officers)  # /warn, /warnings, /vote
    due = moderation.due_runner(sessions, checkins, escalations, sla)  # + vote deadlines
    CaseCommands(cfg, sealer, catalog, officers, lifecycle)

    roster = GroupRoster(service=cfg.signal.service, number=cfg.signal.bot_number,
                         use_https=cfg.signal.connection == "https")
    dispatcher = Dispatcher(cfg, sessions, sealer, clock, reporters, officers, catalog)
    relay_ref: dict[str, Relay] = {}

    async def ingest(frames: list[str]) -> None:
        await relay_ref["relay"].ingest(frames)

    def run_db(fn: Any, *args: Any) -> asyncio.Future[Any]:
        return relay_ref["relay"].run_db(fn, *args)

    # a silent socket is given up after one unanswered ping: detection scales with
    # ping_interval (20 s + 20 s by default, as signalbot's websockets defaults)
    receiver = Receiver(gateway.receive_url, ingest, ping_interval=ping_interval,
                        ping_timeout=ping_interval)
    pump = OutboxPump(sessions, sealer, gateway, clock, Destinations(cfg, sealer, roster, catalog),
                      run_db, failure_hook(cfg, sealer, catalog))
    dispatcher.outbox = pump
    app = Relay(cfg, engine, sessions, sealer, clock, gateway, dispatcher, pump, receiver,
                catalog, due, roster, checkpointer=start_checkpointer(engine))
    relay_ref["relay"] = app
    return app
