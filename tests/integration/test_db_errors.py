"""A forced database error (a constraint violation) reveals no bound value in relay's logs
or stderr: SQLAlchemy hides parameters, and relay logs the exception type only.

PostgreSQL itself puts the conflicting value in the error's DETAIL ("Key (name)=(...)
already exists"), so the exception text is never safe to log; relay's unique columns hold
keyed digests and ids only, and the operator docs tell how to keep the server log terse."""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from relay.logs import configure_logging, get_logger
from relay.store.models import Counter


def test_constraint_violation_leaks_no_value(
    sessions: sessionmaker[Session], restore_logging: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    canary = "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))
    buf = io.StringIO()
    configure_logging(stream=buf, json=True, level=logging.DEBUG,
                      cache_logger_on_first_use=False)
    log = get_logger("test")
    with sessions.begin() as s:
        s.add(Counter(name=canary, value=1))
    with pytest.raises(IntegrityError) as info, sessions.begin() as s:
        s.add(Counter(name=canary, value=2))
    if sessions.kw["bind"].dialect.name == "sqlite":
        assert canary not in str(info.value)  # hide_parameters=True
    try:
        raise info.value
    except IntegrityError as exc:
        log.exception("dispatcher.frame_failed", exc_type=type(exc).__name__)
        logging.getLogger("sqlalchemy.engine").error("failed: %s", exc)
    out, err = capfd.readouterr()
    text = buf.getvalue()
    assert "dispatcher.frame_failed" in text
    assert all(json.loads(line) for line in text.splitlines())
    for blob in (text, out, err):
        assert canary not in blob
        assert canary[1:] not in blob
