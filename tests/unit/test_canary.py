"""The canary helpers themselves: every encoding is found wherever it sits in a blob."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.canary import Canaries, find_canaries, forms, scan_paths


def test_canary_shapes() -> None:
    c = Canaries()
    assert re.fullmatch(r"\+1555[0-9]{7}", c.e164)
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", c.aci)
    assert re.fullmatch(r"Canary[0-9a-f]{8}", c.profile_name)
    assert re.fullmatch(r"canary-[0-9a-f]{32}", c.report_text)
    assert len(c.key) == 32
    assert c.key.hex() not in repr(c)
    assert Canaries() != c


@pytest.mark.parametrize("prefix_len", range(6))
def test_base64_found_at_every_alignment(prefix_len: int) -> None:
    c = Canaries()
    for value in (c.key, c.report_text.encode()):
        blob = base64.b64encode(b"x" * prefix_len + value + b"tail")
        assert any(form in blob for form in forms(value))
        assert find_canaries(blob, c)


def test_hex_and_raw_found() -> None:
    c = Canaries()
    assert find_canaries(b"..." + c.key.hex().upper().encode() + b"...", c) == ["key:HEX"]
    assert find_canaries(f'{{"n": "{c.e164}"}}', c) == ["e164:raw"]
    assert find_canaries(b"nothing here", c) == []


def test_scan_paths_includes_sqlite_side_files(tmp_path: Path) -> None:
    c = Canaries()
    db = tmp_path / "relay.db"
    db.write_bytes(b"clean")
    (tmp_path / "relay.db-wal").write_bytes(b"page " + c.aci.encode())
    (tmp_path / "relay.db-shm").write_bytes(base64.b64encode(b"\0" + c.key))
    report = scan_paths([db], c)
    assert report == {
        str(tmp_path / "relay.db-wal"): ["aci:raw"],
        str(tmp_path / "relay.db-shm"): ["key:base64@1"],
    }
