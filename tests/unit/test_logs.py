"""Canary tests for the production logging pipeline (SECURITY.md §4).

Each test builds the real chain with `configure_logging` on a StringIO and checks that no
canary reaches it (or stderr) in any raw, hex or base64 form.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass

import pytest
import signalbot
import structlog

from relay.logs import configure_logging, get_logger, quiet_signalbot
from tests.canary import Canaries, find_canaries


@dataclass
class Sink:
    stream: io.StringIO

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture
def sink(restore_logging: None) -> Sink:
    stream = io.StringIO()
    configure_logging(stream=stream, cache_logger_on_first_use=False)
    return Sink(stream)


def _clean(text: str, canaries: Canaries) -> None:
    assert find_canaries(text, canaries) == []


def test_unlisted_keys_are_dropped(
    sink: Sink, canaries: Canaries, capfd: pytest.CaptureFixture[str]
) -> None:
    log = get_logger("intake")
    log.info(
        "case.created",
        case_ref="K7F-3Q",
        number=canaries.e164,
        aci=canaries.aci,
        name=canaries.profile_name,
        text=canaries.report_text,
        key=canaries.key,
        key_hex=canaries.key.hex(),
    )
    [line] = sink.lines()
    assert line["event"] == "case.created"
    assert line["case_ref"] == "K7F-3Q"
    assert line["component"] == "intake"
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")
    assert set(line) == {"event", "case_ref", "component", "level", "timestamp"}
    _clean(sink.text(), canaries)
    _clean("".join(capfd.readouterr()), canaries)


def test_free_text_in_allowed_keys_is_replaced(sink: Sink, canaries: Canaries) -> None:
    structlog.contextvars.bind_contextvars(state=canaries.e164, outbox_id="ob-17")
    get_logger("pump").warning(
        "outbox.held", status=f"to {canaries.aci}", kind={"x": canaries.report_text}, attempt=3
    )
    [line] = sink.lines()
    assert line["state"] == "value.invalid"
    assert line["status"] == "value.invalid"
    assert line["kind"] == "value.invalid"
    assert line["attempt"] == 3
    assert line["outbox_id"] == "ob-17"
    _clean(sink.text(), canaries)


def test_exception_logs_type_only(
    sink: Sink, canaries: Canaries, capfd: pytest.CaptureFixture[str]
) -> None:
    log = get_logger("ingest")

    def parse(report_text: str, number: str) -> None:
        raise KeyError(number + report_text)

    try:
        parse(canaries.report_text, canaries.e164)
    except KeyError:
        log.exception("frame.parse_failed")
    [line] = sink.lines()
    assert line["event"] == "frame.parse_failed"
    assert line["exc_type"] == "KeyError"
    assert line["level"] == "error"
    assert '"exc_type": "KeyError"' in sink.text()
    assert "Traceback" not in sink.text()
    assert "exception" not in line
    _clean(sink.text(), canaries)
    _clean("".join(capfd.readouterr()), canaries)


def test_exc_info_instance_and_stdlib_exception(sink: Sink, canaries: Canaries) -> None:
    error = ValueError(canaries.e164)
    get_logger("x").warning("send.failed", exc_info=error)

    def fail(aci: str) -> None:
        raise RuntimeError(aci)

    try:
        fail(canaries.aci)
    except RuntimeError:
        logging.getLogger("aiohttp.client").exception("failed for %s", canaries.aci)
    first, second = sink.lines()
    assert first["exc_type"] == "ValueError"
    assert second == {
        "event": "lib.aiohttp.client.error",
        "level": "error",
        "timestamp": second["timestamp"],
        "exc_type": "RuntimeError",
    }
    _clean(sink.text(), canaries)


def test_stdlib_records_become_constants(
    sink: Sink, canaries: Canaries, capfd: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("signalbot").warning(
        "[Bot] Message %s not delivered to %s: %s", 1, canaries.aci, "X"
    )
    logging.getLogger("sqlalchemy.engine").error(f"IntegrityError {canaries.e164}")  # noqa: G004
    logging.getLogger("broken").warning("too few args %s %s", canaries.report_text)  # noqa: PLE1206
    lines = sink.lines()
    assert [line["event"] for line in lines] == [
        "lib.signalbot.warning",
        "lib.sqlalchemy.engine.error",
        "lib.broken.warning",
    ]
    assert all(set(line) == {"event", "level", "timestamp"} for line in lines)
    _clean(sink.text(), canaries)
    _clean("".join(capfd.readouterr()), canaries)


def test_python_warnings_are_constants(sink: Sink, canaries: Canaries) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(capture=True)
        warnings.warn(f"odd value {canaries.e164}", UserWarning, stacklevel=1)
    [line] = sink.lines()
    assert line["event"] == "lib.py.warnings.warning"
    _clean(sink.text(), canaries)


def test_signalbot_handler_removed(
    sink: Sink, canaries: Canaries, capfd: pytest.CaptureFixture[str]
) -> None:
    signalbot.SignalBot({"phone_number": "+4915112345678", "storage": {"type": "in-memory"}})
    bot_logger = logging.getLogger("signalbot")
    assert bot_logger.handlers  # signalbot 2.2.1 attached its own StreamHandler
    quiet_signalbot()
    assert bot_logger.handlers == []
    assert bot_logger.level == logging.WARNING
    assert bot_logger.propagate is True
    for name in ("sqlalchemy", "aiohttp", "websockets", "apscheduler"):
        assert logging.getLogger(name).level == logging.WARNING

    bot_logger.info("[Raw Message] %s", {"envelope": {"sourceUuid": canaries.aci}})
    assert sink.text() == ""
    bot_logger.warning("[Bot] Message %s not delivered to %s: %s", 1, canaries.e164, "X")
    assert [line["event"] for line in sink.lines()] == ["lib.signalbot.warning"]
    _clean(sink.text(), canaries)
    _clean("".join(capfd.readouterr()), canaries)


def test_non_constant_event_names_are_replaced(sink: Sink, canaries: Canaries) -> None:
    log = get_logger("intake")
    log.info(f"report from {canaries.e164}")  # noqa: G004
    log.info("Case.Created")
    log.info("a" * 65)
    log.info("case.created")
    events = [line["event"] for line in sink.lines()]
    assert events == ["event.invalid", "event.invalid", "event.invalid", "case.created"]
    _clean(sink.text(), canaries)


def test_console_renderer_is_allow_listed(restore_logging: None, canaries: Canaries) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=False, cache_logger_on_first_use=False)
    get_logger("cli").info("keys.rotated", count=2, secret=canaries.key.hex())
    logging.getLogger("signalbot").warning("to %s", canaries.aci)
    text = stream.getvalue()
    assert "keys.rotated" in text
    assert "lib.signalbot.warning" in text
    _clean(text, canaries)


def test_debug_frames_show_locations_not_data(restore_logging: None, canaries: Canaries) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, debug_frames=True, cache_logger_on_first_use=False)

    def handle(number: str) -> None:
        raise KeyError(number)

    try:
        handle(canaries.e164)
    except KeyError:
        get_logger("x").exception("frame.failed")
    [line] = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    frames = line["exc_frames"]
    assert isinstance(frames, list)
    assert any(frame.endswith(":handle") for frame in frames)
    _clean(stream.getvalue(), canaries)


def test_level_filtering(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, level=logging.WARNING, cache_logger_on_first_use=False)
    get_logger("x").info("quiet.event")
    logging.getLogger("lib").info("quiet")
    get_logger("x").warning("loud.event")
    assert [json.loads(raw)["event"] for raw in stream.getvalue().splitlines()] == ["loud.event"]


def test_reconfiguring_replaces_the_handler(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first, cache_logger_on_first_use=False)
    configure_logging(stream=second, cache_logger_on_first_use=False)
    logging.getLogger("x").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
