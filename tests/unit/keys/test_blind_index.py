"""Blind indexes and dedupe keys: keyed, per-kind, canonicalising, never echoing values."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from keys import (
    InvalidIdentifierError,
    Keyring,
    blind_index,
    canonical_aci,
    canonical_e164,
    canonical_name,
    dedupe_key,
)
from keys.blind_index import encode_parts


def test_deterministic_and_keyed(ring: Keyring) -> None:
    aci = str(uuid.uuid4())
    first = blind_index(ring, "aci", aci)
    assert first == blind_index(ring, "aci", aci)
    assert len(first) == 32
    assert first == hmac.digest(ring.subkey("bidx/aci"), aci.encode(), hashlib.sha256)
    assert first != hashlib.sha256(aci.encode()).digest()  # never a bare hash


def test_kinds_use_different_keys(ring: Keyring) -> None:
    value = "+15551234567"
    e164 = blind_index(ring, "e164", value)
    name = blind_index(ring, "name", value)
    assert e164 != name
    assert name == hmac.digest(ring.subkey("bidx/name"), value.encode(), hashlib.sha256)


def test_aci_canonicalises_case(ring: Keyring) -> None:
    aci = "0D3C5F0E-1A2B-4C3D-8E9F-0A1B2C3D4E5F"
    assert canonical_aci(aci) == aci.lower()
    assert blind_index(ring, "aci", aci) == blind_index(ring, "aci", aci.lower())


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "0d3c5f0e1a2b4c3d8e9f0a1b2c3d4e5f",  # unhyphenated
        "{0d3c5f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f}",
        "urn:uuid:0d3c5f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "0d3c5f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f\n",
        "",
    ],
)
def test_aci_rejects_non_uuids(ring: Keyring, value: str) -> None:
    with pytest.raises(InvalidIdentifierError) as err:
        blind_index(ring, "aci", value)
    if value:
        assert value.strip() not in str(err.value)


@pytest.mark.parametrize("value", ["+4915112345678", "+15551234567", "+1234567"])
def test_e164_accepts(value: str) -> None:
    assert canonical_e164(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "4915112345678",
        "+0491511234567",
        "+49 151 12345678",
        "+123456",
        "+1234567890123456",
        "+4915112345678\n",
        "+\u0661\u0662\u0663\u0664\u0665\u0666\u0667",  # Arabic-Indic digits
    ],
)
def test_e164_rejects(ring: Keyring, value: str) -> None:
    with pytest.raises(InvalidIdentifierError) as err:
        blind_index(ring, "e164", value)
    assert value.strip() not in str(err.value)


FULLWIDTH_ALEX = "  \uff21\uff2c\uff25\uff38 example "  # fullwidth A L E X


def test_name_canonicalises(ring: Keyring) -> None:
    assert canonical_name(FULLWIDTH_ALEX) == "alex example"
    assert canonical_name("Alex\t\n  Example") == "alex example"
    assert canonical_name("STRASSE") == canonical_name("straße")
    assert blind_index(ring, "name", FULLWIDTH_ALEX) == blind_index(ring, "name", "alex example")
    assert blind_index(ring, "name", "alex example") != blind_index(ring, "name", "alex exampl")


def test_name_limits() -> None:
    with pytest.raises(InvalidIdentifierError, match="empty"):
        canonical_name(" \t ")
    with pytest.raises(InvalidIdentifierError, match="at most"):
        canonical_name("a" * 2000)
    with pytest.raises(InvalidIdentifierError, match="after normalising"):
        canonical_name("\ufdfa" * 20)  # 20 chars that NFKC-expand to 360


def test_unknown_kind(ring: Keyring) -> None:
    with pytest.raises(InvalidIdentifierError, match="kind"):
        blind_index(ring, "email", "a@example.org")  # type: ignore[arg-type]


def test_dedupe_key_is_unambiguous(ring: Keyring) -> None:
    assert dedupe_key(ring, "ab", "c") != dedupe_key(ring, "a", "bc")
    assert dedupe_key(ring, "a|b") != dedupe_key(ring, "a", "b")
    assert dedupe_key(ring, "x", "1", "2") == dedupe_key(ring, "x", "1", "2")
    assert encode_parts("ab", "") == b"\x00\x00\x00\x02ab\x00\x00\x00\x00"
    assert dedupe_key(ring, "a") == hmac.digest(
        ring.subkey("dedupe"), b"\x00\x00\x00\x01a", hashlib.sha256
    )
    with pytest.raises(ValueError, match="at least one"):
        dedupe_key(ring)


def test_moderation_subjects_and_case_names_use_separate_keys(ring: Keyring) -> None:
    """The same name indexes differently as a warned person and as "who was involved", so
    the moderation ledger cannot be joined with cases by someone holding the database."""
    assert blind_index(ring, "subject", "Alex Example") == blind_index(ring, "subject",
                                                                       " alex  EXAMPLE ")
    assert blind_index(ring, "subject", "Alex Example") != blind_index(ring, "name",
                                                                       "Alex Example")
