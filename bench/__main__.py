"""`python -m bench [throughput|scale|all] [--short] [options]` (see `bench/__init__.py`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR, machine, pg, report
from bench.scale import ScaleParams
from bench.scale import run as run_scale
from bench.throughput import Params
from bench.throughput import run as run_throughput


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("what", nargs="?", default="throughput",
                   choices=("throughput", "scale", "all"))
    p.add_argument("--short", action="store_true",
                   help="tiny sizes (the CI smoke test): seconds, not minutes")
    p.add_argument("--flood", type=int, help="messages in the flood (default 500)")
    p.add_argument("--paced", type=int, help="messages in the paced run (default 80)")
    p.add_argument("--rate", type=float, help="paced rate, messages/s (default 2)")
    p.add_argument("--cases", type=int, help="open cases (= reporters) seeded (default 200)")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL row")
    p.add_argument("--profile", action="store_true",
                   help="cProfile the relay child (both threads) during the run")
    p.add_argument("--trace", action="store_true",
                   help="stamp each stage of relay's pipeline; print where paced latency goes")
    p.add_argument("--scale-cases", type=int, help="cases in the scale DB (default 100000)")
    p.add_argument("--scale-messages", type=int, help="messages (default 1000000)")
    p.add_argument("--scale-timers", type=int, help="pending timers (default 100000)")
    p.add_argument("--startups", type=int, help="start-ups measured (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the scale working copy")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    p.add_argument("--work", type=Path, default=RESULTS_DIR / "work")
    p.add_argument("--cache", type=Path, default=RESULTS_DIR / "cache")
    return p


def _throughput_params(args: argparse.Namespace) -> Params:
    params = Params.short() if args.short else Params(flood=500, paced=80, rate=2.0)
    changes: dict[str, Any] = {k: v for k, v in {
        "flood": args.flood, "paced": args.paced, "rate": args.rate, "cases": args.cases,
    }.items() if v is not None}
    return replace(params, **changes, postgres=not args.no_postgres, profile=args.profile,
                   trace=args.trace)


def _scale_params(args: argparse.Namespace) -> ScaleParams:
    params = ScaleParams.short() if args.short else ScaleParams()
    shape = replace(params.shape, **{k: v for k, v in {
        "cases": args.scale_cases, "messages": args.scale_messages,
        "timers": args.scale_timers}.items() if v is not None})
    params = replace(params, shape=shape, keep_copy=args.keep)
    if args.startups is not None:
        params = replace(params, startups=args.startups)
    return params


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace) -> int:
    command = "python -m bench " + shlex.join(sys.argv[1:])
    pg_version, _ = await asyncio.to_thread(pg.probe)
    info = machine.describe(pg_version)
    stamp = {"finished_at": ""}
    doc: dict[str, Any] = {}
    started = time.perf_counter()
    if args.what in ("throughput", "all"):
        load = os.getloadavg()[0]
        result = await run_throughput(_throughput_params(args), args.work / "throughput", log)
        result["loadavg_1min_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        stamp["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = report.write(args.out, "throughput", {**result, **stamp}, info, command)
        print("\nthroughput and latency (relay vs. bare signalbot echo bot)\n")
        print(report.throughput_table(result))
    if args.what in ("scale", "all"):
        scale_params = _scale_params(args)
        load = os.getloadavg()[0]
        result = await run_scale(scale_params, args.work / "scale", args.cache, log)
        result["loadavg_1min_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        stamp["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = report.write(args.out, "scale", {**result, **stamp}, info, command)
        print("\nscale (SQLite)\n")
        print(report.scale_table(result))
    items = [t for t in doc.get("targets", []) if _relevant(t, args.what)]
    if items:
        print("\ntargets (issue 8)\n")
        print(report.targets_table(items))
    print(f"\nmachine: {info['nproc']} cores, {info['cpu_model']}, {info['ram_gib']} GiB RAM, "
          f"Python {info['python']}, SQLite {info['sqlite']}, "
          f"PostgreSQL {info['postgresql'] or 'not available'}")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


def _relevant(target: dict[str, Any], what: str) -> bool:
    flood = target["target"].startswith(("flood", "paced"))
    return what == "all" or (what == "throughput") == flood


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())

