"""`relay doctor`: one line per set-up check, each with the fix for what it found."""

from relay.doctor.result import CheckResult, Status, exit_code, render_json, render_lines
from relay.doctor.run import DiskLimits, run_checks

__all__ = [
    "CheckResult",
    "DiskLimits",
    "Status",
    "exit_code",
    "render_json",
    "render_lines",
    "run_checks",
]
