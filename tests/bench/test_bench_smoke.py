"""Smoke test of the benchmarks: `python -m bench all --short --trace` with tiny sizes (the
PostgreSQL row only when the test server answers).

Checks that the JSON has every expected key and that the figures are positive and finite,
and prints them. No performance threshold is asserted here: the targets and how far the
figures are from them are in docs/performance.md.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIGURES

REPO = Path(__file__).resolve().parents[2]


def _positive(value: object, where: str) -> None:
    assert isinstance(value, int | float), where
    assert not isinstance(value, bool), where
    assert math.isfinite(value), f"{where} = {value!r}"
    assert value > 0, f"{where} = {value!r}"


def _check_throughput(section: dict[str, Any]) -> None:
    rows = section["rows"]
    assert rows[0]["system"] == "signalbot echo"
    assert [r["db"] for r in rows[1:]] in (["sqlite"], ["sqlite", "postgresql"])
    assert (len(rows) == 3) == (section["postgresql"] is not None)
    for row in rows:
        name = f"{row['system']}/{row['db']}"
        flood, paced = row["flood"], row["paced"]
        assert flood["complete"], name
        assert paced["complete"], name
        assert flood["handled"] == flood["messages"], name
        _positive(flood["throughput_msg_s"], f"{name} throughput")
        _positive(flood["child_cpu_ms_per_msg"], f"{name} cpu")
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            _positive(paced[key], f"{name} paced {key}")
        assert paced["p50_ms"] <= paced["p95_ms"] <= paced["p99_ms"] <= paced["max_ms"]
        _positive(row["startup_s"], f"{name} startup")
        _positive(row["rss_after_start_mb"], f"{name} rss")
    for row in rows[1:]:
        for key in ("throughput", "p50", "p95", "p99"):
            _positive(row["ratios"][key], f"{row['db']} ratio {key}")
        trace = row["paced_trace"]  # --trace: where the paced messages' time went
        stages = ("ingest_called", "stored", "dispatch_started", "send_started",
                  "relayed_send_arrived")
        for stage in stages:
            _positive(trace[stage]["p50_ms"], f"{row['db']} trace {stage}")
        medians = [trace[stage]["p50_ms"] for stage in stages]
        assert medians[:3] == sorted(medians[:3]), medians  # stored before dispatched
        assert medians[1] < medians[4], medians  # and before the relayed send arrives
        assert trace["stored"]["n"] == row["paced"]["messages"]
        assert set(row["gc_full_collections"]) == {"count", "max_ms", "total_ms"}


def _check_scale(section: dict[str, Any]) -> None:
    db = section["database"]
    assert db["rows"]["cases"] > 0
    assert db["rows"]["case_messages"] > 0
    startup = section["startup"]
    _positive(startup["startup_median_s"], "startup")
    _positive(startup["rss_max_mb"], "rss")
    _positive(section["open_cases_of"]["p99_ms"], "open_cases_of p99")
    listing = section["scope_listing"]
    _positive(listing["p99_ms"], "/cases p99")
    _positive(listing["open_cases_in_scope"], "open cases in scope")
    _positive(listing["dm"]["p99_ms"], "/cases in a DM p99")
    _positive(listing["query_only"]["p99_ms"], "listing query p99")
    due = section["run_due"]
    assert due["pending_timers"] == db["shape"]["timers"]
    _positive(due["idle_pass"]["max_ms"], "run_due idle")
    _positive(due["full_batch_pass"]["ms"], "run_due batch")
    assert due["full_batch_pass"]["fired"] == due["batch"]
    assert due["drain"]["fired"] > due["batch"]
    assert due["drain"]["passes"] > 1
    _positive(due["drain"]["longest_pass_ms"], "run_due longest pass of a drain")
    rotation = section["rotation"]
    assert rotation["finished"]
    _positive(rotation["rows_per_s"], "rotation rate")
    purge = section["purge"]
    assert purge["dry_run_counts_match"]
    assert purge["compacted"]
    _positive(purge["rows_per_s_overall"], "purge rate")
    _positive(purge["deleted"]["cases"], "purged cases")


def test_bench_short(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    out = tmp_path / "latest.json"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "all", "--short", "--trace",
         "--out", str(out), "--work", str(tmp_path / "work"), "--cache", str(tmp_path / "cache")],
        cwd=REPO, capture_output=True, text=True, timeout=110, check=False,
    )
    elapsed = time.perf_counter() - started
    figures = done.stdout + f"\n(python -m bench all --short took {elapsed:.1f} s)"
    request.node.user_properties.append((FIGURES, figures))  # shown at the end of the run
    assert done.returncode == 0, done.stderr[-3000:]

    doc = json.loads(out.read_text("utf-8"))
    assert doc["format"] == 1
    assert {"nproc", "cpu_model", "ram_gib", "python", "sqlite"} <= set(doc["machine"])
    assert {"throughput", "scale", "targets"} <= set(doc)
    _check_throughput(doc["throughput"])
    _check_scale(doc["scale"])
    names = {t["target"] for t in doc["targets"]}
    assert "flood throughput relay/baseline (sqlite)" in names
    assert "run_due pass, nothing due (max)" in names
    for target in doc["targets"]:
        assert {"wanted", "measured", "met"} <= set(target)
        _positive(target["measured"], target["target"])
