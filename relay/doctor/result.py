"""What one doctor check found, and how results are printed (text lines or JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One printed line: the check's short name, its status, what was found, the fix."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self, width: int = 0) -> str:
        text = f"{self.status.value:<4}  {self.check:<{width}}  {_one_line(self.detail)}"
        if self.status is not Status.OK and self.fix:
            text += f"  fix: {_one_line(self.fix)}"
        return text

    def as_json(self) -> dict[str, str | None]:
        return {"check": self.check, "status": self.status.value, "detail": self.detail,
                "fix": self.fix or None}


def ok(check: str, detail: str) -> CheckResult:
    return CheckResult(check, Status.OK, detail)


def warn(check: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, Status.WARN, detail, fix)


def fail(check: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, Status.FAIL, detail, fix)


def skipped(check: str, why: str, earlier: str) -> CheckResult:
    """A check that cannot run because an earlier one failed: fix that one first."""
    return CheckResult(check, Status.WARN, f"skipped: {why}", f"see '{earlier}' above")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_lines(results: Sequence[CheckResult]) -> list[str]:
    width = max((len(r.check) for r in results), default=0)
    return [r.line(width) for r in results]


def render_json(results: Sequence[CheckResult]) -> str:
    return json.dumps([r.as_json() for r in results], indent=2)


def exit_code(results: Sequence[CheckResult]) -> int:
    """1 if any check failed, else 0 (warnings do not fail the doctor)."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0
