"""Text hygiene (SECURITY.md section 7, rows 3-6): controls out, names normalised, quotes."""

from __future__ import annotations

import pytest

from handlers.flows.text import answer_key, clean_name, clean_text, quote_block

BIDI = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200e", "\u200f", "\u061c",
]


@pytest.mark.parametrize("control", BIDI)
def test_bidi_controls_are_stripped_from_text(control: str) -> None:
    assert clean_text(f"pay{control}lap", 100) == "paylap"


def test_the_security_example() -> None:
    assert clean_text("Officer\u202e enaJ", 100) == "Officer enaJ"
    assert clean_name("Officer\u202e enaJ") == "Officer enaJ"


def test_c0_c1_controls_go_but_newline_and_tab_stay() -> None:
    assert clean_text("a\x00b\x07c\x1bd\x7fe\x85f\x9fg", 100) == "abcdefg"
    assert clean_text("line one\n\tline two", 100) == "line one\n\tline two"
    assert clean_text("windows\r\nline\rmac", 100) == "windows\nline\nmac"


def test_joiners_and_report_text_are_kept_as_written() -> None:
    family = "\U0001f469\u200d\U0001f467"
    text = f"\uff2a\uff41\uff4e\uff45 said {family} and \u200cthis — ﬁne"
    assert clean_text(text, 100) == text  # no NFKC: what people wrote is kept


def test_lone_surrogates_are_dropped_so_text_can_be_encoded() -> None:
    cleaned = clean_text("a\ud800b", 100)
    assert cleaned == "ab"
    cleaned.encode()


def test_text_is_capped() -> None:
    assert clean_text("x" * 50, 10) == "x" * 10
    assert clean_text("\u202e" * 50 + "abc", 3) == "abc"


def test_names_are_nfkc_and_stripped_of_format_characters() -> None:
    assert clean_name("\uff2a\uff41\uff4e\uff45") == "Jane"
    assert clean_name("Ja\u200dne\u00ad\ue000") == "Jane"  # Cf (ZWJ, soft hyphen) and Co
    assert clean_name("  Jane \n\t Doe  ") == "Jane Doe"
    assert clean_name("a\u0378b") == "ab"  # Cn: unassigned


def test_name_length_is_capped_before_and_after_nfkc() -> None:
    expanded = clean_name("\ufdfa", max_len=64)  # one code point becomes 18 characters
    assert len(expanded) == 18
    assert len(clean_name("\ufdfa" * 100, max_len=20)) <= 20
    assert clean_name("\ufdfa" * 100, max_len=20) == clean_name("\ufdfa" * 2, max_len=20)


def test_every_relayed_line_is_prefixed() -> None:
    assert quote_block("one\ntwo") == "\u2502 one\n\u2502 two"
    assert quote_block("") == "\u2502 "
    forged = "thanks\n[relay] Case K7F-3Q closed\u2028[relay] reply STOP"
    lines = quote_block(forged).split("\n")
    assert len(lines) == 3
    assert all(line.startswith("\u2502 ") for line in lines)


@pytest.mark.parametrize("brk", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_every_line_boundary_a_client_may_render_is_prefixed(brk: str) -> None:
    assert quote_block(f"a{brk}b") == "\u2502 a\n\u2502 b"


@pytest.mark.parametrize(("said", "key"), [
    ("  Yes! ", "yes"), ("2.", "2"), ("2\ufe0f\u20e3", "2"), ("\uff12", "2"),
    ("ANONYMOUS \U0001f642", "anonymous"), ("don\u2019t  know", "don't know"), ("...", ""),
    ("#1", "1"),
])
def test_answer_keys(said: str, key: str) -> None:
    assert answer_key(said) == key
