"""A system under test in a process of its own: `python -m bench.child SPEC.json`.

Roles (``spec["role"]``):

``echo``
    A bare signalbot 2.2.1 bot with one handler that answers every text message in the
    chat it came from, run by the sandbox's :class:`relay.sandbox.BotThread`.
``relay``
    The real relay exactly as ``relay run`` builds it (JSON logging to stderr, keys from
    the keys directory, `relay.app.build`, `Relay.start`), against the sandbox's service.

Protocol: one JSON object per stdout line. The child prints ``{"event": "ready", ...}``
once started, answers ``stats`` on stdin with ``{"event": "stats", ...}``, and stops
cleanly on ``stop`` or end of input (``{"event": "stopped", ...}``).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import pstats
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.stats import cpu_seconds, peak_rss_mb, rss_mb


def emit(event: str, **values: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **values}) + "\n")
    sys.stdout.flush()


def _counters() -> dict[str, float]:
    return {"cpu_s": cpu_seconds(), "rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(),
            "wall": time.perf_counter()}


async def serve(stats: Callable[[], dict[str, Any]] | None = None) -> None:
    """Answer ``stats`` until ``stop`` or end of input."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        command = line.strip()
        if command == "stats":
            emit("stats", **_counters(), **(stats() if stats is not None else {}))
        elif command == "stop" or not line:
            return


async def run_echo(spec: dict[str, Any]) -> None:
    from signalbot import DataMessageContext, DataMessageHandler, SendMessage, SignalBot

    from relay.sandbox import BotThread

    class Echo(DataMessageHandler):
        """Answers every text message in the chat it came from (group or 1:1)."""

        handled = 0

        async def handle_data_message(self, context: DataMessageContext) -> None:
            text = context.message.text
            if text:
                await context.send(SendMessage(text="echo " + text))
                Echo.handled += 1

    def setup(bot: SignalBot) -> None:
        bot.register(Echo())

    logging.getLogger().setLevel(logging.WARNING)
    started = time.perf_counter()
    runner = BotThread({"phone_number": spec["bot_number"],
                        "signal_service": spec["service"],
                        "connection_mode": "http_only",
                        "storage": {"type": "in-memory"}}, setup)
    await runner.start()
    await runner.wait_until_ready()
    emit("ready", startup_s=time.perf_counter() - started, **_counters())
    await serve(lambda: {"handled": Echo.handled})
    await runner.stop()
    emit("stopped", **_counters())


async def run_relay(spec: dict[str, Any]) -> None:
    from sqlalchemy import event

    from relay.app import build, freeze_heap
    from relay.clock import SystemClock
    from relay.config import parse_config
    from relay.keysource import load_keyring
    from relay.logs import configure_logging
    from relay.sandbox_org import org_config_data

    data = org_config_data(spec["example"], service=spec["service"],
                           data_dir=Path(spec["data_dir"]),
                           database_url=spec["database_url"])
    cfg = parse_config(data, "bench")
    configure_logging(stream=sys.stderr, json=True, level=logging.INFO)  # as `relay run`
    keyring = load_keyring(cfg)
    profile_path = spec.get("profile")
    main_prof = cProfile.Profile() if profile_path else None
    db_prof = cProfile.Profile() if profile_path else None

    t0 = time.perf_counter()
    relay = build(cfg, keyring, SystemClock(), database_url=spec["database_url"])
    t1 = time.perf_counter()
    stamps = None
    if spec.get("trace"):
        from bench.trace import instrument

        stamps = instrument(relay)
    await relay.start()
    t2 = time.perf_counter()
    freeze_heap()  # as `relay run` does once started (not part of start-up to ready)
    emit("ready", startup_s=t2 - t0, build_s=t1 - t0, start_s=t2 - t1,
         freeze_s=time.perf_counter() - t2, **_counters())
    if stamps is not None:
        stamps.watch_gc()  # from now on: start-up's own collections are not the load's
    if main_prof is not None and db_prof is not None:
        await relay.run_db(db_prof.enable)  # the relay's one database thread
        main_prof.enable()

    sql = {"statements": 0, "commits": 0}

    def count_statement(*_: Any) -> None:
        sql["statements"] += 1

    def count_commit(*_: Any) -> None:
        sql["commits"] += 1

    event.listen(relay.engine, "before_cursor_execute", count_statement)
    event.listen(relay.engine, "commit", count_commit)

    def stats() -> dict[str, Any]:
        return {"handled": relay.dispatcher.processed, "sent": relay.pump.sent_count,
                "sql_statements": sql["statements"], "sql_commits": sql["commits"]}

    await serve(stats)
    if stamps is not None:
        stamps.dump(Path(str(spec["trace"])))
    if main_prof is not None and db_prof is not None:
        main_prof.disable()
        await relay.run_db(db_prof.disable)
        _dump_profile(Path(str(profile_path)), main_prof, db_prof)
    await relay.stop()
    emit("stopped", **_counters())


def _dump_profile(path: Path, *profiles: cProfile.Profile) -> None:
    """Merged stats of both threads, and a readable top list beside them."""
    merged = pstats.Stats(profiles[0])
    for extra in profiles[1:]:
        merged.add(extra)
    merged.dump_stats(str(path))
    with path.with_suffix(".txt").open("w", encoding="utf-8") as out:
        pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(40)
        pstats.Stats(str(path), stream=out).sort_stats("cumulative").print_stats(60)


ROLES: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, None]]] = {
    "echo": run_echo,
    "relay": run_relay,
}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text("utf-8"))
    asyncio.run(ROLES[spec["role"]](spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
