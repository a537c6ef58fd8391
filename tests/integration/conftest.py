from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from keys import Keyring, init_keys_dir
from relay.clock import FakeClock
from relay.store.db import make_engine, make_sessionmaker
from relay.store.migrate import ensure_schema
from relay.store.sealing import Sealer
from tests.integration.doctor_org import DoctorOrg, doctor_org


def count_commits(engine: Engine) -> list[int]:
    """A counter of the database commits on `engine` from now on (its one item)."""
    count = [0]

    def on_commit(_conn: object) -> None:
        count[0] += 1

    event.listen(engine, "commit", on_commit)
    return count


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))


@pytest.fixture
def keyring(tmp_path: Path, clock: FakeClock) -> Keyring:
    return init_keys_dir(tmp_path / "keys", clock.now(), "quarter")


@pytest.fixture
def sealer(keyring: Keyring, clock: FakeClock) -> Sealer:
    return Sealer(keyring, clock)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
async def org(tmp_path: Path) -> AsyncIterator[DoctorOrg]:
    """The doctor tests' sandbox organisation (mpp): relay.toml, keys, a migrated DB."""
    made = await doctor_org(tmp_path)
    yield made
    await made.stop()
