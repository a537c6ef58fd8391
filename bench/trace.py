"""Where a paced message's latency goes (`python -m bench --trace`).

The relay child stamps each stage of its pipeline (frame handed to ingest, stored,
dispatched, outbox rows claimed, each send started and answered) on the monotonic clock,
which a parent and its child share on Linux. The parent knows when each paced message
left its phone; paced messages are far apart, so the first stamp of each stage after a
message left belongs to it. Stages are wrapped from outside: no product code changes.
"""

from __future__ import annotations

import functools
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

STAGES = ("ingest_called", "stored", "dispatch_started", "dispatched", "claimed",
          "send_started", "send_answered")


class Stamps:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self._gc_started = 0.0

    def watch_gc(self) -> None:
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """Each collection of the oldest generation, as a stage (its pause, in the dump)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif info.get("generation") == 2:
            self.events.append(("gc2_pause_ms",
                                1000 * (time.perf_counter() - self._gc_started)))

    def mark(self, stage: str) -> None:
        self.events.append((stage, time.perf_counter()))

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(self.events), "utf-8")


def _around(obj: Any, name: str, before: str | None, after: str, stamps: Stamps) -> None:
    """Stamp `before` on entry, and `after` when the call returned something (work done)."""
    fn = getattr(obj, name)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before:
            stamps.mark(before)
        result = fn(*args, **kwargs)
        if result:
            stamps.mark(after)
        return result

    setattr(obj, name, wrapper)


def _around_async(obj: Any, name: str, before: str, after: str, stamps: Stamps) -> None:
    fn = getattr(obj, name)

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        stamps.mark(before)
        result = await fn(*args, **kwargs)
        stamps.mark(after)
        return result

    setattr(obj, name, wrapper)


def instrument(relay: Any) -> Stamps:
    """Wrap the stages of a built, not yet started, relay."""
    stamps = Stamps()
    _around_async(relay, "ingest", "ingest_called", "stored", stamps)
    _around(relay.dispatcher, "process_pending", "dispatch_started", "dispatched", stamps)
    relay.dispatcher.process_one = relay.dispatcher.process_pending
    _around(relay.pump, "_record_and_claim", None, "claimed", stamps)
    _around_async(relay.pump._gateway, "send", "send_started", "send_answered", stamps)  # noqa: SLF001
    return stamps


def attribute(events: list[tuple[str, float]], sent_at: dict[int, float],
              arrived: dict[int, float], window: float) -> dict[str, dict[str, float]]:
    """Per stage: median and p90 of (first stamp of that stage after the message left)
    minus the moment it left, in ms; and the arrival of its relayed send."""
    by_stage: dict[str, list[float]] = {}
    for stage in STAGES:
        by_stage[stage] = sorted(t for s, t in events if s == stage)
    offsets: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "relayed_send_arrived")}
    for tok, t0 in sent_at.items():
        for stage in STAGES:
            first = next((t for t in by_stage[stage] if t0 <= t < t0 + window), None)
            if first is not None:
                offsets[stage].append(1000 * (first - t0))
        if tok in arrived:
            offsets["relayed_send_arrived"].append(1000 * (arrived[tok] - t0))
    out: dict[str, dict[str, float]] = {}
    for stage, values in offsets.items():
        if values:
            values.sort()
            out[stage] = {"n": len(values), "p50_ms": statistics.median(values),
                          "p90_ms": values[int(0.9 * (len(values) - 1))]}
    return out


def gc_pauses(events: list[tuple[str, float]]) -> dict[str, float]:
    """The full collections once relay was ready (each stops both of its threads)."""
    pauses = [t for s, t in events if s == "gc2_pause_ms"]
    return {"count": len(pauses), "max_ms": max(pauses, default=0.0),
            "total_ms": sum(pauses)}


def render(breakdown: dict[str, dict[str, float]]) -> str:
    lines = ["paced path, from the phone's send (ms)", f"{'stage':<22} {'p50':>7} {'p90':>7}"]
    lines += [f"{stage:<22} {v['p50_ms']:7.2f} {v['p90_ms']:7.2f}"
              for stage, v in breakdown.items()]
    return "\n".join(lines)
