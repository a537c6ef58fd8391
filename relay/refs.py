"""Case references like `K7F-3Q`: short, unambiguous on a phone, strictly parsed."""

from __future__ import annotations

import re
import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no I, L, O, 0, 1
REF_RE = re.compile(r"^[A-Z0-9]{3}-[A-Z0-9]{2}$")


def new_ref() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(5))
    return f"{chars[:3]}-{chars[3:]}"


def parse_ref(text: str) -> str | None:
    """A reference typed by a person (any case, stray spaces), or None."""
    candidate = text.strip().upper()
    return candidate if REF_RE.match(candidate) else None
