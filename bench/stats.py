"""Small statistics helpers: percentiles of latency samples, rates, process counters."""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_s: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/max/mean in milliseconds of samples given in seconds."""
    ms = [s * 1000.0 for s in samples_s]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else math.nan,
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
    }


def rss_mb() -> float:
    """Resident set size of this process now (VmRSS), in MiB."""
    return _status_kb("VmRSS") / 1024.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MiB."""
    return _status_kb("VmHWM") / 1024.0


def _status_kb(field: str) -> float:
    try:
        with Path("/proc/self/status").open(encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    # not Linux: ru_maxrss is the peak (KiB on Linux, bytes on macOS); better than nothing
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def cpu_seconds() -> float:
    """User + system CPU time this process used so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def finite_positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def cores() -> int:
    return os.cpu_count() or 1
