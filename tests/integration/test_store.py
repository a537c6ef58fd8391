"""The store on real SQLite files and real PostgreSQL: schema, pragmas, inbox, audit."""

from __future__ import annotations

import json

from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from relay import audit, inbox
from relay.clock import FakeClock
from relay.store.migrate import alembic_config, current_revision, head_revision
from relay.store.models import AuditEntry, Base, InboxRow
from relay.store.sealing import Sealer


def _frame(ts: int = 1767225600000, text_: str = "anonymous report") -> str:
    env = {
        "source": "c9d8e7f6-a5b4-4c3d-8e2f-1a0b9c8d7e6f", "sourceNumber": None,
        "sourceUuid": "c9d8e7f6-a5b4-4c3d-8e2f-1a0b9c8d7e6f", "sourceName": "Reporter",
        "sourceDevice": 1, "timestamp": ts, "serverReceivedTimestamp": ts + 412,
        "serverDeliveredTimestamp": ts + 530,
        "dataMessage": {"timestamp": ts, "message": text_, "expiresInSeconds": 0,
                        "isExpirationUpdate": False, "viewOnce": False},
    }
    return json.dumps({"envelope": env, "account": "+4915112345678"})


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        columns = {c["name"] for c in inspect(engine).get_columns(name)}
        assert columns == {c.name for c in table.columns}, name


def test_migration_history_is_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    assert len(heads) == 1
    revisions = list(script.walk_revisions())
    assert all(len(r._normalized_down_revisions) <= 1 for r in revisions)


def test_sqlite_pragmas_on_every_new_connection(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    for _ in range(2):
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1
        engine.dispose()  # next round gets a brand-new connection


def test_inbox_dedupes_the_same_frame_from_both_paths(
    sessions: sessionmaker[Session], sealer: Sealer, clock: FakeClock
) -> None:
    raw = _frame()
    webhook_line = json.dumps({"jsonrpc": "2.0", "method": "receive",
                               "params": json.loads(raw)}) + "\n"
    with sessions.begin() as s:
        assert inbox.ingest(s, sealer, raw, "ws", clock.now()) is inbox.Stored.NEW
    with sessions.begin() as s:
        stored = inbox.ingest(s, sealer, webhook_line, "webhook", clock.now())
        assert stored is inbox.Stored.DUPLICATE
        assert inbox.ingest(s, sealer, _frame(ts=1767225600001), "ws",
                            clock.now()) is inbox.Stored.NEW
    with sessions.begin() as s:
        rows = s.scalars(select(InboxRow).order_by(InboxRow.seq)).all()
        assert [r.status for r in rows] == ["pending", "pending"]
        first = inbox.next_pending(s, sealer)
        assert first is not None
        assert json.loads(first.raw)["envelope"]["timestamp"] == 1767225600000


def test_inbox_stores_frame_sealed_and_quarantines_garbage(
    sessions: sessionmaker[Session], sealer: Sealer, clock: FakeClock
) -> None:
    secret = "canary-report-text-0123456789"
    with sessions.begin() as s:
        inbox.ingest(s, sealer, _frame(text_=secret), "ws", clock.now())
        assert inbox.ingest(s, sealer, "{not json", "ws",
                            clock.now()) is inbox.Stored.QUARANTINED
    with sessions.begin() as s:
        rows = s.scalars(select(InboxRow).order_by(InboxRow.seq)).all()
        assert all(secret.encode() not in r.frame_sealed for r in rows)
        assert [r.status for r in rows] == ["pending", "quarantined"]
        assert inbox.quarantined_count(s) == 1


def test_audit_chain_detects_edit_and_deletion(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with sessions.begin() as s:
        for i in range(4):
            audit.append(s, "case.created", clock.now(), case_ref=f"AAA-A{i + 2}",
                         actor_ref="reporter")
    with sessions.begin() as s:
        assert audit.verify(s) == []
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(event="case.closed"))
    with sessions.begin() as s:
        assert "entry 2 was altered" in audit.verify(s)
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(event="case.created"))
    with sessions.begin() as s:
        assert audit.verify(s) == []
        s.delete(s.get(AuditEntry, 3))
    with sessions.begin() as s:
        problems = audit.verify(s)
        assert "seq gap at 3" in problems
