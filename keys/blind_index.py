"""Keyed blind indexes and dedupe keys.

`blind_index(keyring, kind, value)` = HMAC-SHA256(K_bidx/<kind>, canonical(value)), one key
per kind, so equal values of different kinds never collide. Canonical forms:

- `aci`: lowercase hyphenated UUID (`8-4-4-4-12` hex digits; other spellings are refused);
- `e164`: `+[1-9][0-9]{6,14}` (ASCII digits only, no spaces);
- `name`: NFKC, casefold, NFKC again, whitespace runs collapsed to one space, stripped.

`dedupe_key(keyring, *parts)` = HMAC-SHA256(K_dedupe, ‖ over parts of
u32be(len(utf8(part))) ‖ utf8(part)): length prefixes make the encoding unambiguous.

Never a bare hash: ~10^10 phone numbers brute-force easily. Errors never echo the value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import TYPE_CHECKING, Final, Literal

from keys.errors import InvalidIdentifierError

if TYPE_CHECKING:
    from keys.keyring import Keyring

Kind = Literal["aci", "e164", "name", "subject"]

MAX_NAME_INPUT: Final = 1024
MAX_NAME_CANONICAL: Final = 256

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def canonical_aci(value: str) -> str:
    lowered = value.lower()
    if _UUID.fullmatch(lowered) is None:
        raise InvalidIdentifierError("an ACI must be a hyphenated UUID")
    return lowered


def canonical_e164(value: str) -> str:
    if _E164.fullmatch(value) is None:
        raise InvalidIdentifierError("a phone number must be E.164: + then 7-15 digits")
    return value


def canonical_name(value: str) -> str:
    if len(value) > MAX_NAME_INPUT:
        raise InvalidIdentifierError(f"a name may have at most {MAX_NAME_INPUT} characters")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    canonical = " ".join(folded.split())
    if not canonical:
        raise InvalidIdentifierError("a name must not be empty or only whitespace")
    if len(canonical) > MAX_NAME_CANONICAL:
        raise InvalidIdentifierError(
            f"a name may have at most {MAX_NAME_CANONICAL} characters after normalising"
        )
    return canonical


def canonical(kind: str, value: str) -> str:
    """The canonical form of `value` for one blind-index kind."""
    if not isinstance(value, str):
        raise InvalidIdentifierError("blind-index values are str")
    match kind:
        case "aci":
            return canonical_aci(value)
        case "e164":
            return canonical_e164(value)
        case "name" | "subject":  # a person's name: cases' "who", and moderation subjects
            return canonical_name(value)
        case _:
            raise InvalidIdentifierError("unknown blind-index kind; use aci, e164, name or subject")


def blind_index(keyring: Keyring, kind: Kind, value: str) -> bytes:
    """HMAC-SHA256 of the canonical value under the kind's own subkey (32 bytes)."""
    text = canonical(kind, value)
    return hmac.digest(keyring.subkey(f"bidx/{kind}"), text.encode("utf-8"), hashlib.sha256)


def encode_parts(*parts: str) -> bytes:
    """Unambiguous encoding: each part as u32 big-endian length ‖ UTF-8 bytes."""
    out = bytearray()
    for part in parts:
        if not isinstance(part, str):
            raise TypeError("dedupe parts are str")
        raw = part.encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def dedupe_key(keyring: Keyring, *parts: str) -> bytes:
    """HMAC-SHA256 under the dedupe subkey of the length-prefixed parts (32 bytes)."""
    if not parts:
        raise ValueError("dedupe_key needs at least one part")
    return hmac.digest(keyring.subkey("dedupe"), encode_parts(*parts), hashlib.sha256)
