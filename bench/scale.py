"""`python -m bench scale`: relay on a database of 100 000 cases and 1 000 000 messages.

Measured on a working copy of the cached build (`bench.scale_build`), in this order:

1. start-up to ready of the real relay in a child process (`build` + `start` against the
   sandbox), several times, with the resident memory of that process once ready;
2. finding a reporter's open cases by sender: `open_cases_of` with the sender's blind
   index (what every reporter message does), for random reporters;
3. listing a scope's open cases: an officer's ``/cases`` in the team group and in their
   DM, through the dispatcher (the product path), rolled back; and the listing query alone;
4. `run_due` with 100 000 pending timers: a pass when none is due (the 30-second tick),
   a pass when more than a full batch is due, and 200 more due at once, fired in passes
   back to back as `Relay.tick` does;
5. key rotation (`relay.rotation.rotate`) of the current epoch: rows re-wrapped per second;
6. retention (`relay.retention.purge`): a dry run (the deletions, rolled back), then the
   real purge (deletions, epoch shredding, checkpoint and VACUUM).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from bench.procs import Child
from bench.scale_build import (
    EXAMPLE,
    TEAM_SCOPE,
    Built,
    Shape,
    ensure_built,
    reporter_aci,
)
from bench.stats import summary_ms
from handlers.events import Sender, TextMessage
from keys import Keyring
from relay.app import Relay, build
from relay.case_commands import PAGE_SIZE
from relay.case_index import CaseListing
from relay.cases import OPEN_STATES, open_cases_of
from relay.clock import FakeClock
from relay.retention import purge
from relay.rotation import rotate
from relay.sandbox.ids import single_decode_group_id
from relay.sandbox_org import SandboxOrg, start_sandbox_org
from relay.store.models import Case, Timer
from relay.timers import BATCH

Log = Callable[[str], None]
DRAIN = 200  # timers due at once for the back-to-back passes of `_run_due`


@dataclass(frozen=True)
class ScaleParams:
    shape: Shape = field(default_factory=Shape)
    startups: int = 3
    lookups: int = 400
    list_reps: int = 200
    """/cases samples per place; the first one in the process (statement compilation) is
    also reported on its own."""
    list_budget_s: float = 10.0
    purge_cases: int | None = 200
    """Cases left past retention for the purge (None: all of them). Each one costs a full
    scan of the outbox today (see docs/performance.md), so all 10 000 would take minutes."""
    keep_copy: bool = False

    @classmethod
    def short(cls) -> ScaleParams:
        return cls(shape=Shape.tiny(), startups=1, lookups=40, list_reps=20, list_budget_s=5.0,
                   purge_cases=None)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


async def _startups(org: SandboxOrg, data_dir: Path, url: str, count: int,
                    workdir: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for n in range(count):
        spec = {"role": "relay", "example": EXAMPLE, "service": org.sandbox.service,
                "data_dir": str(data_dir), "database_url": url}
        spawned = time.perf_counter()
        child = await Child.spawn(spec, workdir, f"startup-{n}")
        process_to_ready = time.perf_counter() - spawned
        try:
            await org.sandbox.wait_for_subscriber(timeout=15)
        finally:
            stopped = await child.stop()
        await org.sandbox.wait_for_no_subscriber(timeout=15)
        runs.append({"startup_s": child.ready["startup_s"], "build_s": child.ready["build_s"],
                     "start_s": child.ready["start_s"], "rss_mb": child.ready["rss_mb"],
                     "process_to_ready_s": process_to_ready,
                     "peak_rss_mb_at_stop": stopped.get("peak_rss_mb")})
    startup = [r["startup_s"] for r in runs]
    rss = [r["rss_mb"] for r in runs]
    return {"runs": runs, "startup_median_s": statistics.median(startup),
            "startup_max_s": max(startup), "rss_median_mb": statistics.median(rss),
            "rss_max_mb": max(rss),
            "process_to_ready_median_s": statistics.median(r["process_to_ready_s"]
                                                          for r in runs)}


def _lookups(app: Relay, reporters: int, count: int) -> dict[str, Any]:
    """open_cases_of(sender's blind index), as the reporter desk calls it per message."""
    rng = random.Random(7)
    samples: list[float] = []
    found = 0
    for _ in range(count):
        aci = reporter_aci(rng.randrange(reporters))
        with app.sessions.begin() as s:
            started = time.perf_counter()
            cases = open_cases_of(s, app.sealer, app.sealer.reporter_index(aci))
            samples.append(time.perf_counter() - started)
            found += len(cases)
    return {**summary_ms(samples), "open_cases_found_per_lookup": found / max(count, 1)}


def _officer_event(app: Relay, officer_id: str, text: str, group_public_id: str | None
                   ) -> TextMessage:
    officer = next(o for o in app.cfg.officers if o.id == officer_id)
    return TextMessage(sender=Sender(aci=officer.aci or "", number=officer.number,
                                     profile_name=officer.display_name, device=1),
                       timestamp=int(time.time() * 1000), text=text,
                       group_id=single_decode_group_id(group_public_id)
                       if group_public_id is not None else None)


def _route_samples(app: Relay, now: datetime, officer_id: str, group: str | None, reps: int,
                   budget_s: float) -> list[float]:
    """An officer's `/cases` through the dispatcher (the product path), rolled back."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < reps and (not samples or time.perf_counter() < deadline):
        event = _officer_event(app, officer_id, "/cases", group)
        session = app.sessions()
        try:
            session.begin()
            started = time.perf_counter()
            app.dispatcher.route(session, event, now, key=f"bench:cases:{len(samples)}")
            session.flush()
            samples.append(time.perf_counter() - started)
        finally:
            session.rollback()
            session.close()
    return samples


def _scope_listing(app: Relay, now: datetime, reps: int, budget_s: float) -> dict[str, Any]:
    """`/cases` in the team group and in an officer's DM; beside them the listing query
    alone (`open_cases_for`, the first page), as the command runs it."""
    scope = app.cfg.scope(TEAM_SCOPE)
    assert scope.group_id is not None
    officer_id = scope.officers[2]
    officer = app.cfg.officer(officer_id)
    samples = _route_samples(app, now, officer_id, scope.group_id, reps, budget_s)
    dm = _route_samples(app, now, officer_id, None, reps, budget_s)
    with app.sessions.begin() as s:
        in_scope = s.scalar(select(func.count()).select_from(Case).where(
            Case.scope_id == TEAM_SCOPE, Case.status.in_(OPEN_STATES))) or 0
        all_open = s.scalar(select(func.count()).select_from(Case).where(
            Case.status.in_(OPEN_STATES))) or 0
    listing = CaseListing(app.cfg, app.sealer)
    query: list[float] = []
    listed = 0
    for _ in range(reps):
        with app.sessions.begin() as s:
            started = time.perf_counter()
            page = listing.open_cases_for(s, officer, scope, limit=PAGE_SIZE)
            query.append(time.perf_counter() - started)
            listed = page.total
    with app.sessions.begin() as s:
        dm_page = listing.open_cases_for(s, officer, None, limit=1)
    return {"command": "/cases in the team group", **summary_ms(samples),
            "first_ms": samples[0] * 1000,
            "open_cases_in_scope": in_scope, "open_cases_total": all_open,
            "listed_total": listed, "page_size": PAGE_SIZE,
            "dm": {"command": "/cases in the officer's DM", **summary_ms(dm),
                   "first_ms": dm[0] * 1000,
                   "listed_total": dm_page.total, "listed_capped": dm_page.capped},
            "query_only": summary_ms(query)}


def _run_due(app: Relay, clock: FakeClock, ref: datetime) -> dict[str, Any]:
    with app.sessions.begin() as s:
        pending = s.scalar(select(func.count()).select_from(Timer)
                           .where(Timer.status == "pending")) or 0
        due = list(s.scalars(select(Timer.due_at).where(Timer.status == "pending")
                             .order_by(Timer.due_at).limit(BATCH + DRAIN + 1)))
    idle: list[float] = []
    clock.set(ref)
    for _ in range(5):
        seconds, fired = _timed(lambda: app.due.run_due(ref))
        assert fired == 0, "timers due at REF: the scale database is not what it should be"
        idle.append(seconds)
    busy: dict[str, Any] = {"skipped": "fewer pending timers than one batch"}
    drain: dict[str, Any] = {"skipped": "fewer pending timers than the drain needs"}
    if len(due) > BATCH + 20:
        when = due[BATCH + 20] + timedelta(seconds=1)
        clock.set(when)
        seconds, fired = _timed(lambda: app.due.run_due(when))
        busy = {"ms": seconds * 1000, "fired": fired,
                "ms_per_timer": seconds * 1000 / fired if fired else None}
    if len(due) > BATCH + DRAIN:
        # what Relay.tick does with a backlog: passes back to back until none is due
        when = due[BATCH + DRAIN] + timedelta(seconds=1)
        clock.set(when)
        passes: list[float] = []
        fired = 0
        while True:
            seconds, count = _timed(lambda: app.due.run_due(when))
            passes.append(seconds)
            fired += count
            if not app.due.backlog:
                break
        drain = {"fired": fired, "passes": len(passes), "total_ms": sum(passes) * 1000,
                 "longest_pass_ms": max(passes) * 1000,
                 "ms_per_timer": sum(passes) * 1000 / fired if fired else None}
    clock.set(ref)
    return {"pending_timers": pending, "batch": BATCH, "idle_pass": summary_ms(idle),
            "full_batch_pass": busy, "drain": drain}


def _rotation(app: Relay, keyring: Keyring, ref: datetime) -> dict[str, Any]:
    seconds, report = _timed(lambda: rotate(app.sessions, keyring, ref))
    return {"seconds": seconds, "epoch": report.epoch, "rows": report.total,
            "by_table": report.rewrapped, "finished": report.finished,
            "rows_per_s": report.total / seconds if seconds else None}


def _set_closed(app: Relay, closed: dict[str, datetime]) -> None:
    by_time: dict[datetime, list[str]] = {}
    for case_id, when in closed.items():
        by_time.setdefault(when, []).append(case_id)
    with app.sessions.begin() as s:
        for when, ids in by_time.items():
            for lo in range(0, len(ids), 500):
                s.execute(update(Case).where(Case.id.in_(ids[lo:lo + 500]))
                          .values(closed_at=when),
                          execution_options={"synchronize_session": False})


def _bound_purge(app: Relay, ref: datetime, keep: int | None) -> dict[str, datetime]:
    """Leave only the `keep` longest-closed cases past retention (returned with their
    closing times): the others are moved to 200 days after closing (still closed, still
    holding their messages, links and keys)."""
    cutoff = ref - timedelta(days=app.cfg.retention.closed_case_days)
    with app.sessions.begin() as s:
        eligible = s.execute(select(Case.id, Case.closed_at).where(
            Case.status == "closed", Case.closed_at < cutoff).order_by(Case.closed_at)).all()
    kept = eligible[:keep] if keep is not None else eligible
    _set_closed(app, {case_id: ref - timedelta(days=200) for case_id, _ in eligible[len(kept):]})
    return {case_id: when for case_id, when in kept if when is not None}


def _purge(app: Relay, keyring: Keyring, ref: datetime, db: Path, keep: int | None
           ) -> dict[str, Any]:
    """The purge, measured three ways: a dry run without any case past retention, a dry
    run with them (the difference is what deleting the cases costs), the real purge."""
    cutoff = ref - timedelta(days=app.cfg.retention.closed_case_days)
    with app.sessions.begin() as s:
        eligible = s.scalar(select(func.count()).select_from(Case).where(
            Case.status == "closed", Case.closed_at < cutoff)) or 0
    kept = _bound_purge(app, ref, keep)
    _set_closed(app, dict.fromkeys(kept, ref - timedelta(days=200)))
    none_s, _ = _timed(lambda: purge(app.sessions, app.engine, keyring, app.cfg, ref,
                                     dry_run=True))
    _set_closed(app, kept)
    bound = {"eligible_in_database": eligible, "left_eligible": len(kept)}
    before = db.stat().st_size
    dry_s, dry = _timed(lambda: purge(app.sessions, app.engine, keyring, app.cfg, ref,
                                      dry_run=True))
    real_s, real = _timed(lambda: purge(app.sessions, app.engine, keyring, app.cfg, ref))
    rows = (real.reporter_links + real.cases + real.case_messages + real.case_outbox
            + real.inbox + real.outbox)
    return {**bound, "dry_run_s": dry_s, "seconds": real_s, "rows_deleted": rows,
            "dry_run_without_cases_s": none_s,
            "ms_per_deleted_case": (dry_s - none_s) * 1000 / dry.cases if dry.cases else None,
            "deleted": {"reporter_links": real.reporter_links, "cases": real.cases,
                        "case_messages": real.case_messages, "case_outbox": real.case_outbox,
                        "inbox": real.inbox, "outbox": real.outbox},
            "dry_run_counts_match": dry.cases == real.cases,
            "epochs_destroyed": list(real.epochs_destroyed), "compacted": real.compacted,
            "rows_per_s_deletion_phase": rows / dry_s if dry_s else None,
            "rows_per_s_overall": rows / real_s if real_s else None,
            "db_mb_before": before / 2**20, "db_mb_after": db.stat().st_size / 2**20}


async def run(params: ScaleParams, workdir: Path, cache_root: Path,
              log: Log = print) -> dict[str, Any]:
    started = time.perf_counter()
    built: Built = ensure_built(params.shape, cache_root, log)
    log(f"scale: database {built.root.name} ({built.meta['db_bytes'] / 2**20:,.0f} MiB"
        + (f", built in {built.seconds:.0f} s" if built.seconds else ", cached") + ")")
    data_dir = workdir / "data"
    copy_s, _ = _timed(lambda: built.copy_to(data_dir))
    url = f"sqlite:///{data_dir / 'relay.db'}"
    ref = built.ref_time
    result: dict[str, Any] = {"database": {**built.meta, "built_now_s": built.seconds or None,
                                           "copy_s": copy_s}}
    org = await start_sandbox_org(EXAMPLE, data_dir, database_url=url)
    try:
        log(f"scale: start-up x{params.startups} ...")
        result["startup"] = await _startups(org, data_dir, url, params.startups, workdir)
        clock = FakeClock(ref)
        keyring = Keyring.load(data_dir / "keys")
        app = build(org.cfg, keyring, clock, database_url=url)
        steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("open_cases_of", lambda: _lookups(app, int(built.meta["reporters"]),
                                               params.lookups)),
            ("scope_listing", lambda: _scope_listing(app, ref, params.list_reps,
                                                     params.list_budget_s)),
            ("run_due", lambda: _run_due(app, clock, ref)),
            ("rotation", lambda: _rotation(app, keyring, ref)),
            ("purge", lambda: _purge(app, keyring, ref, data_dir / "relay.db",
                                     params.purge_cases)),
        ]
        try:
            for name, step in steps:
                log(f"scale: {name} ...")
                seconds, result[name] = await asyncio.to_thread(_timed, step)
                log(f"scale: {name} took {seconds:.1f} s")
        finally:
            await app.stop()
    finally:
        await org.sandbox.stop()
        if not params.keep_copy:
            shutil.rmtree(data_dir, ignore_errors=True)
    result["runtime_s"] = time.perf_counter() - started
    return result

