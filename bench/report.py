"""The printed tables, the targets of issue 8, and `latest.json`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench import FORMAT
from bench.trace import render


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]], *, numeric: bool = True) -> str:
    """Plain-text columns; with `numeric`, every column but the first is right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def cell(i: int, text: str, width: int) -> str:
        return text.rjust(width) if numeric and i else text.ljust(width)

    out = ["  ".join(cell(i, h, w) for i, (h, w) in enumerate(zip(header, widths, strict=True))),
           "  ".join("-" * w for w in widths)]
    out.extend("  ".join(cell(i, c, w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
               for r in rows)
    return "\n".join(line.rstrip() for line in out)


def _per_case(ms: float | None) -> str:
    """The cost of deleting a case: a difference of two dry runs, noise below 1 ms."""
    return "<1" if ms is not None and ms < 1 else _num(ms, 0)


def throughput_table(result: dict[str, Any]) -> str:
    header = ["system", "flood msg/s", "x base", "paced p50 ms", "p95 ms", "p99 ms",
              "p99 x base", "CPU ms/msg", "start s", "RSS MB"]
    rows = []
    for row in result["rows"]:
        ratios = row.get("ratios", {})
        name = row["system"] + (f" ({row['db']})" if row["db"] else "")
        flood, paced = row["flood"], row["paced"]
        rows.append([
            name, _num(flood["throughput_msg_s"]),
            _num(ratios.get("throughput"), 3) if ratios else "1",
            _num(paced["p50_ms"]), _num(paced["p95_ms"]), _num(paced["p99_ms"]),
            _num(ratios.get("p99"), 1) if ratios else "1",
            _num(flood["child_cpu_ms_per_msg"]), _num(row.get("startup_s"), 2),
            _num(row.get("rss_after_start_mb"), 0),
        ])
    params = result["params"]
    foot = (f"flood: {params['flood']} messages from {params['cases']} reporters and 6 "
            f"officers; paced: {params['paced']} messages at {params['rate']}/s")
    if result.get("postgresql_note"):
        foot += f"\n{result['postgresql_note']}"
    for row in result["rows"]:
        if row.get("paced_trace"):
            foot += f"\n\nrelay ({row['db']}): " + render(row["paced_trace"])
            gcs = row.get("gc_full_collections") or {}
            foot += (f"\nfull garbage collections once relay was ready: {gcs.get('count', 0)}, "
                     f"longest {_num(gcs.get('max_ms'), 1)} ms, "
                     f"total {_num(gcs.get('total_ms'), 1)} ms")
    return _table(header, rows) + "\n" + foot


def scale_table(result: dict[str, Any]) -> str:
    db = result["database"]
    st = result["startup"]
    oc = result["open_cases_of"]
    sl = result["scope_listing"]
    rd = result["run_due"]
    rot = result["rotation"]
    pu = result["purge"]
    busy = rd["full_batch_pass"]
    database = (f"{db['rows']['cases']:,} cases, {db['rows']['case_messages']:,} messages, "
                f"{rd['pending_timers']:,} pending timers, {db['db_bytes'] / 2**20:,.0f} MiB")
    startup = (f"median {_num(st['startup_median_s'], 2)} s, max "
               f"{_num(st['startup_max_s'], 2)} s (process spawn to ready "
               f"{_num(st['process_to_ready_median_s'], 2)} s)")
    rss = f"median {_num(st['rss_median_mb'], 0)} MB, max {_num(st['rss_max_mb'], 0)} MB"
    lookup = (f"p50 {_num(oc['p50_ms'], 2)} / p95 {_num(oc['p95_ms'], 2)} / p99 "
              f"{_num(oc['p99_ms'], 2)} ms ({_num(oc['open_cases_found_per_lookup'], 2)} "
              "cases found per lookup)")
    listing = (f"p50 {_num(sl['p50_ms'], 2)} / p99 {_num(sl['p99_ms'], 2)} ms over "
               f"{sl['count']} runs, {sl['open_cases_in_scope']:,} open cases in scope "
               f"(newest {sl['page_size']} shown; first call {_num(sl['first_ms'], 1)} ms)")
    dm = sl["dm"]
    listing_dm = (f"p50 {_num(dm['p50_ms'], 2)} / p99 {_num(dm['p99_ms'], 2)} ms over "
                  f"{dm['count']} runs, {dm['listed_total']:,}"
                  f"{'+' if dm.get('listed_capped') else ''} open cases listed "
                  f"(first call {_num(dm['first_ms'], 1)} ms)")
    listing_sql = (f"p50 {_num(sl['query_only']['p50_ms'], 2)} / p99 "
                   f"{_num(sl['query_only']['p99_ms'], 2)} ms (first page and count)")
    idle = (f"p50 {_num(rd['idle_pass']['p50_ms'], 2)} / max "
            f"{_num(rd['idle_pass']['max_ms'], 2)} ms")
    batch = (f"{_num(busy.get('ms'), 0)} ms for {busy.get('fired', 0)} timers "
             f"({_num(busy.get('ms_per_timer'), 2)} ms each)") if "ms" in busy else busy[
                 "skipped"]
    dr = rd.get("drain", {})
    drain = (f"{dr['fired']} timers in {dr['passes']} passes, {_num(dr['total_ms'], 0)} ms "
             f"({_num(dr['ms_per_timer'], 2)} ms each); longest pass "
             f"{_num(dr['longest_pass_ms'], 0)} ms") if "fired" in dr else dr.get("skipped", "-")
    rotation = (f"{rot['rows']:,} rows in {_num(rot['seconds'], 1)} s = "
                f"{_num(rot['rows_per_s'], 0)} rows/s")
    purged = (f"{pu['rows_deleted']:,} rows ({pu['deleted']['cases']} cases) in "
              f"{_num(pu['seconds'], 1)} s = {_num(pu['rows_per_s_overall'], 0)} rows/s; "
              f"{_per_case(pu['ms_per_deleted_case'])} ms per deleted case; "
              f"{_num(pu['db_mb_before'], 0)} -> {_num(pu['db_mb_after'], 0)} MiB")
    rows = [
        ["database", database],
        ["start-up to ready (build+start)", startup],
        ["RSS after start", rss],
        ["open_cases_of (by sender)", lookup],
        ["/cases in the team group", listing],
        ["  its listing query alone", listing_sql],
        ["/cases in the officer's DM", listing_dm],
        ["run_due, nothing due", idle],
        [f"run_due, a full batch ({rd['batch']}) due", batch],
        ["run_due, 200 more due at once", drain],
        ["key rotation", rotation],
        ["purge", purged],
    ]
    return _table(["measurement", "result"], rows, numeric=False)


def targets(throughput: dict[str, Any] | None, scale: dict[str, Any] | None
            ) -> list[dict[str, Any]]:
    """Each target of issue 8 with what was measured and whether it is met."""
    out: list[dict[str, Any]] = []

    def add(name: str, target: str, measured: float | None, limit: float, *,
            at_least: bool = False, unit: str = "") -> None:
        met = None if measured is None else (measured >= limit if at_least
                                             else measured <= limit)
        out.append({"target": name, "wanted": target, "measured": measured, "unit": unit,
                    "met": met})

    for row in (throughput or {}).get("rows", [])[1:]:
        ratios = row["ratios"]
        db = row["db"]
        add(f"flood throughput relay/baseline ({db})", ">= 0.50", ratios["throughput"], 0.5,
            at_least=True, unit="x")
        add(f"paced p99 relay/baseline ({db})", "<= 2.0", ratios["p99"], 2.0, unit="x")
    if scale:
        add("start-up with the scale DB (median)", "<= 2 s",
            scale["startup"]["startup_median_s"], 2.0, unit="s")
        add("RSS after start (max)", "<= 150 MB", scale["startup"]["rss_max_mb"], 150.0,
            unit="MB")
        add("open_cases_of p99", "<= 5 ms", scale["open_cases_of"]["p99_ms"], 5.0, unit="ms")
        add("scope listing (/cases) p99", "<= 5 ms", scale["scope_listing"]["p99_ms"], 5.0,
            unit="ms")
        add("run_due pass, nothing due (max)", "<= 100 ms",
            scale["run_due"]["idle_pass"]["max_ms"], 100.0, unit="ms")
        busy = scale["run_due"]["full_batch_pass"].get("ms")
        add("run_due pass, a full batch due", "<= 100 ms", busy, 100.0, unit="ms")
    return out


def targets_table(items: list[dict[str, Any]]) -> str:
    rows = [[t["target"], t["wanted"], f"{_num(t['measured'], 3 if t['unit'] == 'x' else 1)} "
             f"{t['unit']}".strip(), {True: "MET", False: "MISSED", None: "-"}[t["met"]]]
            for t in items]
    return _table(["target", "wanted", "measured", "verdict"], rows)


def write(path: Path, section: str, data: dict[str, Any], machine: dict[str, Any],
          command: str) -> dict[str, Any]:
    """Merge `section` into the JSON file (other sections are kept, each with its own
    command and finish time); recompute the targets from what the file now holds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc: dict[str, Any] = json.loads(path.read_text("utf-8"))
        if doc.get("format") != FORMAT:
            doc = {}
    except (OSError, ValueError):
        doc = {}
    doc["format"] = FORMAT
    doc["machine"] = machine
    doc[section] = {"command": command, **data}
    doc["targets"] = targets(doc.get("throughput"), doc.get("scale"))
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n", "utf-8")
    return doc
