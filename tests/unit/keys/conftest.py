"""Fixtures for the keys tests: a fixed clock value, a fresh keys directory, light Argon2."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keys import KdfParams, Keyring, init_keys_dir

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
LIGHT_KDF = KdfParams(memory_kib=64, iterations=1, lanes=1)
"""Argon2id parameters cheap enough for unit tests (production: 256 MiB, t=2, p=4)."""


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def ring(keys_dir: Path, now: datetime) -> Keyring:
    return init_keys_dir(keys_dir, now, "quarter")
