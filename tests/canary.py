"""Canary values and scanners: prove that no identity, text or key reaches logs or disk.

Each canary is searched for raw (UTF-8), as lower- and upper-case hex, and as base64 in all
three alignments, so an encoded copy is caught as well as a plain one (SECURITY.md §4).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SQLITE_SIDE_FILES = ("-wal", "-journal", "-shm")


@dataclass(frozen=True)
class Canaries:
    """One random set of canaries: a number, an ACI, a profile name, report text, a key."""

    e164: str = field(default_factory=lambda: "+1555" + f"{secrets.randbelow(10**7):07d}")
    aci: str = field(default_factory=lambda: str(uuid.uuid4()))
    profile_name: str = field(default_factory=lambda: f"Canary{secrets.token_hex(4)}")
    report_text: str = field(default_factory=lambda: f"canary-{secrets.token_hex(16)}")
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def items(self) -> list[tuple[str, bytes | str]]:
        return [
            ("e164", self.e164),
            ("aci", self.aci),
            ("profile_name", self.profile_name),
            ("report_text", self.report_text),
            ("key", self.key),
        ]


def _b64_aligned(raw: bytes) -> list[tuple[str, bytes]]:
    """Base64 of `raw` as it appears at each of the three offsets inside a longer blob.

    Encode with 0, 1 or 2 prefix bytes, then strip the characters that depend on the
    neighbouring bytes: ceil(prefix*4/3) leading chars and the trailing partial group.
    Both the standard and the URL-safe alphabet are produced.
    """
    out: list[tuple[str, bytes]] = []
    for prefix in range(3):
        encoded = base64.b64encode(b"\0" * prefix + raw).rstrip(b"=")
        lead = -(-prefix * 4 // 3)
        tail = 1 if (prefix + len(raw)) % 3 else 0
        stable = encoded[lead : len(encoded) - tail]
        out.append((f"base64@{prefix}", stable))
        out.append((f"base64url@{prefix}", stable.replace(b"+", b"-").replace(b"/", b"_")))
    return out


def _named_forms(value: bytes | str) -> list[tuple[str, bytes]]:
    """(name, encoding) pairs; an encoding equal to an earlier one is listed once."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    named = [
        ("raw", raw),
        ("hex", raw.hex().encode("ascii")),
        ("HEX", raw.hex().upper().encode("ascii")),
        *_b64_aligned(raw),
    ]
    seen: dict[bytes, str] = {}
    for name, form in named:
        seen.setdefault(form, name)
    return [(name, form) for form, name in seen.items()]


def forms(value: bytes | str) -> list[bytes]:
    """Every encoding of `value` that must never appear: raw, hex (both cases), base64 x3."""
    return [form for _, form in _named_forms(value)]


def find_canaries(blob: bytes | str, canaries: Canaries) -> list[str]:
    """Which canaries appear in `blob`, as `<canary>:<form>` (empty when clean)."""
    data = blob.encode("utf-8") if isinstance(blob, str) else blob
    hits: list[str] = []
    for name, value in canaries.items():
        hits += [f"{name}:{form_name}" for form_name, form in _named_forms(value) if form in data]
    return hits


def sqlite_files(db_path: Path) -> list[Path]:
    """The database file and whichever of its -wal, -journal and -shm files exist."""
    candidates = [db_path, *(db_path.with_name(db_path.name + s) for s in SQLITE_SIDE_FILES)]
    return [p for p in candidates if p.exists()]


def scan_paths(paths: Iterable[Path], canaries: Canaries) -> dict[str, list[str]]:
    """Scan each path plus its -wal/-journal/-shm if present; report hits per file."""
    report: dict[str, list[str]] = {}
    for path in paths:
        for file in sqlite_files(path):
            hits = find_canaries(file.read_bytes(), canaries)
            if hits:
                report[str(file)] = hits
    return report
