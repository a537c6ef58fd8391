"""KEK rotation by re-wrapping, on SQLite files and PostgreSQL: complete, scoped to the
current epoch, and resumable after a SIGKILL half-way (SECURITY.md §2.3).

The data-building helpers here are shared with test_verify.py and test_retention.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.flows.catalog import Catalog
from handlers.flows.intake import Draft
from keys import KeyDestroyedError, Keyring, kek_id_of, parse_kek_id, unwrap_dek
from relay import inbox
from relay.cases import ReporterAddress, create_case, open_case
from relay.clock import FakeClock
from relay.config import OrgConfig, load_config
from relay.rotation import WRAPPED_TABLES, rotate, wrapped_table
from relay.store.models import Case, Conversation
from relay.store.sealing import Sealer
from relay.verify import verify

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "examples" / "mpp.toml"
NARRATIVE = "canary-narrative-7f3e: what happened at the meeting"


# -- shared helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfg() -> OrgConfig:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def catalog(cfg: OrgConfig) -> Catalog:
    return Catalog(cfg.texts)


def reporter(index: int) -> ReporterAddress:
    return ReporterAddress(str(uuid.UUID(int=0x1000 + index, version=4)),
                           f"+1555010{index:04d}", f"Reporter {index}")


def make_draft(text: str = NARRATIVE) -> Draft:
    return Draft(named=False, help_kind="support", category="conflict",
                 scope_id="regen-group", narrative=(text,), when="last week",
                 where="the meeting", who="someone", safe=True, checkin_ok=True)


def new_case(sessions: sessionmaker[Session], sealer: Sealer, cfg: OrgConfig,
             catalog: Catalog, clock: FakeClock, index: int = 0) -> str:
    """A real case (case, reporter link, first message, outbox rows) at `clock.now()`."""
    with sessions.begin() as s:
        created = create_case(s, sealer, cfg, catalog, make_draft(), reporter(index),
                              clock.now())
    return created.case_id


def frame(ts: int, text: str = NARRATIVE) -> str:
    aci = "c9d8e7f6-a5b4-4c3d-8e2f-1a0b9c8d7e6f"
    env = {
        "source": aci, "sourceNumber": None, "sourceUuid": aci, "sourceName": "Reporter",
        "sourceDevice": 1, "timestamp": ts, "serverReceivedTimestamp": ts + 412,
        "serverDeliveredTimestamp": ts + 530,
        "dataMessage": {"timestamp": ts, "message": text, "expiresInSeconds": 0,
                        "isExpirationUpdate": False, "viewOnce": False},
    }
    return json.dumps({"envelope": env, "account": "+4915112345678"})


def new_inbox(sessions: sessionmaker[Session], sealer: Sealer, clock: FakeClock,
              ts: int) -> None:
    with sessions.begin() as s:
        assert inbox.ingest(s, sealer, frame(ts), "ws", clock.now()) is inbox.Stored.NEW


def new_conversation(sessions: sessionmaker[Session], sealer: Sealer, clock: FakeClock,
                     index: int = 0) -> str:
    """A conversation row sealed the way `ReporterDesk._save` seals it."""
    who = reporter(index)
    conv_id = str(uuid.uuid4())
    rk = sealer.new_record("conversations", conv_id)
    with sessions.begin() as s:
        s.add(Conversation(
            id=conv_id, reporter_bidx=sealer.reporter_index(who.aci), flow="intake",
            state="narrative", created_at=clock.now(), updated_at=clock.now(), version=1,
            kek_id=rk.kek_id, dek_wrapped=rk.wrapped,
            data_sealed=sealer.seal_json(rk.dek, "conversations", conv_id, "data",
                                         {"narrative": [NARRATIVE]}),
            address_sealed=sealer.seal_json(rk.dek, "conversations", conv_id, "address",
                                            who.to_json()),
        ))
    return conv_id


def seed(sessions: sessionmaker[Session], sealer: Sealer, cfg: OrgConfig, catalog: Catalog,
         clock: FakeClock, cases: int = 2) -> list[str]:
    """Rows in every sealed table, all in the clock's current epoch."""
    ids = [new_case(sessions, sealer, cfg, catalog, clock, i) for i in range(cases)]
    for i in range(cases):
        new_inbox(sessions, sealer, clock, 1767225600000 + i)
    new_conversation(sessions, sealer, clock)
    return ids


def kek_ids(sessions: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    """table -> row id -> kek_id column, checking the column matches the wrapped blob."""
    out: dict[str, dict[str, str]] = {}
    with sessions.begin() as s:
        for name in WRAPPED_TABLES:
            table = wrapped_table(name)
            rows = s.execute(select(table.c.id, table.c.kek_id, table.c.dek_wrapped)).all()
            for row_id, kek_id, blob in rows:
                assert kek_id_of(blob) == kek_id, (name, row_id)
            out[name] = {row_id: kek_id for row_id, kek_id, _ in rows}
    return out


def case_details(sessions: sessionmaker[Session], sealer: Sealer) -> dict[str, Any]:
    with sessions.begin() as s:
        return {row.id: open_case(sealer, row).details for row in s.scalars(select(Case))}


def status_ids(keyring: Keyring) -> list[str]:
    return [s.kek_id for s in keyring.status()]


# -- tests -------------------------------------------------------------------------------


def test_rotation_rewraps_the_current_epoch_and_retires_the_old_key(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    now = clock.now()
    clock.set(datetime(2026, 8, 10, 12, tzinfo=UTC))  # an older epoch: 2026-q3
    older_case = new_case(sessions, sealer, cfg, catalog, clock, 9)
    clock.set(now)
    seed(sessions, sealer, cfg, catalog, clock, cases=3)
    before = kek_ids(sessions)
    details = case_details(sessions, sealer)
    with sessions.begin() as s:
        old_blob = s.scalar(select(Case.dek_wrapped).where(Case.id != older_case).limit(1))
        old_blob_id = s.scalar(select(Case.id).where(Case.dek_wrapped == old_blob))
    assert old_blob is not None
    assert old_blob_id is not None
    in_q4 = sum(k == "2026-q4.1" for rows in before.values() for k in rows.values())

    calls: list[tuple[int, int]] = []
    report = rotate(sessions, keyring, clock.now(), batch=2,
                    progress=lambda done, total: calls.append((done, total)))

    assert (report.epoch, report.kek_id, report.created) == ("2026-q4", "2026-q4.2", True)
    assert report.previous == ("2026-q4.1",)
    assert report.retired == ("2026-q4.1",)
    assert report.finished
    assert report.failed == ()
    assert report.total == in_q4
    assert calls
    assert calls[-1] == (in_q4, in_q4)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    after = kek_ids(sessions)
    assert {t: set(rows) for t, rows in after.items()} == {
        t: set(rows) for t, rows in before.items()
    }
    for name, rows in after.items():
        for row_id, kek_id in rows.items():
            if before[name][row_id] == "2026-q3.1":
                assert kek_id == "2026-q3.1"  # other epochs keep their epoch
            else:
                assert kek_id == "2026-q4.2", (name, row_id)
    assert after["cases"][older_case] == "2026-q3.1"

    assert status_ids(keyring) == ["2026-q3.1", "2026-q4.2"]
    assert status_ids(Keyring.load(keyring.path)) == ["2026-q3.1", "2026-q4.2"]
    assert case_details(sessions, sealer) == details
    assert verify(sessions, keyring).ok
    with pytest.raises(KeyDestroyedError):  # a pre-rotation copy of a DEK is useless now
        unwrap_dek(keyring, old_blob, "cases", old_blob_id)

    second = rotate(sessions, keyring, clock.now())
    assert (second.kek_id, second.created, second.retired) == ("2026-q4.3", True, ("2026-q4.2",))
    assert second.total == in_q4
    assert verify(sessions, Keyring.load(keyring.path)).ok


def test_rotation_in_a_new_epoch_only_creates_its_first_key(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    seed(sessions, sealer, cfg, catalog, clock, cases=1)
    before = kek_ids(sessions)
    report = rotate(sessions, keyring, datetime(2027, 1, 5, tzinfo=UTC))
    assert (report.epoch, report.kek_id, report.created, report.total) == (
        "2027-q1", "2027-q1.1", True, 0)
    assert kek_ids(sessions) == before
    assert status_ids(keyring) == ["2026-q4.1", "2027-q1.1"]


_KILLED_ROTATION = """
import os, signal, sys
from datetime import datetime
from pathlib import Path
from keys import Keyring
from relay.rotation import rotate
from relay.store.db import make_engine, make_sessionmaker

url, keys_dir, now = sys.argv[1:4]

def die_after_first_batch(done, total):
    print(f"committed {done}/{total}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

rotate(make_sessionmaker(make_engine(url)), Keyring.load(Path(keys_dir)),
       datetime.fromisoformat(now), batch=1, progress=die_after_first_batch)
print("not killed", flush=True)
"""


def test_rotation_killed_half_way_resumes_without_a_new_generation(
    db_url: str, sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer,
    clock: FakeClock, cfg: OrgConfig, catalog: Catalog,
) -> None:
    seed(sessions, sealer, cfg, catalog, clock, cases=2)
    before = kek_ids(sessions)
    details = case_details(sessions, sealer)
    rows = sum(len(r) for r in before.values())
    assert rows >= 8

    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_ROTATION, db_url, str(keyring.path),
         clock.now().isoformat()],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"committed 1/{rows}"

    half = kek_ids(sessions)
    assert {t: set(r) for t, r in half.items()} == {t: set(r) for t, r in before.items()}
    moved = [k for r in half.values() for k in r.values() if k == "2026-q4.2"]
    assert len(moved) == 1  # exactly the first committed batch
    keyring.reload()
    assert status_ids(keyring) == ["2026-q4.1", "2026-q4.2"]
    assert verify(sessions, keyring).ok  # a half-finished rotation still reads

    report = rotate(sessions, keyring, clock.now(), batch=3)
    assert (report.kek_id, report.created) == ("2026-q4.2", False)
    assert report.total == rows - 1
    assert report.retired == ("2026-q4.1",)
    assert report.finished

    after = kek_ids(sessions)
    assert {t: set(r) for t, r in after.items()} == {t: set(r) for t, r in before.items()}
    assert {k for r in after.values() for k in r.values()} == {"2026-q4.2"}
    assert status_ids(keyring) == ["2026-q4.2"]  # only one new generation was made
    assert case_details(sessions, sealer) == details
    assert verify(sessions, keyring).ok


def test_rotation_keeps_the_old_key_while_a_row_cannot_be_rewrapped(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    case_ids = seed(sessions, sealer, cfg, catalog, clock, cases=2)
    broken = case_ids[0]
    with sessions.begin() as s:
        blob = s.scalar(select(Case.dek_wrapped).where(Case.id == broken))
        assert blob is not None
        flipped = blob[:-1] + bytes([blob[-1] ^ 1])
        s.execute(update(Case).where(Case.id == broken).values(dek_wrapped=flipped))

    report = rotate(sessions, keyring, clock.now(), batch=4)
    assert report.created
    assert [(f.table, f.row_id, f.kind) for f in report.failed] == [
        ("cases", broken, "TamperedError")]
    assert report.remaining == 1
    assert report.retired == ()
    assert status_ids(keyring) == ["2026-q4.1", "2026-q4.2"]

    again = rotate(sessions, keyring, clock.now())
    assert (again.kek_id, again.created, again.total, again.remaining) == (
        "2026-q4.2", False, 0, 1)
    assert status_ids(keyring) == ["2026-q4.1", "2026-q4.2"]
    with sessions.begin() as s:
        on_old = s.scalar(select(func.count()).select_from(Case)
                          .where(Case.kek_id == "2026-q4.1"))
    assert on_old == 1
    assert all(parse_kek_id(k)[1] == 2 for r in kek_ids(sessions).values()
               for row_id, k in r.items() if row_id != broken)


def test_rotation_never_moves_a_dek_across_epochs(
    sessions: sessionmaker[Session], keyring: Keyring, sealer: Sealer, clock: FakeClock,
    cfg: OrgConfig, catalog: Catalog,
) -> None:
    now = clock.now()
    clock.set(datetime(2026, 8, 10, 12, tzinfo=UTC))
    older = new_case(sessions, sealer, cfg, catalog, clock, 7)
    clock.set(now)
    new_case(sessions, sealer, cfg, catalog, clock, 8)
    with sessions.begin() as s:  # the column lies: it claims the current epoch
        s.execute(update(Case).where(Case.id == older).values(kek_id="2026-q4.1"))

    report = rotate(sessions, keyring, clock.now())
    assert [(f.table, f.row_id) for f in report.failed] == [("cases", older)]
    assert report.retired == ()
    with sessions.begin() as s:
        blob = s.scalar(select(Case.dek_wrapped).where(Case.id == older))
    assert blob is not None
    assert kek_id_of(blob) == "2026-q3.1"  # still shredded with its own epoch


def test_a_running_relay_picks_up_a_rotation_before_wrapping(
    sessions: sessionmaker[Session], keyring: Keyring, clock: FakeClock
) -> None:
    """`relay keys rotate` runs in another process; the service's Sealer must not keep
    wrapping new rows under the generation the rotation retires."""
    from relay.store.sealing import Sealer

    service = Sealer(keyring, clock)  # the running relay's view of the keys directory
    before = service.new_record("inbox", "row-1").kek_id
    other_process = Keyring.load(keyring.path)
    report = rotate(sessions, other_process, clock.now())
    assert report.retired
    after = service.new_record("inbox", "row-2").kek_id
    assert after != before
    assert after == other_process.active_kek_id(clock.now())
