"""The dispatcher claims the rows it has just written, in its own transaction, when the
outbox pump has nothing out; otherwise it leaves them to the pump. Either way one batch is
out at a time, a rolled-back claim is released, and the send-time scope check sees the
routing as it is at that moment. Real SQLite files and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import event, select

from handlers.flows.catalog import Catalog
from handlers.flows.intake import Draft
from keys import Keyring
from relay.app import Relay, build
from relay.cases import ReporterAddress, create_case, open_case, save_routing
from relay.clock import FakeClock
from relay.config import load_config
from relay.delivery import Destinations
from relay.gateway import Sent
from relay.outbox import Batch, Claimed, Delivered, Outcome, RecipientKind, Status
from relay.store.models import Case, OutboxRow
from tests.integration.conftest import count_commits
from tests.integration.test_rotation import EXAMPLE


@pytest.fixture
def app(db_url: str, keyring: Keyring, clock: FakeClock) -> Iterator[Relay]:
    relay = build(load_config(EXAMPLE), keyring, clock, database_url=db_url)
    yield relay
    relay.engine.dispose()


def _hello(n: int, text: str = "hi") -> str:
    aci = str(uuid.UUID(int=0x9100 + n, version=4))
    ts = 1767225600000 + n
    env = {"source": aci, "sourceNumber": None, "sourceUuid": aci, "sourceName": f"R{n}",
           "sourceDevice": 1, "timestamp": ts, "serverReceivedTimestamp": ts,
           "serverDeliveredTimestamp": ts,
           "dataMessage": {"timestamp": ts, "message": text, "expiresInSeconds": 0,
                           "isExpirationUpdate": False, "viewOnce": False}}
    return json.dumps({"envelope": env, "account": "+4915112345678"})


def _rows(app: Relay) -> list[tuple[int, str, int]]:
    with app.sessions.begin() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(OutboxRow.seq, OutboxRow.status, OutboxRow.attempts)
            .order_by(OutboxRow.seq)).all()]


def _delivered(batch: Batch) -> list[Outcome]:
    return [Delivered(item, dest, Sent(timestamp=1_700_000_000_000 + n))
            for n, (item, dest) in enumerate(batch) if dest is not None]


def _refuse_next_commit(app: Relay) -> None:
    fail = [True]

    def refuse(_conn: object) -> None:
        if fail[0]:
            fail[0] = False
            raise RuntimeError("commit refused")

    event.listen(app.engine, "commit", refuse)


def test_an_idle_pump_gets_the_rows_without_a_transaction_of_their_own(app: Relay) -> None:
    app._ingest_sync([_hello(1)], "ws")
    commits = count_commits(app.engine)
    assert app.dispatcher.process_pending() is True
    assert commits[0] == 1  # the frame's work and the claim of its rows: one commit
    rows = _rows(app)
    assert rows
    assert all(status == Status.SENDING and attempts == 1 for _, status, attempts in rows)
    # the pump takes the handed-over batch as it is: no database job at all
    before = commits[0]
    batch = app.pump._take_ready()
    assert batch is not None
    assert commits[0] == before
    assert [item.kind for item, _ in batch] == [RecipientKind.REPORTER] * len(rows)
    with app.sessions.begin() as s:  # what goes out is exactly what was sealed
        for item, _ in batch:
            row = s.get(OutboxRow, item.id)
            assert row is not None
            dek = app.sealer.open_record("outbox", row.id, row.dek_wrapped)
            assert app.sealer.open(dek, "outbox", row.id, "body", row.body_sealed).decode() \
                == item.text
    # recorded with the next claim, which finds nothing: the pump is idle again
    assert app.pump._record_and_claim(_delivered(batch), 16) == []
    assert {status for _, status, _ in _rows(app)} == {Status.SENT}
    app._ingest_sync([_hello(2)], "ws")
    assert app.dispatcher.process_pending() is True
    assert {status for _, status, _ in _rows(app)} == {Status.SENT, Status.SENDING}


def test_while_a_batch_is_out_new_rows_wait_for_the_pump_in_order(app: Relay) -> None:
    app._ingest_sync([_hello(1)], "ws")
    assert app.dispatcher.process_pending() is True
    first = app.pump._take_ready()
    assert first  # out now: sending
    app._ingest_sync([_hello(2), _hello(3)], "ws")
    assert app.dispatcher.process_pending() is True
    waiting = [(seq, status) for seq, status, _ in _rows(app) if status == Status.PENDING]
    assert len(waiting) >= 2  # not claimed by the dispatcher: a batch is out
    nxt = app.pump._record_and_claim(_delivered(first), 16)
    with app.sessions.begin() as s:
        seqs = [s.get(OutboxRow, item.id).seq for item, _ in nxt]  # type: ignore[union-attr]
    assert seqs == sorted(seqs) == [seq for seq, _ in waiting]


def test_a_claim_rolled_back_with_its_transaction_is_released(app: Relay) -> None:
    app._ingest_sync([_hello(1)], "ws")
    _refuse_next_commit(app)
    with pytest.raises(RuntimeError):
        app.dispatcher.process_pending()
    assert _rows(app) == []  # nothing of that transaction stands
    assert app.pump._take_ready() is None
    assert app.dispatcher.process_pending() is True  # the frame again, and its claim
    assert {status for _, status, _ in _rows(app)} == {Status.SENDING}
    assert app.pump._take_ready()


def test_the_send_time_scope_check_sees_a_routing_changed_in_the_same_transaction(
        app: Relay) -> None:
    cfg = app.cfg
    catalog = Catalog(cfg.texts)
    draft = Draft(named=False, help_kind="support", category="conflict", scope_id="regen-group",
                  narrative=("scope check",), safe=True, checkin_ok=False)
    who = ReporterAddress(str(uuid.UUID(int=0x9999, version=4)), None, None)
    resolve = Destinations(cfg, app.sealer)
    with app.sessions.begin() as s:
        created = create_case(s, app.sealer, cfg, catalog, draft, who, app.clock.now())
        row = s.get(Case, created.case_id)
        assert row is not None
        view = open_case(app.sealer, row)
        item = Claimed(id="x", kind=RecipientKind.OFFICER, ref="rc-marcus", address=None,
                       text="case text", purpose="followup", case_id=row.id,
                       map_replies=True, quote_timestamp=None, attempts=1,
                       possible_repeat=False)
        assert resolve(s, item) is not None  # in the team: may receive
        save_routing(app.sealer, row, view, replace(view.routing, excluded=("rc-marcus",)))
        assert resolve(s, item) is None  # excluded a moment ago: held, not sent
        assert resolve(s, replace(item, ref="rc-devi")) is not None
        s.flush()
        s.expire(row)  # as read back from the database
        assert resolve(s, item) is None


def test_a_handed_over_batch_survives_a_failed_recording(app: Relay) -> None:
    app._ingest_sync([_hello(1)], "ws")
    assert app.dispatcher.process_pending() is True
    first = app.pump._take_ready()
    assert first
    app._ingest_sync([_hello(2)], "ws")
    app.pump.release()  # as if the first batch were done: the next dispatch hands over
    assert app.dispatcher.process_pending() is True
    _refuse_next_commit(app)
    with pytest.raises(RuntimeError):  # recording the first batch fails...
        app.pump._record_and_claim(_delivered(first), 16)
    again = app.pump._record_and_claim(_delivered(first), 16)
    assert again  # ...and the handed-over batch is still the one to send next
    assert {item.id for item, _ in again}.isdisjoint({item.id for item, _ in first})
    assert all(status == Status.SENT for _, status, _ in _rows(app)[:len(first)])
