"""Echo bot versus relay: flood throughput and paced latency, through the sandbox.

Each system runs in a child process against a fresh sandbox organisation (the MPP
example) in this process. The same scripted messages go to both: reporters' follow-ups
on their open cases, officers' ``/reply REF`` and quote-replies. For the echo bot a
message is handled when its echo arrives at the sandbox; for relay, when the relayed
send (to the case's scope, or to the reporter) arrives. Acknowledgements relay also
sends (to the reporter, to the officer) are counted separately as `sends`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import pg
from bench.procs import Child
from bench.stats import cpu_seconds, summary_ms
from bench.trace import attribute, gc_pauses
from bench.workload import SeededCase, SendTap, Step, script, seed_cases
from keys import init_keys_dir
from relay.clock import SystemClock
from relay.sandbox_org import BOT_NUMBER, SandboxOrg, start_sandbox_org

EXAMPLE = "mpp"
WARMUP_TOKENS = 1
FLOOD_TOKENS = 1_000_000
PACED_TOKENS = 2_000_000


@dataclass(frozen=True)
class Params:
    flood: int = 1000
    paced: int = 200
    rate: float = 10.0
    cases: int = 200
    warmup: int = 10
    postgres: bool = True
    profile: bool = False
    trace: bool = False
    flood_timeout: float = 120.0

    @classmethod
    def short(cls) -> Params:
        return cls(flood=40, paced=12, rate=6.0, cases=10, warmup=3, flood_timeout=60.0)


@contextlib.asynccontextmanager
async def _org(workdir: Path, database_url: str) -> AsyncIterator[SandboxOrg]:
    org = await start_sandbox_org(EXAMPLE, workdir, database_url=database_url)
    try:
        yield org
    finally:
        await org.sandbox.stop()


async def _closed_loop(tap: SendTap, steps: list[Step], timeout: float) -> None:  # noqa: ASYNC109
    """One message at a time, each waiting for its own relayed send (warms caches)."""
    for step in steps:
        tap.expect([step.token])
        await step.send()
        if not await tap.wait_all(timeout):
            raise RuntimeError(f"warm-up message ({step.kind}) was never relayed")
    await tap.quiet()


async def _flood(tap: SendTap, child: Child, steps: list[Step], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    tokens = [s.token for s in steps]
    tap.expect(tokens)
    before = await child.stats()
    sends_before = tap.sends
    cpu_before = cpu_seconds()
    sent_at: dict[int, float] = {}
    started = time.perf_counter()
    for step in steps:
        sent_at[step.token] = time.perf_counter()
        await step.send()
    pushed = time.perf_counter()
    complete = await tap.wait_all(timeout)
    handled = [t for t in tokens if t in tap.arrived]
    finished = max((tap.arrived[t] for t in handled), default=time.perf_counter())
    after = await child.stats()
    sandbox_cpu = cpu_seconds() - cpu_before
    await tap.quiet()
    drained = tap.last_send
    total_sends = tap.sends - sends_before
    elapsed = finished - started
    wall = max(drained, finished) - started
    child_cpu = float(after["cpu_s"]) - float(before["cpu_s"])
    per_message: dict[str, float] = {}
    for key in ("sql_statements", "sql_commits", "handled", "sent"):
        if key in after and key in before and handled:
            per_message[key] = (float(after[key]) - float(before[key])) / len(handled)
    return {
        "messages": len(steps),
        "handled": len(handled),
        "complete": complete,
        "elapsed_s": elapsed,
        "push_s": pushed - started,
        "throughput_msg_s": len(handled) / elapsed if elapsed > 0 else 0.0,
        "all_sends_drained_s": wall,
        "total_sends_incl_acks": total_sends,
        "latency_under_flood": summary_ms([tap.arrived[t] - sent_at[t] for t in handled]),
        "child_cpu_s": child_cpu,
        "child_cpu_util": child_cpu / elapsed if elapsed > 0 else 0.0,
        "child_cpu_ms_per_msg": 1000 * child_cpu / max(len(handled), 1),
        "sandbox_cpu_util": sandbox_cpu / elapsed if elapsed > 0 else 0.0,
        "per_message": per_message,
    }


async def _paced(tap: SendTap, steps: list[Step], rate: float, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    tap.expect([s.token for s in steps])
    sent_at: dict[int, float] = {}
    start = time.perf_counter() + 0.05
    for index, step in enumerate(steps):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[step.token] = time.perf_counter()
        await step.send()
    complete = await tap.wait_all(timeout)
    latencies = [tap.arrived[t] - sent_at[t] for t in sent_at if t in tap.arrived]
    await tap.quiet()
    return {"messages": len(steps), "rate_msg_s": rate, "complete": complete,
            **summary_ms(latencies), "_sent_at": sent_at, "_arrived": dict(tap.arrived)}


async def _measure(org: SandboxOrg, child: Child, cases: list[SeededCase], params: Params
                   ) -> dict[str, Any]:
    tap = SendTap(org)
    await org.sandbox.wait_for_subscriber(timeout=15)
    await _closed_loop(tap, script(cases, params.warmup, WARMUP_TOKENS), timeout=15)
    flood = await _flood(tap, child, script(cases, params.flood, FLOOD_TOKENS),
                         params.flood_timeout)
    paced = await _paced(tap, script(cases, params.paced, PACED_TOKENS), params.rate,
                         timeout=30)
    paced["utilisation"] = params.rate / flood["throughput_msg_s"] if flood[
        "throughput_msg_s"] else None
    return {"flood": flood, "paced": paced, "startup_s": child.ready.get("startup_s"),
            "rss_after_start_mb": child.ready.get("rss_mb")}


async def run_echo(params: Params, workdir: Path) -> dict[str, Any]:
    """The baseline: a bare signalbot echo bot (no database; the cases only shape the
    script, so both systems get the very same messages from the very same phones)."""
    db_url = f"sqlite:///{workdir / 'script.db'}"
    async with _org(workdir, db_url) as org:
        keyring = init_keys_dir(org.cfg.keys.directory, SystemClock().now(),
                                org.cfg.retention.epoch)
        cases = await asyncio.to_thread(seed_cases, org, keyring, db_url, params.cases)
        spec = {"role": "echo", "service": org.sandbox.service, "bot_number": BOT_NUMBER}
        child = await Child.spawn(spec, workdir, "echo")
        try:
            result = await _measure(org, child, cases, params)
        finally:
            await child.stop()
    result["paced"].pop("_sent_at")
    result["paced"].pop("_arrived")
    return {"system": "signalbot echo", "db": None, **result}


async def run_relay(params: Params, workdir: Path, database_url: str, db: str
                    ) -> dict[str, Any]:
    async with _org(workdir, database_url) as org:
        keyring = init_keys_dir(org.cfg.keys.directory, SystemClock().now(),
                                org.cfg.retention.epoch)
        cases = await asyncio.to_thread(seed_cases, org, keyring, database_url, params.cases)
        spec: dict[str, Any] = {"role": "relay", "example": EXAMPLE,
                                "service": org.sandbox.service, "data_dir": str(workdir),
                                "database_url": database_url}
        if params.profile:
            spec["profile"] = str(workdir / "relay.prof")
        if params.trace:
            spec["trace"] = str(workdir / "trace.json")
        child = await Child.spawn(spec, workdir, "relay")
        try:
            result = await _measure(org, child, cases, params)
        finally:
            stopped = await child.stop()
    result["peak_rss_mb"] = stopped.get("peak_rss_mb")
    sent_at, arrived = result["paced"].pop("_sent_at"), result["paced"].pop("_arrived")
    if params.trace:
        events = json.loads((workdir / "trace.json").read_text("utf-8"))
        result["paced_trace"] = attribute(events, sent_at, arrived, 0.9 / params.rate)
        result["gc_full_collections"] = gc_pauses(events)
    if params.profile:
        result["profile"] = str(workdir / "relay.txt")
    return {"system": "relay", "db": db, **result}


async def run(params: Params, workdir: Path, log: Any = print) -> dict[str, Any]:
    """Every row: the echo bot, relay on SQLite, relay on PostgreSQL (when reachable)."""
    await asyncio.to_thread(_fresh_dir, workdir)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    log("throughput: signalbot echo bot ...")
    rows.append(await run_echo(params, workdir / "echo"))
    log("throughput: relay on SQLite ...")
    sqlite_dir = workdir / "relay-sqlite"
    rows.append(await run_relay(params, sqlite_dir,
                                f"sqlite:///{sqlite_dir / 'relay.db'}", "sqlite"))
    pg_version: str | None = None
    pg_note: str | None = None
    if params.postgres:
        pg_version, problem = await asyncio.to_thread(pg.probe)
        if pg_version is None:
            pg_note = f"PostgreSQL not reachable at {pg.where()} ({problem}): row skipped"
            log("throughput: " + pg_note)
        else:
            log("throughput: relay on PostgreSQL ...")
            with pg.fresh_schema("tp") as url:
                rows.append(await run_relay(params, workdir / "relay-pg", url, "postgresql"))
    else:
        pg_note = "PostgreSQL row not requested (--no-postgres)"
    baseline = rows[0]
    for row in rows[1:]:
        row["ratios"] = ratios(row, baseline)
    return {"params": params.__dict__, "rows": rows, "postgresql": pg_version,
            "postgresql_note": pg_note, "runtime_s": time.perf_counter() - started}


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def ratios(row: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    def div(a: Any, b: Any) -> float | None:
        return float(a) / float(b) if a and b else None

    return {
        "throughput": div(row["flood"]["throughput_msg_s"],
                          baseline["flood"]["throughput_msg_s"]),
        "p50": div(row["paced"]["p50_ms"], baseline["paced"]["p50_ms"]),
        "p95": div(row["paced"]["p95_ms"], baseline["paced"]["p95_ms"]),
        "p99": div(row["paced"]["p99_ms"], baseline["paced"]["p99_ms"]),
    }
