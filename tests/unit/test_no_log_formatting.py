"""Static check: log events are string constants, never formatted (SECURITY.md §4).

Any call `<x>.debug/info/warning/warn/error/exception/critical/msg(...)` whose receiver is a
logger must pass a plain string literal as its first argument (or as `event=`): no f-string,
no `%`, no `.format(...)`, no concatenation, no variable. A receiver is a logger when it is
named `log`, `logger` or `logging`, or its name ends in `_log` or `logger` (`self._log`,
`bot_logger`), or it is a `get_logger(...)`/`getLogger(...)` call. Plain suffix `log` is not
enough: `catalog.info(key)` is not a logger.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("relay", "handlers", "keys")
LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "msg", "fatal"}
)


def _is_logger(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):  # get_logger(...).info, logging.getLogger(...).info
        return _is_logger(node.func)
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    else:
        return False
    lowered = name.lower()
    return lowered in {"log", "logger", "logging"} or lowered.endswith(("_log", "logger"))


def _problem(arg: ast.expr) -> str | None:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return None
    if isinstance(arg, ast.JoinedStr):
        return "f-string"
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod):
        return "%-formatting"
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add):
        return "string concatenation"
    if (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr == "format"
    ):
        return ".format(...)"
    return "non-constant event"


def violations(source: str, filename: str = "<string>") -> Iterator[str]:
    """Yield `file:line: method(<problem>)` for every formatted or variable log event."""
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
        ):
            continue
        if not _is_logger(node.func.value):
            continue
        event = node.args[0] if node.args else None
        if event is None:
            event = next((kw.value for kw in node.keywords if kw.arg == "event"), None)
        problem = "missing event" if event is None else _problem(event)
        if problem is not None:
            yield f"{filename}:{node.lineno}: {node.func.attr}({problem})"


def _python_files() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return [f for f in files if "migrations" not in f.parts or "versions" not in f.parts]


def test_no_formatted_log_events_in_the_code_base() -> None:
    files = _python_files()
    assert files, "expected to find relay/, handlers/ and keys/ sources"
    found = [
        problem
        for path in files
        for problem in violations(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == [], "log events must be string constants:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('log.info(f"report from {number}")', "info(f-string)"),
        ('logger.warning("sent to %s" % number)', "warning(%-formatting)"),
        ('self._log.error("case {}".format(ref))', "error(.format(...))"),
        ("bot_logger.exception(message)", "exception(non-constant event)"),
        ('log.info("case " + ref)', "info(string concatenation)"),
        ("log.info(event=text)", "info(non-constant event)"),
        ("self.log.msg()", "msg(missing event)"),
        ('logging.warning(f"x {y}")', "warning(f-string)"),
        ('structlog.get_logger().info(f"x {y}")', "info(f-string)"),
        ('logging.getLogger(__name__).error("x %s" % y)', "error(%-formatting)"),
    ],
)
def test_checker_flags(source: str, expected: str) -> None:
    assert list(violations(source)) == [f"<string>:1: {expected}"]


@pytest.mark.parametrize(
    "source",
    [
        'log.info("case.created", case_ref=ref)',
        'self._logger.exception("frame.failed")',
        'log.info(event="outbox.sent", attempt=n)',
        'logging.getLogger("x").info("lib.event")',
        'get_logger("pump").warning("outbox.held", attempt=3)',
        "parser.error(f'{x}')",  # not a logger
        "catalog.info(key)",  # a string catalog, not a logger
        "self.backlog.error(x)",
    ],
)
def test_checker_allows(source: str) -> None:
    assert list(violations(source)) == []
