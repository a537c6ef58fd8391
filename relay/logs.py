"""Leak-free logging: one structlog pipeline for relay's own events and for stdlib loggers.

Rules (SECURITY.md §4): event names are constants; only allow-listed keys survive, and their
values must be scalars or short id-like strings; exceptions are logged by type only; stdlib
records (signalbot, SQLAlchemy, aiohttp, ...) become `lib.<logger>.<level>` with their message
and arguments dropped. `configure_logging` is called once, by the composition root.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

ALLOWED_KEYS: Final = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "case_ref",
        "outbox_id",
        "attempt",
        "status",
        "state",
        "flow",
        "duration_ms",
        "exc_type",
        "logger",
        "count",
        "kind",
        "component",
        "scope",
        "check",
        "age_s",
    }
)
DEBUG_KEYS: Final = frozenset({"exc_frames"})
"""Extra keys allowed only with `debug_frames=True`: code locations, never locals."""

EVENT_NAME: Final = re.compile(r"[a-z][a-z0-9_.]{0,63}")
INVALID_EVENT: Final = "event.invalid"
SAFE_VALUE: Final = re.compile(r"[A-Za-z0-9_.:-]{0,128}")
"""Defence in depth for allow-listed values: ids, enums, ISO timestamps. Not '+', '@', ' '."""
INVALID_VALUE: Final = "value.invalid"

QUIET_LIBRARIES: Final = ("sqlalchemy", "aiohttp", "websockets", "apscheduler")
MAX_FRAMES: Final = 30

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_tuple(exc_info: object) -> _ExcInfo | None:
    if isinstance(exc_info, BaseException):
        return type(exc_info), exc_info, exc_info.__traceback__
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
        return cast("_ExcInfo", exc_info)
    if exc_info is True:
        current = sys.exc_info()
        if current[0] is not None:
            return cast("_ExcInfo", current)
    return None


def _pop_exception(event_dict: EventDict) -> _ExcInfo | None:
    exc = _exc_tuple(event_dict.pop("exc_info", None))
    for key in ("exception", "stack_info", "stack"):
        event_dict.pop(key, None)
    if exc is not None:
        event_dict["exc_type"] = exc[0].__name__
    return exc


def exc_type_only(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace `exc_info` with `exc_type` (the class name): no message, traceback or locals."""
    _pop_exception(event_dict)
    return event_dict


def exc_type_and_frames(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Debug variant: also `exc_frames`, a list of `file:line:function` (no locals, no text)."""
    exc = _pop_exception(event_dict)
    if exc is not None and exc[2] is not None:
        frames = traceback.extract_tb(exc[2])[-MAX_FRAMES:]
        event_dict["exc_frames"] = [f"{f.filename}:{f.lineno}:{f.name}" for f in frames]
    return event_dict


def _safe_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and SAFE_VALUE.fullmatch(value):
        return value
    return INVALID_VALUE


def _allowlist(event_dict: EventDict, extra: frozenset[str]) -> EventDict:
    kept: EventDict = {}
    for key, value in event_dict.items():
        if key in extra:
            kept[key] = value
        elif key in ALLOWED_KEYS:
            kept[key] = value if key == "event" else _safe_value(value)
    return kept


def allowlist(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Keep only allow-listed keys; non-scalar or free-text values become `value.invalid`."""
    return _allowlist(event_dict, frozenset())


def allowlist_with_frames(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return _allowlist(event_dict, DEBUG_KEYS)


def constant_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Event names must be constants like `case.created`; anything else is `event.invalid`."""
    event = event_dict.get("event")
    if not isinstance(event, str) or EVENT_NAME.fullmatch(event) is None:
        event_dict["event"] = INVALID_EVENT
    return event_dict


def foreign_to_constant(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """stdlib records: drop message and args; the event becomes `lib.<logger>.<level>`."""
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord) and not event_dict.get("_from_structlog"):
        name = re.sub(r"[^a-z0-9_.]", "_", f"lib.{record.name}.{record.levelname}".lower())
        event_dict["event"] = name[:64]
        event_dict.pop("positional_args", None)
    return event_dict


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _guards(debug_frames: bool) -> list[Processor]:
    if debug_frames:
        return [exc_type_and_frames, allowlist_with_frames, constant_event]
    return [exc_type_only, allowlist, constant_event]


class _RelayHandler(logging.StreamHandler[TextIO]):
    """The one root handler; marked so a second `configure_logging` replaces it."""


class _TolerantWriteLogger(structlog.WriteLogger):
    """A line that cannot be written (stream closed, broken pipe) is dropped, as the stdlib
    handler drops it: a log call must never end the loop that makes it (the receiver)."""

    def msg(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().msg(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def configure_logging(
    *,
    stream: TextIO,
    json: bool = True,
    level: int = logging.INFO,
    debug_frames: bool = False,
    cache_logger_on_first_use: bool = True,
) -> None:
    """Route structlog and stdlib logging through the allow-listed pipeline onto `stream`.

    Every other handler on the root logger is removed: any handler left there would see
    raw stdlib messages. Tests pass `cache_logger_on_first_use=False`.
    """
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    guards = _guards(debug_frames)
    structlog.configure(
        processors=[*_shared(), *guards, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: _TolerantWriteLogger(stream),
        cache_logger_on_first_use=cache_logger_on_first_use,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[
            foreign_to_constant,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *guards,
            renderer,
        ],
        use_get_message=False,
        pass_foreign_args=False,
    )
    handler = _RelayHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, _RelayHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    # A failing handler must not print the raw record (message and args) to stderr.
    logging.raiseExceptions = False
    # warnings.warn text goes through the pipeline as lib.py.warnings.warning.
    logging.captureWarnings(capture=True)


def quiet_signalbot() -> None:
    """Undo what each `SignalBot(...)` does to the "signalbot" logger; call after each one.

    signalbot 2.2.1's `_initialize_logger` adds a plain StreamHandler and sets the level on
    every construction. Remove every handler, set WARNING, and propagate to the root
    handler, which reduces its records to `lib.signalbot.<level>`.
    """
    bot_logger = logging.getLogger("signalbot")
    for handler in list(bot_logger.handlers):
        bot_logger.removeHandler(handler)
    bot_logger.setLevel(logging.WARNING)
    bot_logger.propagate = True
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(component: str, **ids: Any) -> FilteringBoundLogger:
    """A structlog logger bound to `component` (and any allow-listed ids)."""
    bound: Mapping[str, Any] = {"component": component, **ids}
    return cast("FilteringBoundLogger", structlog.get_logger(**bound))
