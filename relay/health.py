"""The loopback health endpoint: `GET /healthz` (200, or 503 naming the failing checks)
and `GET /metrics` (Prometheus text exposition 0.0.4).

Both answer from one snapshot (relay/metrics.py): live state read on the event loop and
database counts read on relay's database thread, cached for CACHE_SECONDS so scraping
cannot load the database. There is no authentication: the config accepts loopback
addresses only. A port that cannot be bound is logged and relay runs on without the
endpoint: a metrics port never stops reports.
"""

from __future__ import annotations

import asyncio
import errno
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from relay.config import ScopeKind
from relay.config.schema import Health
from relay.groups import is_clean
from relay.logs import get_logger
from relay.metrics import CONTENT_TYPE, OUTBOX_WAITING, DbCounts, Live, Snapshot, read_counts
from relay.metrics import render as render_metrics

if TYPE_CHECKING:
    from relay.app import Relay

log = get_logger("health")

CACHE_SECONDS = 2.0
DB_TIMEOUT = 5.0
NO_STORE = {"Cache-Control": "no-store"}


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def evaluate(snap: Snapshot, settings: Health) -> dict[str, dict[str, Any]]:
    """Each check with `ok` (True, False, or None when unknown) and its counts and ages."""
    live, db = snap.live, snap.db
    inbox_age, outbox_age = snap.inbox_age(), snap.outbox_age()
    return {
        "receiver": {"ok": live.receiver_connected, "connected": live.receiver_connected,
                     "reconnects": live.reconnects},
        "database": {"ok": db is not None},
        "dispatcher": {
            "ok": None if inbox_age is None else inbox_age < settings.inbox_stale_seconds,
            "backlog": None if db is None else db.inbox_pending,
            "oldest_pending_age_s": _seconds(inbox_age),
            "threshold_s": settings.inbox_stale_seconds,
        },
        "outbox": {
            "ok": None if outbox_age is None else outbox_age < settings.outbox_stale_seconds,
            "waiting": None if db is None else sum(db.outbox_rows.get(s, 0)
                                                   for s in OUTBOX_WAITING),
            "oldest_waiting_age_s": _seconds(outbox_age),
            "threshold_s": settings.outbox_stale_seconds,
        },
        "timers": {
            "ok": live.timers_age < settings.timers_stale_seconds,
            "last_run_age_s": _seconds(live.timers_age),
            "threshold_s": settings.timers_stale_seconds,
            "overdue": None if db is None else db.timers_overdue,
        },
    }


def healthz_body(checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    failing = [name for name, check in checks.items() if check["ok"] is False]
    return {"status": "unhealthy" if failing else "ok", "failing": failing, "checks": checks}


class HealthEndpoint:
    """The aiohttp server and the cached snapshot behind it."""

    def __init__(self, relay: Relay, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._relay = relay
        self._cache_seconds = cache_seconds
        self.started_at = relay.clock.now()
        self._lock = asyncio.Lock()
        self._counts: DbCounts | None = None
        self._read_at: float | None = None
        self._db_failing = False
        self._runner: web.AppRunner | None = None
        self.address: str | None = None
        """The bound host:port once listening (the real port when the config says 0)."""

    def live(self) -> Live:
        relay = self._relay
        cfg = relay.cfg
        return Live(
            now=relay.clock.now(), started_at=self.started_at,
            receiver_connected=relay.receiver.connected.is_set(),
            receiver_connections=relay.receiver.connections,
            frames_received=relay.receiver.frames,
            frames_processed=relay.dispatcher.processed,
            sends_ok=relay.pump.sent_count,
            timers_ran_at=relay.timers_ran_at,
            groups={scope.id: is_clean(relay.roster, cfg, scope)
                    for scope in cfg.scopes if scope.kind is ScopeKind.TEAM},
        )

    def _read(self) -> DbCounts:
        with self._relay.sessions() as s:
            return read_counts(s, self._relay.clock.now())

    async def counts(self) -> DbCounts | None:
        """Database counts, read at most once per cache period; None if it did not answer."""
        async with self._lock:
            fresh = (self._read_at is not None
                     and time.monotonic() - self._read_at < self._cache_seconds)
            if not fresh:
                try:
                    self._counts = await asyncio.wait_for(self._relay.run_db(self._read),
                                                          DB_TIMEOUT)
                except Exception as exc:  # down or busy: reported as a failing check
                    self._counts = None
                    if not self._db_failing:
                        log.warning("health.database_failed", exc_type=type(exc).__name__)
                    self._db_failing = True
                else:
                    self._db_failing = False
                self._read_at = time.monotonic()
            return self._counts

    async def snapshot(self) -> Snapshot:
        counts = await self.counts()
        return Snapshot(self.live(), counts)

    async def _healthz(self, _: web.Request) -> web.Response:
        body = healthz_body(evaluate(await self.snapshot(), self._relay.cfg.health))
        return web.json_response(body, status=503 if body["failing"] else 200,
                                 headers=NO_STORE, dumps=json.dumps)

    async def _metrics(self, _: web.Request) -> web.Response:
        snap = await self.snapshot()
        checks = {name: check["ok"]
                  for name, check in evaluate(snap, self._relay.cfg.health).items()}
        return web.Response(body=render_metrics(snap, checks).encode(),
                            headers={"Content-Type": CONTENT_TYPE, **NO_STORE})

    async def start(self, listen: str) -> bool:
        """Listen on `listen`; False (logged, nothing raised) if the port cannot be bound."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, _, port = listen.rpartition(":")
        try:
            await web.TCPSite(runner, host.strip("[]"), int(port)).start()
        except OSError as exc:
            await runner.cleanup()
            kind = {errno.EADDRINUSE: "address_in_use", errno.EACCES: "permission_denied",
                    errno.EADDRNOTAVAIL: "address_not_available"}.get(exc.errno or 0, "os_error")
            log.error("health.listen_failed", check="health", kind=kind,
                      exc_type=type(exc).__name__)
            return False
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.address = (f"[{bound_host}]:{bound_port}" if ":" in bound_host
                        else f"{bound_host}:{bound_port}")
        log.info("health.listening")
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve(relay: Relay) -> HealthEndpoint | None:
    """Start the endpoint `[health]` asks for; None when it is off or could not listen."""
    listen = relay.cfg.health.address
    if listen is None:
        return None
    endpoint = HealthEndpoint(relay)
    return endpoint if await endpoint.start(listen) else None
